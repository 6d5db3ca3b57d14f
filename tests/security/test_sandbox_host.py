"""From inside a sandbox, through the official SDK, try to reach the host: its files, its
processes, its loopback services and the corral server itself. Every attempt must fail.

Each test first plants something real on the host (a marker file, a listening socket), so a
pass means "the sandbox could not see it", never "there was nothing to see".
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox

from tests.security.conftest import run, run_py

pytestmark = [pytest.mark.e2e, pytest.mark.root]

MARKER_TEXT = "corral-host-marker-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def host_markers(server) -> Iterator[list[Path]]:  # type: ignore[no-untyped-def]
    """Files only the host has: in /tmp, in the server's data dir and in the repo's directory."""
    name = f"corral-host-marker-{uuid.uuid4().hex[:8]}"
    paths = [Path("/tmp") / name, Path(server.data_dir) / name, Path(server.data_dir) / "sandboxes" / name]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(MARKER_TEXT)
    yield paths
    for p in paths:
        p.unlink(missing_ok=True)


def test_host_marker_files_are_invisible(sbx: Sandbox, host_markers: list[Path], server) -> None:  # type: ignore[no-untyped-def]
    for p in host_markers:
        assert p.read_text() == MARKER_TEXT  # really there on the host
        assert sbx.files.exists(str(p), user="root") is False, p
        assert run(sbx, f"test -e {p}", user="root").exit_code != 0, p
    # Nor anywhere else in the sandbox's file tree, by name or by content.
    found = run(sbx, f"grep -rlsF --exclude-dir=proc --exclude-dir=sys {MARKER_TEXT} / ; "
                     f"find / -xdev -name '{host_markers[0].name}' 2>/dev/null", user="root", timeout=300)
    assert found.stdout.strip() == ""
    # The server's own data (database, other sandboxes' directories) is not mounted inside.
    assert run(sbx, f"test -e {server.data_dir}/corral.db || test -d {server.data_dir}/sandboxes", user="root").exit_code != 0


def test_host_repository_and_venv_are_invisible(sbx: Sandbox) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert (repo / "corral").is_dir()
    assert run(sbx, f"ls {repo} {repo}/.venv", user="root").exit_code != 0


def test_etc_shadow_is_the_sandboxes_own(sbx: Sandbox) -> None:
    host_shadow = Path("/etc/shadow").read_text()
    inside = run(sbx, "cat /etc/shadow", user="root")
    assert inside.exit_code == 0
    assert inside.stdout != host_shadow
    # And the default user cannot read it at all.
    assert run(sbx, "cat /etc/shadow").exit_code != 0


def test_etc_shadow_write_stays_inside(sbx: Sandbox) -> None:
    before = Path("/etc/shadow").read_bytes()
    tag = f"corral-shadow-{uuid.uuid4().hex[:8]}"
    assert run(sbx, f"echo '{tag}:*:1:0:99999:7:::' >> /etc/shadow", user="root").exit_code == 0
    assert tag in run(sbx, "cat /etc/shadow", user="root").stdout
    assert Path("/etc/shadow").read_bytes() == before


def test_pid_1_is_the_sandbox_daemon_not_host_init(sbx: Sandbox) -> None:
    host_init = Path("/proc/1/cmdline").read_bytes()
    inside = run_py(sbx, "import sys; sys.stdout.write(open('/proc/1/cmdline','rb').read().hex())")
    assert inside.exit_code == 0, inside.stderr
    cmdline = bytes.fromhex(inside.stdout)
    assert cmdline != host_init
    # It names itself and nothing of the host: no interpreter path, repo path, or server pid.
    assert cmdline.rstrip(b"\0") == b"envd"
    assert str(os.getppid()).encode() not in cmdline and b"/" not in cmdline


def test_ps_shows_only_sandbox_processes(sbx: Sandbox) -> None:
    me = os.getpid()
    host_args = Path(f"/proc/{me}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    out = run(sbx, "ps -eo pid=,args=", user="root").stdout
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    # A fresh sandbox runs its daemon, and the ps itself (under bash); nothing else.
    assert len(lines) <= 6, out
    assert "pytest" not in out and host_args not in out
    assert "corral.cli.main serve" not in out
    assert "process_api" not in out
    pids = {int(ln.split()[0]) for ln in lines}
    assert 1 in pids
    # /proc holds exactly those processes: no host pid is reachable by number either.
    listed = run_py(sbx, "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))").stdout
    assert len(eval(listed)) <= 6, listed  # noqa: S307 - a list of ints we printed ourselves
    assert run(sbx, f"kill -0 {me}", user="root").exit_code != 0 or me in pids


def test_host_process_cannot_be_signalled(sbx: Sandbox) -> None:
    # This test process's host pid: with a shared pid namespace `kill -0` would reach us. In
    # the sandbox's own namespace the number is either unused or some sandbox process.
    me = os.getpid()
    result = run(sbx, f"kill -0 {me} && ps -o args= -p {me}", user="root")
    if result.exit_code == 0:
        assert "pytest" not in result.stdout


@pytest.fixture
def host_listener() -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """A TCP listener on host 127.0.0.1 that records every connection it accepts."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    accepted: list[tuple[str, int]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except (socket.timeout, OSError):
                continue
            accepted.append(addr)
            conn.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    t.join()
    srv.close()


CONNECT_PROBE = r'''
import socket, sys
results = []
for host in sys.argv[1].split(","):
    for port in map(int, sys.argv[2].split(",")):
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect((host, port))
            results.append(f"{host}:{port}=connected")
        except OSError as e:
            results.append(f"{host}:{port}={type(e).__name__}")
        finally:
            s.close()
print(" ".join(results))
'''


def _host_addresses() -> list[str]:
    """Every IPv4 address of the host: loopback plus whatever its interfaces carry."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    addrs = {"127.0.0.1"} | {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}
    return sorted(addrs)


def test_host_loopback_listener_is_unreachable(sbx: Sandbox, host_listener, server) -> None:  # type: ignore[no-untyped-def]
    port, accepted = host_listener
    # Prove the listener works from the host before asking the sandbox.
    with socket.create_connection(("127.0.0.1", port), timeout=3):
        pass
    deadline = time.monotonic() + 10
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert accepted, "the host listener did not see the host's own connection"
    accepted.clear()
    server_port = int(server.url.rsplit(":", 1)[1])
    hosts = ",".join(_host_addresses() + ["localhost"])
    path = "/tmp/connect_probe.py"
    sbx.files.write(path, CONNECT_PROBE)
    for user in ("user", "root"):
        out = run(sbx, f"python3 {path} {hosts} {port},{server_port}", user=user, timeout=120)
        assert out.exit_code == 0, out.stderr
        assert "=connected" not in out.stdout, out.stdout
    assert accepted == []


def test_server_api_is_unreachable_by_http(sbx: Sandbox, server) -> None:  # type: ignore[no-untyped-def]
    port = int(server.url.rsplit(":", 1)[1])
    out = run(sbx, f"curl -sS -m 3 http://127.0.0.1:{port}/health || wget -q -T 3 -O- http://127.0.0.1:{port}/health "
                   f"|| python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/health', timeout=3).status)\"")
    assert out.exit_code != 0
    assert "200" not in out.stdout


def test_no_network_interface_but_loopback(sbx: Sandbox) -> None:
    devs = run(sbx, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").stdout.split()
    assert devs == ["lo"]
