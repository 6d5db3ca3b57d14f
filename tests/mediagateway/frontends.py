"""Helpers for the Media Gateway's front ends (MCP, gateway): the processes they run as, and the
server's own view of which sandboxes are alive (the check that a front end left nothing behind)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(server: Server) -> dict[str, str]:
    """The environment a user's shell gives a front end: the SDK's three variables, nothing else of E2B."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("E2B_")}
    env.update(server.env())
    return env


def running_sandboxes(server: Server) -> set[str]:
    listed = httpx.get(server.url + "/v2/sandboxes", headers={"X-API-Key": server.api_key},
                       params={"state": "running,paused"}, timeout=30)
    listed.raise_for_status()
    return {s["sandboxID"] for s in listed.json()}


def wait_gone(server: Server, sandbox_id: str, within: float = 60) -> bool:
    """Whether the sandbox left the server's list within `within` seconds (teardown is async)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if sandbox_id not in running_sandboxes(server):
            return True
        time.sleep(0.2)
    return False


def wait_listening(proc: subprocess.Popen, port: int, log: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}:\n{log.read_text(errors='replace')[-3000:]}")


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "corral.cli.main", *args], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT)




@pytest.fixture
def cli_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "cli.log"
    path.touch()
    yield path
