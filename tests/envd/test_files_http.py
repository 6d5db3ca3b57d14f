"""GET/POST /files: downloads, uploads (multipart, octet-stream, gzip), limits, atomicity, permissions."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.envd.helpers import Daemon

pytestmark = pytest.mark.root

LIMIT = 8 * 1024 * 1024  # the module daemon's max_upload_bytes


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".corral-upload-" in p.name]



async def _over_the_limit_unsized():
    """An upload body streamed without a length that ends past the size limit."""
    for _ in range(LIMIT // 65536 + 2):
        yield b"y" * 65536

async def test_download_bytes_and_errors(daemon: Daemon, home: Path) -> None:
    f = home / "dl.bin"
    f.write_bytes(bytes(range(256)) * 1000)
    async with daemon.client() as c:
        r = await c.get("/files", params={"path": str(f)})
        assert r.status_code == 200 and r.content == f.read_bytes()
        assert r.headers["content-type"] == "application/octet-stream"
        r = await c.get("/files", params={"path": "dl.bin"})  # relative to home
        assert r.status_code == 200 and len(r.content) == 256000
        r = await c.get("/files", params={"path": str(home / "missing")})
        assert r.status_code == 404 and r.json()["code"] == 404 and r.json()["message"]
        r = await c.get("/files", params={"path": str(home)})
        assert r.status_code == 400 and r.json()["code"] == 400
        r = await c.get("/files")
        assert r.status_code == 400


async def test_user_cannot_read_a_0600_root_file_but_root_can(daemon: Daemon) -> None:
    secret = daemon.sandbox.root.joinpath("secret600")
    secret.write_text("top secret")
    os.chmod(secret, 0o600)
    async with daemon.client() as c:
        r = await c.get("/files", params={"path": str(secret)})
        assert r.status_code == 403 and "top secret" not in r.text
        r = await c.get("/files", params={"path": str(secret), "username": "root"})
        assert r.status_code == 200 and r.text == "top secret"
        r = await c.get("/files", params={"path": str(secret), "username": "ghost"})
    assert r.status_code == 401


async def test_fifo_is_refused_instead_of_hanging(daemon: Daemon, home: Path) -> None:
    fifo = home / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    async with daemon.client() as c:
        r = await c.get("/files", params={"path": str(fifo)})
    assert r.status_code == 400


async def test_multipart_upload_single_with_path_param(daemon: Daemon, home: Path) -> None:
    target = home / "up" / "deep" / "hello.txt"
    async with daemon.client() as c:
        r = await c.post("/files", params={"path": str(target)},
                         files={"file": ("ignored-name.txt", b"hello world", "text/plain")})
    assert r.status_code == 200
    assert r.json() == [{"name": "hello.txt", "type": "file", "path": str(target)}]
    assert target.read_bytes() == b"hello world"
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert (home / "up").stat().st_uid == 1000


async def test_multipart_many_files_use_full_path_filenames(daemon: Daemon, home: Path) -> None:
    a, b = home / "multi" / "a.txt", home / "multi" / "sub" / "b.bin"
    async with daemon.client() as c:
        r = await c.post("/files", files=[
            ("file", (str(a), b"AAA", "text/plain")),
            ("other", ("x", b"ignored field", "text/plain")),
            ("file", (str(b), b"\x00\x01" * 50000, "application/octet-stream")),
        ])
    assert r.status_code == 200
    assert [e["path"] for e in r.json()] == [str(a), str(b)]
    assert a.read_bytes() == b"AAA" and b.read_bytes() == b"\x00\x01" * 50000


async def test_duplicate_targets_are_rejected_and_nothing_is_written(daemon: Daemon, home: Path) -> None:
    t = home / "dup.txt"
    t.write_text("original")
    async with daemon.client() as c:
        r = await c.post("/files", files=[("file", (str(t), b"one", "text/plain")), ("file", ("dup.txt", b"two", "text/plain"))])
    assert r.status_code == 400
    assert t.read_text() == "original" and leftovers(home) == []


async def test_octet_stream_plain_and_gzip(daemon: Daemon, home: Path) -> None:
    t = home / "raw.bin"
    data = os.urandom(300_000)
    async with daemon.client() as c:
        r = await c.post("/files", params={"path": str(t)}, content=data,
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200 and r.json()[0]["path"] == str(t)
        assert t.read_bytes() == data
        r = await c.post("/files", params={"path": str(t)}, content=gzip.compress(b"z" * 100_000),
                         headers={"content-type": "application/octet-stream", "content-encoding": "gzip"})
        assert r.status_code == 200 and t.read_bytes() == b"z" * 100_000
        r = await c.post("/files", content=b"x", headers={"content-type": "application/octet-stream"})
        assert r.status_code == 400  # path is required
        r = await c.post("/files", params={"path": str(t)}, content=b"not gzip at all",
                         headers={"content-type": "application/octet-stream", "content-encoding": "gzip"})
    assert r.status_code == 400 and t.read_bytes() == b"z" * 100_000


async def test_upload_limit_is_413_and_the_old_file_survives(daemon: Daemon, home: Path) -> None:
    t = home / "big.bin"
    t.write_text("keep me")
    async with daemon.client() as c:
        # declared too large
        r = await c.post("/files", params={"path": str(t)}, content=b"x" * (LIMIT + 1),
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 413
        # streamed without a length
        r = await c.post("/files", params={"path": str(t)}, content=_over_the_limit_unsized(),
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 413
        # a gzip bomb: tiny on the wire, over the limit when inflated
        bomb = gzip.compress(b"\0" * (LIMIT + 1024))
        assert len(bomb) < 100_000
        r = await c.post("/files", params={"path": str(t)}, content=bomb,
                         headers={"content-type": "application/octet-stream", "content-encoding": "gzip"})
        assert r.status_code == 413
        r = await c.post("/files", params={"path": str(t)}, files={"file": ("f", b"q" * (LIMIT + 1), "text/plain")})
        assert r.status_code == 413
    assert t.read_text() == "keep me" and leftovers(home) == []


async def test_client_vanishing_mid_upload_keeps_the_old_file(daemon: Daemon, home: Path) -> None:
    t = home / "atomic.txt"
    t.write_text("old content")
    head = (f"POST /files?path={t} HTTP/1.1\r\nhost: x\r\nx-access-token: {daemon.token}\r\n"
            f"content-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n").encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(daemon.uds)
        s.sendall(head + b"n" * 500_000)
        for _ in range(200):  # wait until the temp file exists, i.e. the upload is under way
            if leftovers(home):
                break
            await asyncio.sleep(0.01)
    for _ in range(500):
        if not leftovers(home):
            break
        await asyncio.sleep(0.01)
    assert t.read_text() == "old content" and leftovers(home) == []


async def test_replacing_keeps_mode(daemon: Daemon, home: Path) -> None:
    t = home / "script.sh"
    t.write_text("old")
    os.chown(t, 1000, 1000)
    os.chmod(t, 0o750)
    async with daemon.client() as c:
        r = await c.post("/files", params={"path": str(t)}, content=b"new", headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200 and t.read_text() == "new" and (t.stat().st_mode & 0o777) == 0o750


async def test_user_cannot_write_into_root_home(daemon: Daemon) -> None:
    target = daemon.sandbox.root_home / "planted"
    async with daemon.client() as c:
        r = await c.post("/files", params={"path": str(target)}, files={"file": ("x", b"evil", "text/plain")})
        assert r.status_code == 403 and r.json()["code"] == 403
        r = await c.post("/files", params={"path": str(target), "username": "root"},
                         content=b"ok", headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200
    assert target.read_bytes() == b"ok" and target.stat().st_uid == 0


async def test_upload_onto_a_directory_is_400(daemon: Daemon, home: Path) -> None:
    (home / "adir").mkdir(exist_ok=True)
    async with daemon.client() as c:
        r = await c.post("/files", params={"path": str(home / "adir")}, content=b"x",
                         headers={"content-type": "application/octet-stream"})
    assert r.status_code == 400


async def test_malformed_multipart_is_400(daemon: Daemon, home: Path) -> None:
    async with daemon.client() as c:
        r = await c.post("/files", content=b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/tmp/x\"\r\n\r\nabc",
                         headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 400
        r = await c.post("/files", content=b"--b--\r\n", headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 400  # no file
    assert leftovers(Path("/tmp")) == []


async def test_disk_full_is_507(daemon: Daemon, home: Path) -> None:
    mnt = home / "tiny"
    mnt.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,uid=1000,gid=1000", "tmpfs", str(mnt)], check=True)
    try:
        async with daemon.client() as c:
            r = await c.post("/files", params={"path": str(mnt / "fill.bin")}, content=b"f" * (1024 * 1024),
                             headers={"content-type": "application/octet-stream"})
        assert r.status_code == 507
        assert os.listdir(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


async def test_envs_and_health(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await c.get("/envs")
        assert r.status_code == 200 and r.json() == {"SANDBOX_VAR": "from-config"}
        r = await c.get("/health")
        assert r.status_code == 204 and r.content == b""
        r = await c.post("/health")
        assert r.status_code == 405
        r = await c.get("/nope")
        assert r.status_code == 404


async def test_metadata_headers_become_xattrs_and_their_limits_hold(daemon: Daemon, home: Path) -> None:
    """X-Metadata-* -> user.e2b.* (lowercased key, first of repeated headers), reported on the
    write and by Stat; a re-upload replaces the set; every limit refuses before writing."""
    from tests.envd.helpers import unary
    t = home / "meta.txt"
    t.unlink(missing_ok=True)
    async with daemon.client() as c:
        headers = [("content-type", "application/octet-stream"), ("X-Metadata-Author", "mish"),
                   ("x-metadata-author", "second"), ("X-Metadata-Purpose", "upload")]
        r = await c.post("/files", params={"path": str(t)}, content=b"one", headers=headers)
        assert r.status_code == 200 and r.json()[0]["metadata"] == {"author": "mish", "purpose": "upload"}
        assert os.getxattr(t, "user.e2b.author") == b"mish"
        e = (await unary(c, "filesystem.Filesystem/Stat", {"path": str(t)})).json()["entry"]
        assert e["metadata"] == {"author": "mish", "purpose": "upload"}
        # multipart, replacing: the stale key goes, the new one comes
        r = await c.post("/files", params={"path": str(t)}, files={"file": ("f", b"two")},
                         headers={"X-Metadata-Stage": "2"})
        assert r.status_code == 200 and r.json()[0]["metadata"] == {"stage": "2"}
        assert [n for n in os.listxattr(t) if n.startswith("user.e2b.")] == ["user.e2b.stage"]
        # no headers: no metadata at all, and the result says none
        r = await c.post("/files", params={"path": str(t)}, files={"file": ("f", b"three")})
        assert "metadata" not in r.json()[0] and not [n for n in os.listxattr(t) if n.startswith("user.e2b.")]
        longest = "k" * 246
        r = await c.post("/files", params={"path": str(t)}, content=b"ok", headers={
            "content-type": "application/octet-stream", f"x-metadata-{longest}": "v"})
        assert r.status_code == 200 and os.getxattr(t, f"user.e2b.{longest}") == b"v"
        fresh = home / "meta-refused.txt"
        for bad in ({f"x-metadata-{longest}k": "v"},              # key over 246 bytes
                    {"x-metadata-": "empty key"},
                    {"x-metadata-a": "v" * 2000, "x-metadata-b": "w" * 2100},   # over 4096 in total
                    {"x-metadata-a": "caf\u00e9"}):                # not US-ASCII
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in bad.items()]
            r = await c.post("/files", params={"path": str(fresh)}, content=b"x",
                             headers=[(b"content-type", b"application/octet-stream"), *raw])
            assert r.status_code == 400 and r.json()["code"] == 400, (bad, r.text)
            r = await c.post("/files", params={"path": str(t)}, content=b"x",
                             headers=[(b"content-type", b"application/octet-stream"), *raw])
            assert r.status_code == 400
        assert not fresh.exists() and t.read_text() == "ok"


async def test_a_failed_upload_of_a_new_file_leaves_nothing(daemon: Daemon, home: Path) -> None:
    """New files are written in place (no temporary name), so a failed upload must remove them."""
    t = home / "never.bin"
    t.unlink(missing_ok=True)
    async with daemon.client() as c:
        r = await c.post("/files", params={"path": str(t)}, content=_over_the_limit_unsized(),
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 413
    assert not t.exists() and leftovers(home) == []
