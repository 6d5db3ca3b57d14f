"""Deadlines hold without the server: a sandbox whose server was killed with SIGKILL (and never
restarted) ends at its own deadline and leaves nothing on the host; set_timeout moves that
deadline; a graceful stop says what it leaves running.

As in test_leftovers, each test first checks that the detector sees the live sandbox.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from e2b import Sandbox

from tests.conftest import Server, start_server, stop_server
from tests.security.test_leftovers import _assert_visible, _make_busy, traces

pytestmark = [pytest.mark.e2e, pytest.mark.root]

# Bounds a hung clean-up; not a speed assertion (the sandbox ends SELF_END_GRACE_S after its timeout).
CLEAN_LIMIT_S = 60.0


def _opts(srv: Server) -> dict[str, str]:
    return {"api_key": srv.api_key, "api_url": srv.url, "sandbox_url": srv.url}


def _host_traces(srv: Server, sandbox_id: str) -> dict[str, list[str]]:
    """What the host holds for the sandbox, without its workdir: with no server left, the data
    dir is the server's to reconcile (or, here, already removed)."""
    t = traces(srv, sandbox_id)
    t.pop("directory")
    return t


def _wait_gone(srv: Server, sandbox_id: str) -> dict[str, list[str]]:
    deadline = time.monotonic() + CLEAN_LIMIT_S
    t = _host_traces(srv, sandbox_id)
    while any(t.values()) and time.monotonic() < deadline:
        time.sleep(0.25)
        t = _host_traces(srv, sandbox_id)
    return t


def _sigkill(srv: Server) -> None:
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()


def test_orphan_ends_at_its_timeout_after_server_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(data_dir)
    try:
        sbx = Sandbox.create(timeout=60, metadata={"suite": "deadlines"}, **_opts(srv))
        _make_busy(sbx)
        _assert_visible(srv, sbx)
        # The own deadline moves with set_timeout: shorten it, then lose the server for good.
        sbx.set_timeout(4)
        ended_by = time.monotonic() + 4
        _sigkill(srv)
        shutil.rmtree(data_dir)   # what interrupted test runs did: nothing left to restart from
        left = _wait_gone(srv, sbx.sandbox_id)
        assert not any(left.values()), f"the orphan outlived its timeout: {left}"
        assert time.monotonic() >= ended_by - 1, "the sandbox ended before its timeout"
    finally:
        stop_server(srv)


def test_extended_deadline_is_kept_without_the_server(tmp_path: Path) -> None:
    """set_timeout that extends: the sandbox must not end at its first deadline."""
    data_dir = tmp_path / "data"
    srv = start_server(data_dir)
    sbx = None
    try:
        sbx = Sandbox.create(timeout=3, metadata={"suite": "deadlines"}, **_opts(srv))
        sbx.set_timeout(120)
        first_end = time.monotonic() + 3
        _sigkill(srv)
        # Well past the first deadline and its grace: still alive ...
        time.sleep(max(0.0, first_end + 6 - time.monotonic()))
        t = _host_traces(srv, sbx.sandbox_id)
        assert t["processes"] and t["cgroups"], f"the sandbox ended at its old deadline: {t}"
        # ... and a restarted server re-adopts it (and reconciles its deadline).
        srv = start_server(data_dir)
        again = Sandbox.connect(sbx.sandbox_id, **_opts(srv))
        assert again.commands.run("echo still-here").stdout == "still-here\n"
        assert again.kill() is True
        left = _wait_gone(srv, sbx.sandbox_id)
        assert not any(left.values()), left
    finally:
        stop_server(srv)


def test_graceful_stop_reports_what_it_leaves_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(data_dir)
    try:
        sbx = Sandbox.create(timeout=6, metadata={"suite": "deadlines"}, **_opts(srv))
        assert traces(srv, sbx.sandbox_id)["cgroups"]
        stop_server(srv, kill_sandboxes=False)
        log = srv.log_path.read_text()
        assert "1 sandbox(es) left running" in log, log[-2000:]
        assert sbx.sandbox_id in log.split("left running", 1)[1]
        # Left running, it still ends at its own deadline, and the spawner's janitor removes its
        # cgroup although no server is left.
        left = _wait_gone(srv, sbx.sandbox_id)
        assert not any(left.values()), f"left behind after a graceful stop: {left}"
    finally:
        stop_server(srv)


def test_graceful_stop_with_nothing_running_says_so(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    stop_server(srv)
    assert "no sandbox left running" in srv.log_path.read_text()
