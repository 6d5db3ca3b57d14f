"""Nothing of a sandbox outlives it on the host: after `kill`, after its timeout, and after the
server is killed with SIGKILL and restarted, no process, cgroup, loop device, mount, network
namespace or sandbox directory is left behind.

Every test first checks that the detector *sees* the live sandbox, so "no traces" afterwards
cannot come from looking in the wrong place.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxException

from tests.conftest import Server, start_server, stop_server
from tests.security.conftest import cgroup_dirs, run

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def _pids_in_sandbox_cgroup(sandbox_id: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue  # exited while we looked
        if sandbox_id in text:
            pids.append(int(entry))
    return pids


def _loop_devices(needle: str) -> list[str]:
    found = []
    for dev in Path("/sys/block").glob("loop*"):
        try:
            backing = (dev / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue  # not attached
        if needle in backing:
            found.append(f"/dev/{dev.name} -> {backing}")
    return found


def _mounts(needle: str) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if needle in line]


def _named_netns(needle: str) -> list[str]:
    run_netns = Path("/run/netns")
    return [p.name for p in run_netns.iterdir() if needle in p.name] if run_netns.is_dir() else []


def traces(server: Server, sandbox_id: str) -> dict[str, list[str]]:
    """Everything the host still holds for `sandbox_id`; empty lists mean nothing is left."""
    workdir = Path(server.data_dir) / "sandboxes" / sandbox_id
    return {
        "processes": [str(p) for p in _pids_in_sandbox_cgroup(sandbox_id)],
        "cgroups": [str(p) for p in cgroup_dirs(sandbox_id)],
        "loop devices": _loop_devices(sandbox_id),
        "mounts": _mounts(sandbox_id),
        "netns": _named_netns(sandbox_id),
        "directory": [str(workdir)] if workdir.exists() else [],
    }


def _nothing_left(t: dict[str, list[str]]) -> bool:
    return not any(t.values())


def _wait_clean(server: Server, sandbox_id: str, limit_s: float = 60) -> dict[str, list[str]]:
    """Poll until no trace is left (or give up); returns what is left. The limit bounds a hung
    cleanup, it is not a speed assertion."""
    deadline = time.monotonic() + limit_s
    t = traces(server, sandbox_id)
    while not _nothing_left(t) and time.monotonic() < deadline:
        time.sleep(0.25)
        t = traces(server, sandbox_id)
    return t


def _make_busy(sbx: Sandbox) -> None:
    """Give the sandbox what cleanup tends to miss: background and orphaned processes, files,
    a process in its own session, and a process that ignores SIGTERM."""
    sbx.files.write("/home/user/data.txt", "x" * 100_000)
    sbx.commands.run("sleep 900", background=True, timeout=0)
    sbx.commands.run("(setsid sleep 901 &) ; (nohup sleep 902 >/dev/null 2>&1 &)", timeout=30)
    sbx.commands.run("(trap '' TERM HUP; exec sleep 903) & disown", timeout=30, user="root")


def _assert_visible(server: Server, sbx: Sandbox) -> dict[str, list[str]]:
    t = traces(server, sbx.sandbox_id)
    assert len(t["processes"]) >= 4, t
    assert t["cgroups"], t
    assert t["directory"], t
    return t


def test_kill_leaves_nothing(sdk, server: Server) -> None:  # type: ignore[no-untyped-def]
    sbx = Sandbox.create(timeout=300, metadata={"suite": "leftovers"})
    try:
        _make_busy(sbx)
        _assert_visible(server, sbx)
        assert sbx.kill() is True
        left = traces(server, sbx.sandbox_id)
        assert _nothing_left(left), f"left behind after kill: {left}"
    finally:
        Sandbox.kill(sbx.sandbox_id)  # no-op (False) when the test got that far


def test_timeout_leaves_nothing(sdk, server: Server) -> None:  # type: ignore[no-untyped-def]
    sbx = Sandbox.create(timeout=300, metadata={"suite": "leftovers"})
    try:
        _make_busy(sbx)
        _assert_visible(server, sbx)
        sbx.set_timeout(1)
        left = _wait_clean(server, sbx.sandbox_id)
        assert _nothing_left(left), f"left behind after timeout: {left}"
        assert sbx.is_running() is False
    finally:
        Sandbox.kill(sbx.sandbox_id)  # no-op (False) when the test got that far


def test_sandbox_that_dies_on_its_own_is_cleaned_up(sdk, server: Server) -> None:  # type: ignore[no-untyped-def]
    """If the sandbox's init dies (here: the host kills it), the server notices and cleans up."""
    sbx = Sandbox.create(timeout=300, metadata={"suite": "leftovers"})
    try:
        _make_busy(sbx)
        t = _assert_visible(server, sbx)
        for pid in map(int, t["processes"]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        left = _wait_clean(server, sbx.sandbox_id)
        assert _nothing_left(left), f"left behind after the sandbox died: {left}"
        assert sbx.is_running() is False
    finally:
        Sandbox.kill(sbx.sandbox_id)  # no-op (False) when the test got that far


def _opts(srv: Server) -> dict[str, str]:
    return {"api_key": srv.api_key, "api_url": srv.url, "sandbox_url": srv.url}


def _shutdown(srv: Server, sandboxes: list[Sandbox]) -> None:
    """Kill what a (possibly failed) test created, then stop the server: a stopped server leaves
    its sandboxes running for re-adoption, so anything not killed here would outlive the suite."""
    if srv.proc.poll() is None:
        for sbx in sandboxes:
            try:
                Sandbox.kill(sbx.sandbox_id, **_opts(srv))
            except Exception:  # noqa: BLE001 - best effort cleanup after a failure
                pass
    stop_server(srv)


def test_server_sigkill_then_restart_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(data_dir)
    made: list[Sandbox] = []
    try:
        sbx = Sandbox.create(timeout=600, metadata={"suite": "crash"}, **_opts(srv))
        made.append(sbx)
        _make_busy(sbx)
        _assert_visible(srv, sbx)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        srv = start_server(data_dir)

        adopted = True
        try:
            info = Sandbox.get_info(sbx.sandbox_id, **_opts(srv))
        except SandboxException:
            adopted = False
        if adopted:
            assert info.metadata == {"suite": "crash"}
            again = Sandbox.connect(sbx.sandbox_id, **_opts(srv))
            assert again.commands.run("echo after-restart").stdout == "after-restart\n"
            assert again.files.read("/home/user/data.txt") == "x" * 100_000
            _assert_visible(srv, again)
            assert again.kill() is True
            left = traces(srv, sbx.sandbox_id)
        else:
            # Not re-adopted: then the restart must have removed every trace of it.
            left = _wait_clean(srv, sbx.sandbox_id)
        assert _nothing_left(left), f"left behind after crash + restart (adopted={adopted}): {left}"

        # A fresh sandbox on the restarted server works and cleans up too.
        fresh = Sandbox.create(timeout=120, **_opts(srv))
        made.append(fresh)
        assert fresh.commands.run("echo fresh").stdout == "fresh\n"
        assert fresh.kill() is True
        assert _nothing_left(traces(srv, fresh.sandbox_id))
    finally:
        _shutdown(srv, made)
    assert not list((data_dir / "sandboxes").glob("*")) if (data_dir / "sandboxes").exists() else True


def test_timeout_that_expires_while_the_server_is_down(tmp_path: Path) -> None:
    """The server dies, a sandbox's lifetime ends while it is down: the restarted server must
    end that sandbox and leave nothing, while a sandbox with time left is unaffected."""
    data_dir = tmp_path / "data"
    srv = start_server(data_dir)
    made: list[Sandbox] = []
    try:
        expiring = Sandbox.create(timeout=600, **_opts(srv))
        lasting = Sandbox.create(timeout=600, **_opts(srv))
        made += [expiring, lasting]
        _make_busy(expiring)
        _assert_visible(srv, expiring)
        expiring.set_timeout(2)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        time.sleep(3)  # let the 2 s lifetime run out while nothing is watching
        srv = start_server(data_dir)
        left = _wait_clean(srv, expiring.sandbox_id)
        assert _nothing_left(left), f"left behind after a timeout during downtime: {left}"
        assert Sandbox.kill(expiring.sandbox_id, **_opts(srv)) is False
        # The one with time left is either re-adopted and healthy, or gone without a trace.
        try:
            Sandbox.get_info(lasting.sandbox_id, **_opts(srv))
        except SandboxException:
            left = _wait_clean(srv, lasting.sandbox_id)
        else:
            survivor = Sandbox.connect(lasting.sandbox_id, **_opts(srv))
            assert survivor.commands.run("echo lasting").stdout == "lasting\n"
            assert survivor.kill() is True
            left = traces(srv, lasting.sandbox_id)
        assert _nothing_left(left), f"left behind: {left}"
    finally:
        _shutdown(srv, made)


def test_restart_of_one_server_spares_another_servers_sandboxes(sdk, server: Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two corral servers on one host (as in this test suite) must not reap each other's
    sandboxes when one of them recovers after a crash."""
    neighbour = Sandbox.create(timeout=300, metadata={"suite": "neighbour-of-crash"})
    try:
        other = start_server(tmp_path / "data")
        made: list[Sandbox] = []
        try:
            mine = Sandbox.create(timeout=300, **_opts(other))
            made.append(mine)
            other.proc.send_signal(signal.SIGKILL)
            other.proc.wait()
            other = start_server(tmp_path / "data")
        finally:
            _shutdown(other, made)
        assert neighbour.is_running() is True
        assert run(neighbour, "echo still-here").stdout == "still-here\n"
        assert traces(server, neighbour.sandbox_id)["processes"]
    finally:
        neighbour.kill()
