# Shared steps for .ci/demo, .ci/test and .ci/run: a virtualenv with the pinned requirements,
# and PostgreSQL + Redis on loopback (the running ones, else project-local ones in .local/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
VENV="${SQUIRREL_VENV:-$ROOT/.venv}"
DB_HOST="${SQUIRREL_DB_HOST:-127.0.0.1}"
DB_PORT="${SQUIRREL_DB_PORT:-5432}"
REDIS_PORT="${SQUIRREL_REDIS_PORT:-6379}"
export SQUIRREL_REDIS_URL="${SQUIRREL_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

ensure_python() {
  local py
  for py in python3.13 python3.12 python3.11 python3; do
    # pyenv shims exist for versions that are not active; running one is the only real test.
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      PYTHON=$py; return
    fi
  done
  die "Python 3.11 or newer is needed (sudo apt-get install python3 python3-venv)."
}

ensure_venv() {
  ensure_python
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv (sudo apt-get install python3-venv)"
  fi
  local stamp="$VENV/.requirements.sha"
  # The requirements build pvs/native (the C helper of pvs.epics_io): its sources count too.
  local want; want=$(cat "$ROOT/requirements.txt" "$ROOT"/pvs/native/{pyproject.toml,setup.py,*.c} | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    command -v cc >/dev/null || command -v gcc >/dev/null || die "a C compiler is needed to build pvs/native (sudo apt-get install gcc)"
    say "Installing requirements"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt)
    echo "$want" > "$stamp"
  fi
  # libca starts `caRepeater` from PATH; pyepics has none for Linux, so provide one.
  if [ ! -x "$VENV/bin/caRepeater" ]; then
    printf '#!/bin/sh\nexec "%s/bin/python" -c "import sys; sys.path.insert(0, \\"%s\\"); from pvs.epics_io import run_ca_repeater; run_ca_repeater()"\n' \
      "$VENV" "$ROOT" > "$VENV/bin/caRepeater"
    chmod +x "$VENV/bin/caRepeater"
  fi
  export PATH="$VENV/bin:$PATH"
}

pg_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

ensure_postgres() {
  if port_open "$DB_HOST" "$DB_PORT"; then return; fi
  [ "$DB_HOST" = 127.0.0.1 ] || [ "$DB_HOST" = localhost ] || die "PostgreSQL at $DB_HOST:$DB_PORT does not answer."
  # The machine's own cluster, if it is merely stopped.
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "Starting the system PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    wait_for_port "$DB_HOST" "$DB_PORT" PostgreSQL 20 && return
  fi
  local bin; bin=$(pg_bindir) || true
  [ -n "$bin" ] || die "PostgreSQL is not running on $DB_HOST:$DB_PORT and not installed: sudo apt-get install postgresql"
  local data="$LOCAL/pgdata" run_as=()
  mkdir -p "$LOCAL"
  # PostgreSQL refuses to run as root; use the postgres system user when we are root.
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no 'postgres' user to run PostgreSQL"
    run_as=(runuser -u postgres --); chown postgres "$LOCAL"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "Creating a project-local PostgreSQL cluster in $data"
    "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  say "Starting project-local PostgreSQL on 127.0.0.1:$DB_PORT"
  "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $DB_PORT -k $data" start >/dev/null
  wait_for_port "$DB_HOST" "$DB_PORT" PostgreSQL 20 || die "PostgreSQL did not start; see $data/server.log"
}

ensure_redis() {
  if port_open 127.0.0.1 "$REDIS_PORT"; then return; fi
  command -v redis-server >/dev/null || die "Redis is not running on 127.0.0.1:$REDIS_PORT and not installed: sudo apt-get install redis-server"
  mkdir -p "$LOCAL/redis"
  say "Starting project-local Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$LOCAL/redis" --logfile "$LOCAL/redis/redis.log"
  wait_for_port 127.0.0.1 "$REDIS_PORT" Redis 10 || die "Redis did not start; see $LOCAL/redis/redis.log"
}

wait_for_port() {
  local i
  for ((i = 0; i < $4 * 5; i++)); do port_open "$1" "$2" && return 0; sleep 0.2; done
  return 1
}

ensure_database() {
  # Django cannot connect to a database that does not exist yet; create it with psycopg.
  python - "$1" <<'PY'
import os, sys
import psycopg
name = sys.argv[1]
conn = psycopg.connect(
    host=os.environ.get("SQUIRREL_DB_HOST", "127.0.0.1"), port=os.environ.get("SQUIRREL_DB_PORT", "5432"),
    user=os.environ.get("SQUIRREL_DB_USER", "postgres"), password=os.environ.get("SQUIRREL_DB_PASSWORD", ""),
    dbname="postgres", autocommit=True,
)
if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
    conn.execute(f'CREATE DATABASE "{name}"')
    print(f"==> Created database {name}")
PY
}

ensure_chromium() {
  # Browser tests (marker `browser`) drive Debian's chromium through Playwright; without it
  # they are skipped (conftest.py says so), the rest of the suite still runs.
  [ -x /usr/bin/chromium ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "Installing Debian's chromium for the browser tests"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }; then
      return
    fi
  fi
  say "No /usr/bin/chromium (install it with: sudo apt-get install chromium): browser tests will be skipped"
}

ensure_fault_tools() {
  # Fault tests (marker `fault`) run a PostgreSQL cluster and a Redis server of their own even when
  # the machine's are already running: they need the programs, not just the services.
  command -v redis-server >/dev/null || die "the fault tests need redis-server: sudo apt-get install redis-server"
  [ -n "$(pg_bindir)" ] || die "the fault tests need PostgreSQL's initdb: sudo apt-get install postgresql"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, the fault tests need a 'postgres' user to run PostgreSQL"
  fi
}

ensure_services() {
  ensure_postgres
  ensure_redis
}
