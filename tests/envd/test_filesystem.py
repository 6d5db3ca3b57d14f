"""filesystem.Filesystem unary RPCs, including the user permission boundary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.envd.helpers import Daemon, basic, unary

pytestmark = pytest.mark.root


async def test_stat_file_dir_symlink_and_missing(daemon: Daemon, home: Path) -> None:
    f = home / "stat.txt"
    f.write_text("hello")
    os.chown(f, 1000, 1000)
    os.chmod(f, 0o640)
    (home / "link").unlink(missing_ok=True)
    os.symlink(f, home / "link")
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/Stat", {"path": str(f)})
        e = r.json()["entry"]
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert e["name"] == "stat.txt" and e["type"] == "FILE_TYPE_FILE" and e["path"] == str(f)
        assert int(e["size"]) == 5 and e["mode"] == 0o640 and e["permissions"] == "-rw-r-----"
        assert e["owner"] == "user" and e["group"] == "user"
        assert e["modifiedTime"].endswith("Z") and e["modifiedTime"][4] == "-"
        # relative paths resolve against the user's home
        e = (await unary(c, "filesystem.Filesystem/Stat", {"path": "link"})).json()["entry"]
        assert e["type"] == "FILE_TYPE_FILE" and e["isSymlink"] is True and e["symlinkTarget"] == str(f)  # as E2B
        e = (await unary(c, "filesystem.Filesystem/Stat", {"path": str(home)})).json()["entry"]
        assert e["type"] == "FILE_TYPE_DIRECTORY" and e["permissions"].startswith("d")
        r = await unary(c, "filesystem.Filesystem/Stat", {"path": str(home / "missing")})
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_make_dir_creates_parents_owned_by_user_and_409_when_existing(daemon: Daemon, home: Path) -> None:
    target = home / "a" / "b" / "c"
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/MakeDir", {"path": str(target)})
        assert r.status_code == 200 and r.json()["entry"]["type"] == "FILE_TYPE_DIRECTORY"
        assert target.is_dir() and target.stat().st_uid == 1000 and (home / "a").stat().st_uid == 1000
        r = await unary(c, "filesystem.Filesystem/MakeDir", {"path": str(target)})
    assert r.status_code == 409 and r.json()["code"] == "already_exists"


async def test_move_and_remove(daemon: Daemon, home: Path) -> None:
    src = home / "mv-src.txt"
    src.write_text("x")
    os.chown(src, 1000, 1000)
    tree = home / "tree" / "sub"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "f").write_text("y")
    for p in (home / "tree", tree, tree / "f"):
        os.chown(p, 1000, 1000)
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/Move", {"source": str(src), "destination": str(home / "new" / "dst.txt")})
        assert r.status_code == 200 and r.json()["entry"]["path"] == str(home / "new" / "dst.txt")
        assert not src.exists() and (home / "new" / "dst.txt").read_text() == "x"
        r = await unary(c, "filesystem.Filesystem/Move", {"source": str(src), "destination": str(home / "zzz")})
        assert r.status_code == 404
        assert (await unary(c, "filesystem.Filesystem/Remove", {"path": str(home / "tree")})).status_code == 200
        assert not (home / "tree").exists()
        # Removing what is already gone succeeds, as with E2B's envd.
        r = await unary(c, "filesystem.Filesystem/Remove", {"path": str(home / "tree")})
    assert r.status_code == 200


async def test_list_dir_depth(daemon: Daemon, home: Path) -> None:
    base = home / "ls"
    (base / "d1" / "d2").mkdir(parents=True, exist_ok=True)
    (base / "f").write_text("1")
    (base / "d1" / "g").write_text("2")
    (base / "d1" / "d2" / "h").write_text("3")
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/ListDir", {"path": str(base)})  # depth omitted -> 1
        assert sorted(e["name"] for e in r.json()["entries"]) == ["d1", "f"]
        r = await unary(c, "filesystem.Filesystem/ListDir", {"path": str(base), "depth": "2"})  # int64-as-string
        paths = sorted(e["path"] for e in r.json()["entries"])
        assert paths == sorted(str(base / p) for p in ("d1", "f", "d1/d2", "d1/g"))
        r = await unary(c, "filesystem.Filesystem/ListDir", {"path": str(base), "depth": 10})
        assert str(base / "d1/d2/h") in [e["path"] for e in r.json()["entries"]]
        r = await unary(c, "filesystem.Filesystem/ListDir", {"path": str(base / "f")})
        assert r.status_code == 400
        r = await unary(c, "filesystem.Filesystem/ListDir", {"path": str(base / "nope")})
    assert r.status_code == 404


async def test_user_cannot_touch_root_territory(daemon: Daemon) -> None:
    root_home = daemon.sandbox.root_home
    secret = root_home / "secret"
    secret.write_text("s")
    async with daemon.client() as c:
        for method, msg in [
            ("filesystem.Filesystem/MakeDir", {"path": str(root_home / "x")}),
            ("filesystem.Filesystem/ListDir", {"path": str(root_home)}),
            ("filesystem.Filesystem/Stat", {"path": str(secret)}),
            ("filesystem.Filesystem/Remove", {"path": str(secret)}),
            ("filesystem.Filesystem/Move", {"source": str(secret), "destination": "/tmp/stolen"}),
        ]:
            r = await unary(c, method, msg)
            assert r.status_code == 403 and r.json()["code"] == "permission_denied", (method, r.text)
        assert secret.exists() and not (root_home / "x").exists()
        # as root (Basic auth) the same call works
        r = await unary(c, "filesystem.Filesystem/Stat", {"path": str(secret)}, authorization=basic("root"))
    assert r.status_code == 200


async def test_unknown_user_is_unauthenticated(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await unary(c, "filesystem.Filesystem/Stat", {"path": "/"}, authorization=basic("ghost"))
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


async def test_protobuf_json_leniency(daemon: Daemon, home: Path) -> None:
    async with daemon.client() as c:
        # unknown fields are ignored; an empty body is an empty message
        r = await unary(c, "filesystem.Filesystem/Stat", {"path": str(home), "someFutureField": 1})
        assert r.status_code == 200
        r = await c.post("/process.Process/List", content=b"", headers={"content-type": "application/json"})
        assert r.status_code == 200 and "processes" in r.json()
        r = await c.post("/filesystem.Filesystem/Stat", content=b"[1]", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
        r = await c.post("/filesystem.Filesystem/Stat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
