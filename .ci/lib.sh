# Shared steps for .ci/demo, .ci/test and .ci/run: a virtualenv with the pinned requirements,
# and PostgreSQL + Redis on loopback (the running ones, else project-local ones in .local/).
# What a fresh Debian machine lacks (PostgreSQL, Redis, a C compiler, Python's venv) is installed
# with apt-get, as root or through `sudo -n`, saying what and why; else one line says what to run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
VENV="${SQUIRREL_VENV:-$ROOT/.venv}"
DB_HOST="${SQUIRREL_DB_HOST:-127.0.0.1}"
DB_PORT="${SQUIRREL_DB_PORT:-5432}"
REDIS_PORT="${SQUIRREL_REDIS_PORT:-6379}"
export SQUIRREL_REDIS_URL="${SQUIRREL_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
# The fast subset (.ci/fast, and .ci/run's parallel part): the tests that need none of these markers.
FAST_TESTS="not ioc and not worker and not browser and not fault and not load and not slow and not bench"
# Its pytest arguments: without the contract fuzz (slow) and the plugins only the fuzz uses
# (schemathesis and hypothesis: two thirds of each test process's start-up).
FAST_ARGS=(-m "$FAST_TESTS" -p no:schemathesis -p no:hypothesispytest
  --ignore=squirrel_site/tests/test_openapi_contract.py)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Where Debian puts PostgreSQL's programs, and where postgresql-common reads whether installing
# PostgreSQL creates a cluster (variables, so that the tests can point them at a scratch directory).
PG_LIB=/usr/lib/postgresql
PG_CREATECLUSTER_CONF=/etc/postgresql-common/createcluster.conf

# How apt-get runs here: prints nothing as root, `sudo -n` for a user whom sudo lets in without a
# password; fails when neither (or there is no apt-get).
apt_prefix() {
  command -v apt-get >/dev/null || return 1
  [ "$(id -u)" = 0 ] && return 0
  command -v sudo >/dev/null && sudo -n true 2>/dev/null && echo "sudo -n"
}

# apt_install WHY PACKAGE...: install Debian packages with apt-get (as root, or through sudo),
# saying which and why. Fails, saying nothing, when it cannot run apt-get; fails after apt-get's
# own message when the install does.
apt_install() {
  local why=$1 prefix; shift
  prefix=$(apt_prefix) || return 1
  say "Installing $* with ${prefix:+sudo }apt-get: $why"
  # A fresh machine may have no package lists yet: update them if the first attempt fails.
  $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return
  $prefix apt-get update -q >/dev/null && $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# need_packages WHY PACKAGE...: apt_install, or stop with one line saying what to run.
need_packages() {
  local why=$1; shift
  apt_install "$why" "$@" || cannot_install "$why" "$@"
}

cannot_install() {
  local why=$1; shift
  die "$why: sudo apt-get install $* (as root, or where sudo needs no password, this script installs it itself)"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

find_python() {
  local py
  for py in python3.13 python3.12 python3.11 python3; do
    # pyenv shims exist for versions that are not active; running one is the only real test.
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      PYTHON=$py; return
    fi
  done
  return 1
}

ensure_python() {
  find_python && return
  command -v python3 >/dev/null || need_packages "Python 3.11 or newer is needed" python3 python3-venv
  find_python || die "Python 3.11 or newer is needed; this machine's python3 is older."
}

ensure_venv() {
  ensure_python
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating virtualenv $VENV"
    local existed=; [ -e "$VENV" ] && existed=1
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
      # Debian's Python makes a virtualenv without pip unless its venv package is installed.
      [ -n "$existed" ] || rm -rf "$VENV"
      need_packages "Python's venv module is needed to create $VENV" "$("$PYTHON" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')"
      "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv in $VENV"
    fi
  fi
  local stamp="$VENV/.requirements.sha"
  # The requirements build pvs/native (the C helper of pvs.epics_io): its sources count too.
  local want; want=$(cat "$ROOT/requirements.txt" "$ROOT"/pvs/native/{pyproject.toml,setup.py,*.c} | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    ensure_c_compiler
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

ensure_c_compiler() {
  if command -v cc >/dev/null || command -v gcc >/dev/null; then return; fi
  need_packages "a C compiler is needed to build pvs/native" gcc libc6-dev
}

pg_bindir() {
  local dir
  for dir in $(ls -d "$PG_LIB"/*/bin 2>/dev/null | sort -V -r); do
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
  if [ -z "$bin" ]; then
    install_postgres "PostgreSQL is not running on $DB_HOST:$DB_PORT and not installed"
    bin=$(pg_bindir) || die "PostgreSQL's initdb is still missing after installing postgresql"
  fi
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

# PostgreSQL's programs, without the cluster that installing them would create and start: its
# logins over TCP need passwords. Squirrel runs its own cluster under .local/ instead, as on any
# machine where PostgreSQL is installed and not running.
install_postgres() {
  apt_prefix >/dev/null || cannot_install "$1" postgresql
  need_packages "$1" postgresql-common
  if ! grep -Eq '^[[:space:]]*create_main_cluster' "$PG_CREATECLUSTER_CONF" 2>/dev/null; then
    say "Setting create_main_cluster = false in $PG_CREATECLUSTER_CONF (no default cluster)"
    echo "create_main_cluster = false" | $(apt_prefix) tee -a "$PG_CREATECLUSTER_CONF" >/dev/null
  fi
  need_packages "$1" postgresql
}

ensure_redis() {
  if port_open 127.0.0.1 "$REDIS_PORT"; then return; fi
  if ! command -v redis-server >/dev/null; then
    need_packages "Redis is not running on 127.0.0.1:$REDIS_PORT and not installed" redis-server
    # Debian starts its own Redis (on 6379) once installed, where the machine runs services.
    wait_for_port 127.0.0.1 "$REDIS_PORT" Redis 3 && return
  fi
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
  apt_install "Debian's chromium for the browser tests" chromium && [ -x /usr/bin/chromium ] && return
  say "No /usr/bin/chromium (install it with: sudo apt-get install chromium): browser tests will be skipped"
}

ensure_fault_tools() {
  # Fault tests (marker `fault`) run a PostgreSQL cluster and a Redis server of their own even when
  # the machine's are already running: they need the programs, not just the services.
  command -v redis-server >/dev/null || need_packages "the fault tests need redis-server" redis-server
  [ -n "$(pg_bindir)" ] || install_postgres "the fault tests need PostgreSQL's initdb"
  [ -n "$(pg_bindir)" ] || die "the fault tests need PostgreSQL's initdb, still missing after installing postgresql"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, the fault tests need a 'postgres' user to run PostgreSQL"
  fi
}

ensure_services() {
  ensure_postgres
  ensure_redis
}

# --- The demo (.ci/demo) ----------------------------------------------------------------------
DEMO_LOCK="$LOCAL/demo.lock"  # held (flock) by the running demo, from its setup to its end; "pid port"
DEMO_ENV="$LOCAL/demo.env"    # the demo's settings, for `. .local/demo.env` in another shell

demo_settings() {
  export SQUIRREL_DEBUG="${SQUIRREL_DEBUG:-1}"
  export SQUIRREL_DEMO_PVS="${SQUIRREL_DEMO_PVS:-5000}"
  export SQUIRREL_PORT="${SQUIRREL_PORT:-8000}"
  export SQUIRREL_DB_NAME="${SQUIRREL_DB_NAME:-squirrel}"
  export EPICS_CA_SERVER_PORT="${EPICS_CA_SERVER_PORT:-5064}"
  # The simulated pvAccess server: TCP on EPICS_PVA_SERVER_PORT, UDP (searches) on the next port,
  # where every process of the demo searches (EPICS_PVA_ADDR_LIST, loopback).
  export SQUIRREL_DEMO_PVA_PVS="${SQUIRREL_DEMO_PVA_PVS:-500}"
  export EPICS_PVA_SERVER_PORT="${EPICS_PVA_SERVER_PORT:-5075}"
  export EPICS_PVA_BROADCAST_PORT="$((EPICS_PVA_SERVER_PORT + 1))"
  export EPICS_PVA_AUTO_ADDR_LIST=NO
  export EPICS_PVA_ADDR_LIST="127.0.0.1:$EPICS_PVA_BROADCAST_PORT"
  # The simulated archiver (Procfile's archiver: run_sim_archiver, seeded an hour back), which the
  # demo's snapshots "from the archive" ask unless SQUIRREL_ARCHIVER_URL names real ones.
  export SQUIRREL_ARCHIVER_PORT="${SQUIRREL_ARCHIVER_PORT:-17668}"
  export SQUIRREL_ARCHIVER_URL="${SQUIRREL_ARCHIVER_URL:-sim=http://127.0.0.1:$SQUIRREL_ARCHIVER_PORT}"
}

# Stop with one line, having changed nothing, when a demo runs already: this checkout's (its lock
# is held), or any on the same web or Channel Access port. Else take the lock (fd 9) and keep it:
# the demo's processes inherit it; daemons it starts must not (run their steps with `9>&-`).
demo_refuse_if_running() {
  if [ -e "$DEMO_LOCK" ] && ! flock -n "$DEMO_LOCK" true; then demo_already_running; fi
  if port_open 127.0.0.1 "$SQUIRREL_PORT"; then
    die "127.0.0.1:$SQUIRREL_PORT answers already (a demo from another checkout, or another server): stop it, or give this demo another port: SQUIRREL_PORT=$((SQUIRREL_PORT + 1)) bash .ci/demo. Nothing was changed."
  fi
  if port_open 127.0.0.1 "$EPICS_CA_SERVER_PORT"; then
    die "Channel Access port $EPICS_CA_SERVER_PORT is in use on 127.0.0.1 (a demo's simulated IOC from another checkout, or another IOC): stop it, or set EPICS_CA_SERVER_PORT to a free port. Nothing was changed."
  fi
  if port_open 127.0.0.1 "$EPICS_PVA_SERVER_PORT"; then
    die "pvAccess port $EPICS_PVA_SERVER_PORT is in use on 127.0.0.1 (a demo's simulated pvAccess server from another checkout, or another server): stop it, or set EPICS_PVA_SERVER_PORT to a free port (the next one must be free too). Nothing was changed."
  fi
  mkdir -p "$LOCAL"
  exec 9>>"$DEMO_LOCK"
  flock -n 9 || demo_already_running
  printf '%s %s\n' "$$" "$SQUIRREL_PORT" > "$DEMO_LOCK"
}

demo_already_running() {
  local pid port
  read -r pid port < "$DEMO_LOCK" || true
  die "the demo is already running from this checkout (pid ${pid:-?}, http://127.0.0.1:${port:-?}/): stop it with Ctrl-C in its terminal, or: kill ${pid:-<its pid>}. Nothing was changed."
}

# Write the demo's settings to FILE (default .local/demo.env) as shell exports, with the virtualenv
# first on PATH: `. .local/demo.env` in a shell at the repository's root, and `python manage.py`
# works on the demo's database (README, "Processes").
demo_write_env() {
  local file=${1:-$DEMO_ENV} venv_bin name
  venv_bin=$(cd "$VENV/bin" && pwd)
  mkdir -p "$(dirname "$file")"
  (
    umask 077  # it may hold SQUIRREL_DB_PASSWORD
    {
      echo "# Written by bash .ci/demo: the demo's settings, with its virtualenv first on PATH."
      echo "# In a shell at the repository's root: . .local/demo.env"
      for name in $(compgen -e | grep -E '^(SQUIRREL_|EPICS_)' | grep -vE '^SQUIRREL_(TEST_.*|URL|TOKEN)$' | sort); do
        printf 'export %s=%q\n' "$name" "${!name}"
      done
      printf 'export SQUIRREL_URL=%q\n' "http://127.0.0.1:$SQUIRREL_PORT"
      printf 'export PATH=%q:"$PATH"\n' "$venv_bin"
    } > "$file"
  )
}

# The status code of GET http://HOST:PORT/PATH, or nothing when nothing answers (bash alone: a
# fresh machine may have no curl).
http_status() {
  (
    exec 3<>"/dev/tcp/$1/$2" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$3" "$1" "$2" >&3
    read -r -t 10 _ status _ <&3 && printf '%s\n' "$status"
  ) 2>/dev/null || true
}

# demo_announce_when_ready PID: once the web answers /api/v1/health/ with 200, print the ready line.
# If it has not within SQUIRREL_DEMO_READY_TIMEOUT seconds, say so and stop the demo (PID, honcho).
# Returns at once when PID exits (honcho has said why).
demo_announce_when_ready() {
  local pid=$1 url="http://127.0.0.1:$SQUIRREL_PORT" timeout=${SQUIRREL_DEMO_READY_TIMEOUT:-120} status=
  local deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    sleep 1
    kill -0 "$pid" 2>/dev/null || return 0
    status=$(http_status 127.0.0.1 "$SQUIRREL_PORT" /api/v1/health/)
    if [ "$status" = 200 ]; then
      say "Ready: Squirrel at $url/, the admin at $url/admin/ (login admin, password squirrel-demo)"
      echo "    manage.py and scripts for this demo, in another shell at $ROOT: . .local/demo.env"
      return 0
    fi
  done
  printf 'error: the web server did not answer %s/api/v1/health/ with 200 within %s s (%s): stopping the demo; the lines above say why.\n' \
    "$url" "$timeout" "${status:+it answered $status}${status:-nothing answered}" >&2
  kill -TERM "$pid" 2>/dev/null || true
  return 1
}
