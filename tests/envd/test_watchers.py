"""WatchDir stream and the CreateWatcher / GetWatcherEvents / RemoveWatcher family."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.envd.helpers import Daemon, StreamReader, envelope, unary

pytestmark = pytest.mark.root


async def _poll(c, wid: str, want: set[tuple[str, str]]) -> list[dict]:
    seen: list[dict] = []
    for _ in range(200):
        r = await unary(c, "filesystem.Filesystem/GetWatcherEvents", {"watcherId": wid})
        assert r.status_code == 200
        seen += r.json()["events"]
        if want <= {(e["name"], e["type"]) for e in seen}:
            return seen
        await asyncio.sleep(0.02)
    pytest.fail(f"missing events {want} in {seen}")


async def test_polled_watcher_recursive_with_entries(daemon: Daemon, home: Path) -> None:
    base = home / "watched"
    base.mkdir(exist_ok=True)
    os.chown(base, 1000, 1000)
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/CreateWatcher",
                        {"path": str(base), "recursive": True, "includeEntry": True}, **{"keepalive-ping-interval": "50"})
        assert r.status_code == 200
        wid = r.json()["watcherId"]
        (base / "hello.txt").write_text("x")
        (base / "sub").mkdir()
        await _poll(c, wid, {("hello.txt", "EVENT_TYPE_CREATE"), ("sub", "EVENT_TYPE_CREATE")})
        # the new subdirectory is watched too (recursive)
        await asyncio.sleep(0.1)
        (base / "sub" / "inner.txt").write_text("y")
        os.rename(base / "hello.txt", base / "renamed.txt")
        (base / "renamed.txt").unlink()
        events = await _poll(c, wid, {("sub/inner.txt", "EVENT_TYPE_CREATE"), ("hello.txt", "EVENT_TYPE_RENAME"),
                                      ("renamed.txt", "EVENT_TYPE_REMOVE")})
        inner = [e for e in events if e["name"] == "sub/inner.txt" and e["type"] == "EVENT_TYPE_CREATE"][0]
        assert inner["entry"]["path"] == str(base / "sub" / "inner.txt")
        assert (await unary(c, "filesystem.Filesystem/RemoveWatcher", {"watcherId": wid})).status_code == 200
        r = await unary(c, "filesystem.Filesystem/GetWatcherEvents", {"watcherId": wid})
        assert r.status_code == 404
        r = await unary(c, "filesystem.Filesystem/RemoveWatcher", {"watcherId": wid})
        assert r.status_code == 404


async def test_watch_errors(daemon: Daemon, home: Path) -> None:
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/CreateWatcher", {"path": str(home / "nope")})
        assert r.status_code == 404
        f = home / "plainfile"
        f.write_text("")
        r = await unary(c, "filesystem.Filesystem/CreateWatcher", {"path": str(f)})
        assert r.status_code == 400
        r = await unary(c, "filesystem.Filesystem/CreateWatcher", {"path": str(daemon.sandbox.root_home)})
        assert r.status_code == 403  # user 1000 may not watch /root


async def test_watch_dir_stream(daemon: Daemon, home: Path) -> None:
    base = home / "streamed"
    base.mkdir(exist_ok=True)
    async with daemon.client() as c:
        async with c.stream("POST", "/filesystem.Filesystem/WatchDir", content=envelope({"path": str(base)}),
                            headers={"content-type": "application/connect+json", "keepalive-ping-interval": "0.2"}) as resp:
            assert resp.headers["content-type"] == "application/connect+json"
            reader = StreamReader(resp)
            assert await reader.next() == (0, {"start": {}})
            (base / "a.txt").write_text("1")
            seen = set()
            keepalive = False
            while ("a.txt", "EVENT_TYPE_CREATE") not in seen or not keepalive:
                flags, msg = await reader.next()
                assert flags == 0
                if "filesystem" in msg:
                    seen.add((msg["filesystem"]["name"], msg["filesystem"]["type"]))
                else:
                    keepalive = keepalive or msg == {"keepalive": {}}


async def test_sdk_writes_show_as_e2b_events_on_the_files_own_name(daemon: Daemon, home: Path) -> None:
    """What E2B's envd makes a watcher see: a new file is CREATE, CHMOD, WRITE on its own name, a
    rewrite is WRITE on its own name (never a temporary name), and a directory made through
    MakeDir is watched (recursive) before the call returns, so a write into it at once is seen."""
    base = home / "sdk-watched"
    base.mkdir(exist_ok=True)
    os.chown(base, 1000, 1000)
    async with daemon.client() as c:
        wid = (await unary(c, "filesystem.Filesystem/CreateWatcher", {"path": str(base), "recursive": True})).json()["watcherId"]
        r = await c.post("/files", params={"path": str(base / "new.txt")}, files={"file": ("f", b"first")})
        assert r.status_code == 200
        events = (await unary(c, "filesystem.Filesystem/GetWatcherEvents", {"watcherId": wid})).json()["events"]
        assert [(e["name"], e["type"]) for e in events] == [
            ("new.txt", "EVENT_TYPE_CREATE"), ("new.txt", "EVENT_TYPE_CHMOD"), ("new.txt", "EVENT_TYPE_WRITE")]
        r = await c.post("/files", params={"path": str(base / "new.txt")}, files={"file": ("f", b"second")})
        assert r.status_code == 200 and (base / "new.txt").read_text() == "second"
        events = (await unary(c, "filesystem.Filesystem/GetWatcherEvents", {"watcherId": wid})).json()["events"]
        assert ("new.txt", "EVENT_TYPE_WRITE") in {(e["name"], e["type"]) for e in events}
        assert all(e["name"] == "new.txt" for e in events), events
        assert (await unary(c, "filesystem.Filesystem/MakeDir", {"path": str(base / "made")})).status_code == 200
        r = await c.post("/files", params={"path": str(base / "made" / "in.txt")}, files={"file": ("f", b"x")})
        assert r.status_code == 200
        events = (await unary(c, "filesystem.Filesystem/GetWatcherEvents", {"watcherId": wid})).json()["events"]
        seen = {(e["name"], e["type"]) for e in events}
        assert ("made", "EVENT_TYPE_CREATE") in seen and ("made/in.txt", "EVENT_TYPE_WRITE") in seen, events
        await unary(c, "filesystem.Filesystem/RemoveWatcher", {"watcherId": wid})
