"""E2B's own CLI (`@e2b/cli` from npm) against corral, configured by environment only
(E2B_API_KEY, E2B_API_URL, E2B_SANDBOX_URL): `sandbox list`, `sandbox kill`, an interactive
`sandbox connect` driven through a real pseudo-terminal, and `template create` (the CLI's
Dockerfile build, which needs no local Docker) followed by a sandbox from the result."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, kill_all_sandboxes, start_server, stop_server
from tests.e2e.node_client import CLI, client_env, node_binary, run_cli
from tests.e2e.private_store import private_store

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    root = tmp_path_factory.mktemp("cli")
    store = private_store(root / "store")
    srv = start_server(root / "data", extra_env={"CORRAL_TEMPLATE_DIR": str(store.root), "CORRAL_POOL": ""})
    yield srv
    kill_all_sandboxes(srv)
    stop_server(srv)


@pytest.fixture
def env(cli_server: Server, tmp_path: Path) -> dict[str, str]:
    return client_env(cli_server.env(), tmp_path / "home")


def _create(server: Server, **body) -> str:
    r = httpx.post(server.url + "/v2/sandboxes", headers={"X-API-Key": server.api_key},
                   json={"templateID": "base", "timeout": 300, **body}, timeout=120)
    assert r.status_code == 201, r.text
    return r.json()["sandboxID"]


def _running(server: Server) -> set[str]:
    r = httpx.get(server.url + "/v2/sandboxes", headers={"X-API-Key": server.api_key}, timeout=30)
    return {s["sandboxID"] for s in r.json()}


def test_sandbox_list_and_kill(cli_server: Server, env: dict[str, str]) -> None:
    a, b = _create(cli_server, metadata={"who": "cli"}), _create(cli_server)
    listed = run_cli(["sandbox", "list", "--format", "json"], env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = json.loads(listed.stdout[listed.stdout.index("["):])
    ids = {row["sandboxId"] for row in rows}
    assert {a, b} <= ids
    assert next(r for r in rows if r["sandboxId"] == a)["metadata"] == {"who": "cli"}
    pretty = run_cli(["sandbox", "list"], env)
    assert pretty.returncode == 0 and a in pretty.stdout and b in pretty.stdout

    killed = run_cli(["sandbox", "kill", a], env)
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert a not in _running(cli_server) and b in _running(cli_server)
    missing = run_cli(["sandbox", "kill", a], env)
    assert "wasn't found" in missing.stdout + missing.stderr
    assert run_cli(["sandbox", "kill", "--all"], env).returncode == 0
    assert b not in _running(cli_server)


def test_without_an_api_key_the_cli_says_so(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "E2B_API_KEY"}
    out = run_cli(["sandbox", "list"], env)
    assert out.returncode != 0 and "E2B_API_KEY" in out.stdout + out.stderr
    env["E2B_API_KEY"] = "e2b_" + "00" * 20
    out = run_cli(["sandbox", "list"], env)
    assert out.returncode != 0 and "Invalid API key" in out.stdout + out.stderr


def _read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} never appeared; the terminal showed: {seen[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_sandbox_connect_is_an_interactive_terminal(cli_server: Server, env: dict[str, str]) -> None:
    sid = _create(cli_server)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([node_binary(), str(CLI), "sandbox", "connect", sid], stdin=slave, stdout=slave,
                            stderr=slave, env={**env, "TERM": "xterm"}, close_fds=True, start_new_session=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + 120
        _read_until(master, b"$", deadline)                        # the sandbox shell's prompt
        os.write(master, b"echo cli-$((6*7)) $(whoami) $(tput cols)\r")
        screen = _read_until(master, b"cli-42 user 100", deadline)
        assert b"cli-42 user 100" in screen
        os.write(master, b"exit\r")
        _read_until(master, b"Closing terminal connection", deadline)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert sid in _running(cli_server)          # leaving the terminal does not kill the sandbox


def test_template_create_builds_a_template_from_a_dockerfile(cli_server: Server, env: dict[str, str],
                                                              tmp_path: Path) -> None:
    ctx = tmp_path / "tpl"
    ctx.mkdir()
    (ctx / "hello.sh").write_text("#!/bin/sh\necho hello from the cli template\n")
    (ctx / "e2b.Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        "ENV GREETING=cli-built\n"
        "COPY hello.sh /usr/local/bin/hello\n"
        "RUN chmod 755 /usr/local/bin/hello && python --version > /opt/python-version\n"
        "WORKDIR /home/user\n"
    )
    out = run_cli(["template", "create", "cli-built", "--path", str(ctx), "--cpu-count", "1",
                   "--memory-mb", "512"], env, timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text + "\n--- server log ---\n" + cli_server.log()
    assert "finished" in text

    listed = run_cli(["template", "list", "--format", "json"], env)
    assert listed.returncode == 0 and "cli-built" in listed.stdout, listed.stdout + listed.stderr

    from e2b import Sandbox

    sbx = Sandbox.create("cli-built", timeout=60, api_key=cli_server.api_key, api_url=cli_server.url,
                         sandbox_url=cli_server.url)
    try:
        res = sbx.commands.run("hello; cat /opt/python-version; echo $GREETING")
        assert res.stdout.splitlines()[0] == "hello from the cli template"
        assert res.stdout.splitlines()[1].startswith("Python 3.11") and "cli-built" in res.stdout
    finally:
        sbx.kill()

    deleted = run_cli(["template", "delete", "cli-built", "--yes"], env)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    check = httpx.get(cli_server.url + "/templates/aliases/cli-built", headers={"X-API-Key": cli_server.api_key})
    assert check.status_code == 404


def test_template_build_is_the_deprecated_docker_flow(env: dict[str, str]) -> None:
    """The CLI's `template build` is its old Docker-based system; this CLI version only prints a
    deprecation notice and exits 1 (whatever the server), pointing at `template create`."""
    out = run_cli(["template", "build"], env)
    assert out.returncode == 1 and "deprecated" in (out.stdout + out.stderr).lower()


def test_sandbox_info_exec_metrics_pause_resume(cli_server: Server, env: dict[str, str]) -> None:
    sid = _create(cli_server, metadata={"k": "v"})
    info = run_cli(["sandbox", "info", sid, "--format", "json"], env)
    assert info.returncode == 0, info.stdout + info.stderr
    doc = json.loads(info.stdout[info.stdout.index("{"):])
    assert doc["sandboxId"] == sid and doc["templateId"] == "base" and doc["metadata"] == {"k": "v"}

    ran = run_cli(["sandbox", "exec", "--env", "X=from-cli", sid, "echo $X; exit 3"], env)
    assert ran.stdout.strip() == "from-cli" and ran.returncode == 3, ran.stdout + ran.stderr

    metrics = run_cli(["sandbox", "metrics", sid, "--format", "json"], env)
    assert metrics.returncode == 0 and "cpu" in metrics.stdout.lower(), metrics.stdout + metrics.stderr

    paused = run_cli(["sandbox", "pause", sid], env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    listed = httpx.get(cli_server.url + f"/sandboxes/{sid}", headers={"X-API-Key": cli_server.api_key}).json()
    assert listed["state"] == "paused"
    resumed = run_cli(["sandbox", "resume", sid], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = run_cli(["sandbox", "exec", sid, "echo", "back"], env)
    assert again.returncode == 0 and again.stdout.strip() == "back", again.stdout + again.stderr
