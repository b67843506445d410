"""The set-up scripts (.ci/demo, .ci/test through .ci/lib.sh) and the README's commands after them.

- A demo that runs already (this checkout's lock held, its web port, its Channel Access or pvAccess port in
  use) is refused before anything changes; the ready line waits for the web to answer.
- The README's token snippet works as written in a fresh shell, with the file the demo writes.
- PostgreSQL, Redis, a C compiler or Python missing: lib.sh installs them with apt-get, as root or
  through `sudo -n`, or says in one line what to run. These run the bash functions with a PATH of
  stub commands (apt-get, sudo, id, the services' programs) that record what they were asked.
"""

import fcntl
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

BASE_DIR = Path(settings.BASE_DIR)
CI = BASE_DIR / ".ci"
README = BASE_DIR / "README.md"
VENV = Path(sys.executable).parent.parent
TIMEOUT = 30

# Every test runs the bash scripts (and the README's snippet runs manage.py): seconds each.
pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def listening():
    """listening() -> a loopback port that accepts connections until the test ends."""
    sockets = []

    def listen() -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
        return sock.getsockname()[1]

    yield listen
    for sock in sockets:
        sock.close()


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# --- .ci/demo refuses to start over a running demo ------------------------------------------------


@pytest.fixture
def checkout(tmp_path):
    """A checkout holding only .ci/ (the scripts find the repository from their own place): a demo
    that got past its checks stops at its first step, having no requirements.txt to install. Its
    virtualenv's python records each call (there must be none) and fails."""
    root = tmp_path / "checkout"
    shutil.copytree(CI, root / ".ci")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/python-calls\nexit 1\n')
    python.chmod(0o755)
    return root


def run_demo(root: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SQUIRREL_", "EPICS_"))}
    env |= {"SQUIRREL_VENV": str(root.parent / "venv"), "SQUIRREL_DB_NAME": "squirrel_refused_demo", **variables}
    return subprocess.run(
        ["bash", str(root / ".ci" / "demo")], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def assert_refused_having_changed_nothing(root: Path, result: subprocess.CompletedProcess) -> str:
    lines = error_lines(result)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert result.stdout == ""  # not a step began
    assert not (root.parent / "python-calls").exists()
    assert lines[0].endswith("Nothing was changed.")
    return lines[0]


def test_the_demo_refuses_when_this_checkouts_demo_runs(checkout):
    (checkout / ".local").mkdir()
    lock = checkout / ".local" / "demo.lock"
    lock.write_text("4242 8123\n")
    with lock.open() as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the running demo's honcho holds it
        result = run_demo(checkout, SQUIRREL_PORT=str(closed_port()), EPICS_CA_SERVER_PORT=str(closed_port()))

    line = assert_refused_having_changed_nothing(checkout, result)
    assert line.startswith("error: the demo is already running from this checkout (pid 4242, http://127.0.0.1:8123/)")
    assert "Ctrl-C in its terminal, or: kill 4242" in line
    assert sorted(path.name for path in (checkout / ".local").iterdir()) == ["demo.lock"]


def test_the_demo_refuses_when_its_web_port_answers(checkout, listening):
    port = listening()
    result = run_demo(checkout, SQUIRREL_PORT=str(port), EPICS_CA_SERVER_PORT=str(closed_port()))

    line = assert_refused_having_changed_nothing(checkout, result)
    assert f"127.0.0.1:{port} answers already" in line and f"SQUIRREL_PORT={port + 1} bash .ci/demo" in line
    assert not (checkout / ".local").exists()


def test_the_demo_refuses_when_its_channel_access_port_is_taken(checkout, listening):
    port = listening()
    result = run_demo(checkout, SQUIRREL_PORT=str(closed_port()), EPICS_CA_SERVER_PORT=str(port))

    line = assert_refused_having_changed_nothing(checkout, result)
    assert f"Channel Access port {port} is in use" in line and "EPICS_CA_SERVER_PORT" in line
    assert not (checkout / ".local").exists()


def test_the_demo_refuses_when_its_pvaccess_port_is_taken(checkout, listening):
    port = listening()
    result = run_demo(
        checkout,
        SQUIRREL_PORT=str(closed_port()),
        EPICS_CA_SERVER_PORT=str(closed_port()),
        EPICS_PVA_SERVER_PORT=str(port),
    )

    line = assert_refused_having_changed_nothing(checkout, result)
    assert f"pvAccess port {port} is in use" in line and "EPICS_PVA_SERVER_PORT" in line
    assert not (checkout / ".local").exists()


def test_a_stale_lock_of_a_stopped_demo_does_not_stop_the_next(checkout):
    # The lock file stays when the demo ends; only a held lock means a running demo.
    (checkout / ".local").mkdir()
    (checkout / ".local" / "demo.lock").write_text("4242 8123\n")
    port = str(closed_port())
    result = run_demo(checkout, SQUIRREL_PORT=port, EPICS_CA_SERVER_PORT=str(closed_port()))

    assert "already running" not in result.stderr
    # It took the lock (the file now names it) and went on to its first step, which fails here.
    assert (checkout / ".local" / "demo.lock").read_text().split()[1] == port
    assert result.returncode != 0


# --- The ready line -----------------------------------------------------------------------------


class Health(BaseHTTPRequestHandler):
    """Answers /api/v1/health/ with the server's next status: `statuses` in turn, then the last."""

    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        status = server.statuses[min(len(server.requests), len(server.statuses)) - 1]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    servers = []

    def start(*statuses: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
        server.statuses, server.requests = statuses, []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def announce(port: int, demo_pid: int, timeout: int = 20) -> subprocess.CompletedProcess:
    script = (
        f'source "{CI}/lib.sh"; SQUIRREL_PORT={port} SQUIRREL_DEMO_READY_TIMEOUT={timeout}; '
        f"demo_announce_when_ready {demo_pid}"
    )
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture
def demo_process():
    """A stand-in for the demo's honcho: a process the ready check watches (and may stop)."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_the_ready_line_comes_once_the_health_check_answers_200(health_server, demo_process):
    server = health_server(503, 503, 200)
    result = announce(server.server_address[1], demo_process.pid)

    assert result.returncode == 0, result.stderr
    assert server.requests == ["/api/v1/health/"] * 3  # it asked until the answer was 200
    url = f"http://127.0.0.1:{server.server_address[1]}"
    ready = f"Ready: Squirrel at {url}/, the admin at {url}/admin/ (login admin, password squirrel-demo)"
    assert ready in result.stdout
    assert ". .local/demo.env" in result.stdout
    assert demo_process.poll() is None


def test_a_web_that_never_answers_stops_the_demo_with_one_line(demo_process):
    result = announce(closed_port(), demo_process.pid, timeout=2)

    assert result.returncode == 1 and "Ready" not in result.stdout
    [line] = error_lines(result)
    assert line.startswith("error: the web server did not answer http://127.0.0.1:")
    assert "within 2 s (nothing answered): stopping the demo" in line
    assert demo_process.wait(10) == -signal.SIGTERM


def test_the_ready_check_ends_quietly_with_the_demo(demo_process):
    demo_process.kill()
    demo_process.wait()
    result = announce(closed_port(), demo_process.pid)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --- The README's token snippet -------------------------------------------------------------------


def readme_token_snippet() -> str:
    """The README's shell block that makes the demo user's token."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    [block] = [block for block in blocks if "create_api_token admin" in block]
    return block


@pytest.mark.django_db(transaction=True)
def test_the_readme_token_snippet_works_as_written_in_a_fresh_shell(tmp_path, client):
    # The demo's database (the test database, committed) and the settings file the demo writes.
    call_command("setup_demo", "--pvs", "40", stdout=io.StringIO())
    repo = tmp_path / "repo"
    shutil.copytree(CI, repo / ".ci")
    for entry in BASE_DIR.iterdir():
        if entry.name not in (".ci", ".local", ".git"):
            (repo / entry.name).symlink_to(entry)
    database = settings.DATABASES["default"]
    demo_env = {name: value for name, value in os.environ.items() if not name.startswith(("SQUIRREL_", "EPICS_"))}
    demo_env |= {
        "SQUIRREL_VENV": str(VENV),
        "SQUIRREL_DB_NAME": database["NAME"],
        "SQUIRREL_DB_HOST": database["HOST"],
        "SQUIRREL_DB_PORT": str(database["PORT"]),
        "SQUIRREL_PORT": "18999",
    }
    written = subprocess.run(
        ["bash", "-c", f'source "{repo}/.ci/lib.sh"; demo_settings; demo_write_env'],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert written.returncode == 0, written.stderr

    # The snippet as an operator pastes it into a new terminal (the curl lines need the running web).
    snippet = readme_token_snippet()
    commands = "\n".join(line for line in snippet.splitlines() if not line.startswith("curl"))
    result = subprocess.run(
        ["bash", "-c", f'{commands}\nprintf "%s|%s" "$TOKEN" "$SQUIRREL_URL"'],
        cwd=repo,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )

    assert result.returncode == 0 and result.stderr == "", result.stderr
    token, url = result.stdout.split("|")
    assert token.startswith("sqt_") and url == "http://127.0.0.1:18999"
    path = re.search(r'\$SQUIRREL_URL(/api/v1/[^"\']*)', snippet).group(1)
    assert client.get(path, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


# --- Installing what a fresh Debian machine lacks -----------------------------------------------

# Programs the functions under test use besides the stubs: linked into the stub PATH from the system.
TOOLS = ("cat", "chmod", "cp", "dirname", "env", "grep", "ls", "mkdir", "rm", "sleep", "sort", "tail", "tee", "touch")

STUB_APT_GET = r"""#!/bin/bash
# apt-get: records the call (with DEBIAN_FRONTEND); `install` puts stand-ins of the packages' programs
# in place. With APT_NEEDS_UPDATE set, install fails until `update` has run (a fresh machine).
echo "apt-get $* (DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-})" >> "$STUBS/log"
[ "$1" = update ] && { touch "$STUBS/updated"; exit 0; }
[ -n "${APT_NEEDS_UPDATE:-}" ] && [ ! -e "$STUBS/updated" ] && exit 100
for package in "$@"; do
  case $package in
    gcc) printf '#!/bin/sh\n' > "$STUBS/bin/gcc"; chmod +x "$STUBS/bin/gcc" ;;
    redis-server) cp "$STUBS/listen-redis" "$STUBS/bin/redis-server" ;;
    python3) printf '#!/bin/sh\nexec %s "$@"\n' "$REAL_PYTHON" > "$STUBS/bin/python3"; chmod +x "$STUBS/bin/python3" ;;
    postgresql-common) echo "#create_main_cluster = true" > "$STUB_PG_CONF" ;;
    postgresql)
      mkdir -p "$STUB_PG_LIB/15/bin"
      cp "$STUBS/initdb" "$STUB_PG_LIB/15/bin/initdb"; cp "$STUBS/listen-pg" "$STUB_PG_LIB/15/bin/pg_ctl"
      grep -q "^create_main_cluster = false" "$STUB_PG_CONF" || echo "main cluster created" >> "$STUBS/log" ;;
  esac
done
"""
STUB_SUDO = r"""#!/bin/bash
echo "sudo $*" >> "$STUBS/log"
[ "$1" = -n ] && shift
[ "$*" = true ] && exit $((1 - ${SUDO_ALLOWED:-0}))
exec "$@"
"""
STUB_ID = r"""#!/bin/sh
[ "$1" = -u ] && { echo "$FAKE_UID"; exit 0; }
[ "$1" = postgres ] && { echo "uid=105(postgres)"; exit 0; }
exit 1
"""
# A service's start: records its arguments and listens on the port they name until the test ends.
STUB_LISTEN = r"""#!/bin/bash
echo "{name} $*" >> "$STUBS/log"
port=$(echo "$*" | grep -oE -- '(-p|--port) [0-9]+' | grep -oE '[0-9]+$' | tail -1)
"$REAL_PYTHON" -c "import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(60)" "$port" \
  </dev/null >/dev/null 2>&1 &
echo $! >> "$STUBS/pids"
"""
# runuser -u postgres -- COMMAND: runs only the stand-ins (never this machine's initdb or pg_ctl).
STUB_RUNUSER = r"""#!/bin/bash
echo "runuser $*" >> "$STUBS/log"
shift 3
case $1 in "$STUB_PG_LIB"/*) exec "$@" ;; esac
exit 1
"""
STUB_RECORD = '#!/bin/bash\necho "{name} $*" >> "$STUBS/log"\n'


@pytest.fixture
def stubs(tmp_path):
    """A PATH of stub commands and a runner of lib.sh functions with it; the stubs' log."""
    base = tmp_path / "stubs"
    (base / "bin").mkdir(parents=True)

    def put(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o755)

    for tool in TOOLS:
        (base / "bin" / tool).symlink_to(shutil.which(tool))
    put(base / "bin" / "apt-get", STUB_APT_GET)
    put(base / "bin" / "sudo", STUB_SUDO)
    put(base / "bin" / "id", STUB_ID)
    put(base / "bin" / "runuser", STUB_RUNUSER)
    put(base / "bin" / "chown", STUB_RECORD.format(name="chown"))
    put(base / "initdb", STUB_RECORD.format(name="initdb"))
    put(base / "listen-pg", STUB_LISTEN.replace("{name}", "pg_ctl"))
    put(base / "listen-redis", STUB_LISTEN.replace("{name}", "redis-server"))

    class Stubs:
        path = base

        def log(self) -> list[str]:
            log = base / "log"
            return log.read_text().splitlines() if log.exists() else []

        def run(self, script: str, *, uid: int, sudo: bool = False, **variables: str) -> subprocess.CompletedProcess:
            env = {
                "PATH": str(base / "bin"),
                "STUBS": str(base),
                "REAL_PYTHON": sys.executable,
                "FAKE_UID": str(uid),
                "SUDO_ALLOWED": "1" if sudo else "0",
                "STUB_PG_LIB": str(tmp_path / "pglib"),
                "STUB_PG_CONF": str(tmp_path / "createcluster.conf"),
                **variables,
            }
            # The scratch locations replace Debian's after lib.sh sets them.
            setup = (
                f'source "{CI}/lib.sh"; PG_LIB=$STUB_PG_LIB PG_CREATECLUSTER_CONF=$STUB_PG_CONF LOCAL={tmp_path}/local'
            )
            return subprocess.run(
                ["/bin/bash", "-c", f"{setup}; {script}"], env=env, capture_output=True, text=True, timeout=TIMEOUT
            )

    yield Stubs()
    pids = base / "pids"
    for pid in pids.read_text().split() if pids.exists() else []:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_missing_c_compiler_is_installed_as_root(stubs):
    result = stubs.run("ensure_c_compiler && command -v gcc", uid=0)

    assert result.returncode == 0, result.stderr
    assert stubs.log() == ["apt-get install -y -q gcc libc6-dev (DEBIAN_FRONTEND=noninteractive)"]
    assert "Installing gcc libc6-dev with apt-get: a C compiler is needed to build pvs/native" in result.stdout


def test_a_fresh_machine_gets_its_package_lists_first(stubs):
    result = stubs.run("ensure_c_compiler", uid=0, APT_NEEDS_UPDATE="1")

    assert result.returncode == 0, result.stderr
    assert stubs.log() == [
        "apt-get install -y -q gcc libc6-dev (DEBIAN_FRONTEND=noninteractive)",
        "apt-get update -q (DEBIAN_FRONTEND=)",
        "apt-get install -y -q gcc libc6-dev (DEBIAN_FRONTEND=noninteractive)",
    ]


def test_a_user_whom_sudo_lets_in_gets_redis_installed_through_sudo_and_started(stubs):
    port = closed_port()
    result = stubs.run("ensure_redis", uid=1000, sudo=True, SQUIRREL_REDIS_PORT=str(port))

    assert result.returncode == 0, result.stderr
    log = stubs.log()
    assert log[:2] == [
        "sudo -n true",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server",
    ]
    assert log[2] == "apt-get install -y -q redis-server (DEBIAN_FRONTEND=noninteractive)"
    # Nothing listened after the install: the project-local Redis, as before.
    assert log[-1].startswith(f"redis-server --daemonize yes --bind 127.0.0.1 --port {port} ")
    assert "Installing redis-server with sudo apt-get: Redis is not running" in result.stdout


def test_without_root_or_sudo_one_line_says_what_to_run(stubs):
    port = closed_port()
    result = stubs.run("ensure_redis", uid=1000, sudo=False, SQUIRREL_REDIS_PORT=str(port))

    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: Redis is not running on 127.0.0.1:{port} and not installed: sudo apt-get install redis-server "
        "(as root, or where sudo needs no password, this script installs it itself)"
    ]
    assert [line for line in stubs.log() if "apt-get" in line] == []


def test_postgresql_is_installed_without_its_default_cluster_then_started_project_local(stubs, tmp_path):
    port = closed_port()
    result = stubs.run("ensure_postgres", uid=0, SQUIRREL_DB_PORT=str(port))

    assert result.returncode == 0, result.stderr
    log = stubs.log()
    assert log[:2] == [
        "apt-get install -y -q postgresql-common (DEBIAN_FRONTEND=noninteractive)",
        "apt-get install -y -q postgresql (DEBIAN_FRONTEND=noninteractive)",
    ]
    assert "main cluster created" not in log
    assert (tmp_path / "createcluster.conf").read_text().splitlines()[-1] == "create_main_cluster = false"
    # Then as before on a machine with PostgreSQL's programs: a trusted cluster in .local/, as postgres.
    data = tmp_path / "local" / "pgdata"
    assert f"initdb -D {data} -U postgres --auth=trust" in log
    assert any(line.startswith(f"pg_ctl -D {data} ") and f"-p {port} " in line for line in log)
    initdb = tmp_path / "pglib" / "15" / "bin" / "initdb"
    assert f"runuser -u postgres -- {initdb} -D {data} -U postgres --auth=trust" in log


def test_postgresql_without_root_or_sudo_names_the_package_to_install(stubs):
    result = stubs.run("ensure_postgres", uid=1000, SQUIRREL_DB_PORT=str(closed_port()))

    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.endswith(
        "and not installed: sudo apt-get install postgresql "
        "(as root, or where sudo needs no password, this script installs it itself)"
    )


def test_a_machine_without_python3_gets_it(stubs):
    result = stubs.run('ensure_python && echo "python: $PYTHON"', uid=0)

    assert result.returncode == 0, result.stderr
    assert stubs.log() == ["apt-get install -y -q python3 python3-venv (DEBIAN_FRONTEND=noninteractive)"]
    assert result.stdout.splitlines()[-1] == "python: python3"


def test_nothing_is_installed_where_everything_is_there(stubs):
    # This machine: a compiler, Python, Redis and PostgreSQL installed and running. Only apt-get,
    # sudo and id are stubs, ahead of the real PATH.
    stubs_only = stubs.path / "only"
    stubs_only.mkdir()
    for name in ("apt-get", "sudo", "id"):
        (stubs_only / name).symlink_to(stubs.path / "bin" / name)
    script = "ensure_python && ensure_c_compiler && ensure_services && ensure_fault_tools && echo done"
    result = stubs.run(
        f"PATH={stubs_only}:{os.environ['PATH']}; PG_LIB=/usr/lib/postgresql; {script}",
        uid=0,
        SQUIRREL_DB_PORT=str(settings.DATABASES["default"]["PORT"]),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "done"
    assert stubs.log() == []
