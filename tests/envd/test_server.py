"""The daemon as the runtime runs it: preloaded and then unable to import, pid-1 reaping, SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import signal
from pathlib import Path

import pytest

from tests.envd.helpers import Daemon, StreamReader, basic, envelope, start_daemon, start_msg, stop_daemon, stream, unary

pytestmark = pytest.mark.root


def _proc_state(pid: int) -> tuple[str, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return fields[0], int(fields[1])  # state, ppid


async def _gone(pid: int) -> bool:
    for _ in range(500):
        if _proc_state(pid) is None:
            return True
        await asyncio.sleep(0.01)
    return False


async def exercise_everything(d: Daemon) -> None:
    """Touch every route and RPC (success and error paths) of a running daemon."""
    home = d.sandbox.user_home
    async with d.client() as c:
        assert (await c.get("/health")).status_code == 204
        assert (await c.get("/envs")).json() == {"SANDBOX_VAR": "from-config"}
        async with d.client(token="bad") as bad:
            assert (await bad.get("/envs")).status_code == 401
        # files
        r = await c.post("/files", files=[("file", (str(home / "p" / "a.txt"), "héllo", "text/plain")),
                                          ("file", (str(home / "p" / "b.txt"), b"b", "text/plain"))])
        assert r.status_code == 200, r.text
        r = await c.post("/files", params={"path": "gz.txt"}, content=gzip.compress(b"gz"),
                         headers={"content-type": "application/octet-stream", "content-encoding": "gzip"})
        assert r.status_code == 200, r.text
        assert (await c.get("/files", params={"path": str(home / "p" / "a.txt")})).text == "héllo"
        assert (await c.get("/files", params={"path": "missing"})).status_code == 404
        assert (await c.get("/files", params={"path": str(d.sandbox.root_home / "x")})).status_code in (403, 404)
        r = await c.post("/files", params={"path": "over"}, content=b"x" * 2048,
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 413
        # filesystem
        for method, msg, status in [
            ("filesystem.Filesystem/Stat", {"path": "gz.txt"}, 200),
            ("filesystem.Filesystem/Stat", {"path": "nope"}, 404),
            ("filesystem.Filesystem/MakeDir", {"path": "dir1/dir2"}, 200),
            ("filesystem.Filesystem/MakeDir", {"path": "dir1/dir2"}, 409),
            ("filesystem.Filesystem/ListDir", {"path": "", "depth": 3}, 400),
            ("filesystem.Filesystem/ListDir", {"path": str(home), "depth": 3}, 200),
            ("filesystem.Filesystem/Move", {"source": "gz.txt", "destination": "dir1/gz.txt"}, 200),
            ("filesystem.Filesystem/Remove", {"path": "dir1"}, 200),
            ("filesystem.Filesystem/MakeDir", {"path": str(d.sandbox.root_home / "no")}, 403),
        ]:
            r = await unary(c, method, msg)
            assert r.status_code == status, (method, r.text)
        r = await unary(c, "filesystem.Filesystem/Stat", {"path": "/"}, authorization=basic("ghost"))
        assert r.status_code == 401
        wid = (await unary(c, "filesystem.Filesystem/CreateWatcher", {"path": str(home), "recursive": True,
                                                                      "includeEntry": True})).json()["watcherId"]
        (home / "w.txt").write_text("w")
        for _ in range(100):
            events = (await unary(c, "filesystem.Filesystem/GetWatcherEvents", {"watcherId": wid})).json()["events"]
            if events:
                break
            await asyncio.sleep(0.02)
        assert events and events[0]["entry"]["name"] == "w.txt"
        assert (await unary(c, "filesystem.Filesystem/RemoveWatcher", {"watcherId": wid})).status_code == 200
        async with c.stream("POST", "/filesystem.Filesystem/WatchDir", content=envelope({"path": str(home)}),
                            headers={"content-type": "application/connect+json", "keepalive-ping-interval": "0.1"}) as resp:
            reader = StreamReader(resp)
            assert await reader.next() == (0, {"start": {}})
            assert await reader.next() == (0, {"keepalive": {}})
        # processes
        r = await stream(c, "process.Process/Start", start_msg("echo out; echo err >&2; exit 3"))
        assert r.output() == b"out\n" and r.output("stderr") == b"err\n" and r.end_event["exitCode"] == 3
        r = await stream(c, "process.Process/Start", start_msg("sleep 100"), **{"connect-timeout-ms": "100"})
        assert r.end["error"]["code"] == "deadline_exceeded"   # killed at its Connect-Timeout-Ms
        r = await stream(c, "process.Process/Start", {"process": {"cmd": "/nonexistent"}})
        assert r.end["error"]["code"] == "invalid_argument"
        r = await stream(c, "process.Process/Start", {"process": {"cmd": "x"}}, authorization=basic("ghost"))
        assert r.end["error"]["code"] == "unauthenticated"
        r = await stream(c, "process.Process/Start", start_msg("sleep 1; echo k"), **{"keepalive-ping-interval": "0.2"})
        assert {"keepalive": {}} in r.events
        msg = {"process": {"cmd": "/bin/bash", "args": ["-c", "read x; stty size; echo got:$x"]},
               "pty": {"size": {"cols": 90, "rows": 20}}, "tag": "t1"}
        async with c.stream("POST", "/process.Process/Start", content=envelope(msg),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            assert [p["tag"] for p in (await unary(c, "process.Process/List", {})).json()["processes"]] == ["t1"]
            assert (await unary(c, "process.Process/Update", {"process": {"pid": pid},
                                                              "pty": {"size": {"cols": 70, "rows": 10}}})).status_code == 200
            async with c.stream("POST", "/process.Process/Connect", content=envelope({"process": {"tag": "t1"}}),
                                headers={"content-type": "application/connect+json"}) as resp2:
                other = StreamReader(resp2)
                assert (await other.next_event())["start"]["pid"] == pid
                r = await c.post("/process.Process/StreamInput", headers={"content-type": "application/connect+json"},
                                 content=envelope({"start": {"process": {"pid": pid}}})
                                 + envelope({"data": {"input": {"pty": base64.b64encode(b"abc\n").decode()}}}))
                assert r.status_code == 200
                out = b""
                while True:
                    ev = await other.next_event()
                    if "end" in ev:
                        break
                    out += base64.b64decode(ev["data"]["pty"])
                assert b"10 70" in out and b"got:abc" in out
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("cat", stdin=True)),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            await unary(c, "process.Process/SendInput", {"process": {"pid": pid}, "input": {"stdin": "eHkK"}})
            assert base64.b64decode((await reader.next_event())["data"]["stdout"]) == b"xy\n"
            assert (await unary(c, "process.Process/CloseStdin", {"process": {"pid": pid}})).status_code == 200
            assert (await reader.next_event())["end"]["exitCode"] == 0
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("sleep 100")),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            r = await unary(c, "process.Process/SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGTERM"})
            assert r.status_code == 200
            assert (await reader.next_event())["end"]["status"] == "signal: terminated"
        r = await unary(c, "process.Process/SendSignal", {"process": {"pid": 999999}, "signal": "SIGNAL_SIGKILL"})
        assert r.status_code == 404
        r = await c.post("/process.Process/List", content=b"{}", headers={"content-type": "text/plain"})
        assert r.status_code == 415


async def test_preloaded_daemon_serves_everything_with_imports_disabled() -> None:
    d = start_daemon(lock_imports=True, max_upload_bytes=1024)
    try:
        await exercise_everything(d)
        assert d.proc.poll() is None
    finally:
        rc = stop_daemon(d)
    log = d.stderr()
    for marker in ("ImportError", "ModuleNotFoundError", "Traceback", "unhandled error"):
        assert marker not in log, log
    assert rc == 0


async def test_the_lock_really_blocks_imports() -> None:
    """Guard for the test above: the same lock makes a fresh import fail."""
    import subprocess
    import sys
    code = ("import sys, importlib.machinery as m; sys.path.clear(); "
            "sys.meta_path[:] = [f for f in sys.meta_path if f in (m.BuiltinImporter, m.FrozenImporter)]; "
            "sys.path_importer_cache.clear()\n"
            "try:\n import uvicorn\nexcept ImportError:\n print('blocked')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "blocked"


async def test_orphans_are_reaped(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("(sleep 0.5 >/dev/null 2>&1 & echo $!) ; exit 0"))
    orphan = int(r.output())
    state = _proc_state(orphan)
    assert state is not None and state[1] == daemon.proc.pid  # reparented to the daemon
    assert await _gone(orphan), f"orphan {orphan} left as {_proc_state(orphan)}"
    zombies = [p for p in os.listdir("/proc") if p.isdigit() and (s := _proc_state(int(p))) and s == ("Z", daemon.proc.pid)]
    assert zombies == []


async def test_sigterm_stops_the_daemon_and_its_processes() -> None:
    d = start_daemon()
    try:
        async with d.client() as c:
            async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("sleep 1000")),
                                headers={"content-type": "application/connect+json"}) as resp:
                pid = (await StreamReader(resp).next_event())["start"]["pid"]
                d.proc.send_signal(signal.SIGTERM)
                await asyncio.get_running_loop().run_in_executor(None, d.proc.wait, 20)
        assert d.proc.returncode == 0, d.stderr()
        assert await _gone(pid)
    finally:
        stop_daemon(d)
