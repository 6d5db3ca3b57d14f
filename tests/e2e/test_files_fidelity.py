"""What E2B's own python-sdk tests expect of files, watches, signed URLs and a killed sandbox,
checked through the official SDK (the peer suite itself is run by hand: docs/COMPATIBILITY.md).

Two sandboxes for the module: one for the file checks, one that is killed under a command.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from e2b import FileType, FilesystemEventType, Sandbox
from e2b.exceptions import InvalidArgumentException, SandboxException, TimeoutException

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sbx(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(timeout=300, secure=True)
    yield sandbox
    sandbox.kill()


@pytest.fixture
def workdir(sbx: Sandbox) -> str:
    path = f"/home/user/fid-{uuid.uuid4().hex[:10]}"
    sbx.files.make_dir(path)
    return path


def test_metadata_travels_with_the_file(sbx: Sandbox, workdir: str) -> None:
    meta = {"author": "mish", "purpose": "upload"}
    assert sbx.files.write(f"{workdir}/m.txt", "x", metadata=meta).metadata == meta
    assert sbx.files.write(f"{workdir}/o.txt", "x", metadata=meta, use_octet_stream=True).metadata == meta
    assert sbx.files.get_info(f"{workdir}/m.txt").metadata == meta
    assert {e.name: e.metadata for e in sbx.files.list(workdir)} == {"m.txt": meta, "o.txt": meta}
    assert sbx.files.rename(f"{workdir}/m.txt", f"{workdir}/r.txt").metadata == meta
    # A rewrite without metadata clears it; an attribute set inside the sandbox shows up.
    assert sbx.files.write(f"{workdir}/r.txt", "y").metadata is None
    assert sbx.files.get_info(f"{workdir}/r.txt").metadata is None
    sbx.commands.run(f"python3 -c \"import os; os.setxattr('{workdir}/r.txt', 'user.e2b.k', b'v')\"")
    assert sbx.files.get_info(f"{workdir}/r.txt").metadata == {"k": "v"}
    # The SDK refuses bad keys itself; the server refuses what only it can measure (the size).
    with pytest.raises(InvalidArgumentException):
        sbx.files.write(f"{workdir}/bad.txt", "x", metadata={"bad key": "v"})
    with pytest.raises(SandboxException):
        sbx.files.write(f"{workdir}/big.txt", "x", metadata={"a": "v" * 2500, "b": "w" * 2500})
    assert not sbx.files.exists(f"{workdir}/big.txt")


def test_python_is_on_path_in_base(sbx: Sandbox) -> None:
    """E2B's base has `python`; so has corral's, built from the current recipe (`make template`
    rebuilds a base whose recipe hash is older, as on a machine that built it before)."""
    from corral.templates import TemplateStore
    from corral.templates.recipe import BASE_RECIPE
    if TemplateStore().get("base").recipe_hash != BASE_RECIPE.hash:
        pytest.skip("base was built from an older recipe: `make template` rebuilds it")
    assert sbx.commands.run("python -c 'print(6 * 7)'").stdout == "42\n"


def test_symlink_info_and_removing_a_missing_path(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/target.txt", "t")
    sbx.commands.run("ln -s target.txt link.txt && ln -s nowhere dangling", cwd=workdir)
    # envd sends the target's type plus `isSymlink` (as E2B's current envd): SDK 2.45 shows FILE,
    # the pinned 2.63 shows SYMLINK from `isSymlink`; the wire itself is tests/envd/test_entries.py.
    link = sbx.files.get_info(f"{workdir}/link.txt")
    assert link.type == FileType.SYMLINK and link.symlink_target == f"{workdir}/target.txt"
    assert link.size == len("target.txt")
    assert sbx.files.get_info(f"{workdir}/dangling").type == FileType.SYMLINK
    sbx.files.remove(f"{workdir}/never-existed.txt")   # no error, as on E2B


def test_watch_sees_writes_under_the_files_own_name(sbx: Sandbox, workdir: str) -> None:
    handle = sbx.files.watch_dir(workdir, recursive=True)
    try:
        sbx.files.write(f"{workdir}/w.txt", "one")
        new = [(e.name, e.type) for e in handle.get_new_events()]
        assert new == [("w.txt", FilesystemEventType.CREATE), ("w.txt", FilesystemEventType.CHMOD),
                       ("w.txt", FilesystemEventType.WRITE)]
        sbx.files.write(f"{workdir}/w.txt", "two")
        again = handle.get_new_events()
        assert ("w.txt", FilesystemEventType.WRITE) in {(e.name, e.type) for e in again}
        assert {e.name for e in again} == {"w.txt"}, again      # no temporary or staged names
        sbx.files.make_dir(f"{workdir}/sub")
        sbx.files.write(f"{workdir}/sub/in.txt", "x")
        seen = {(e.name, e.type) for e in handle.get_new_events()}
        assert ("sub", FilesystemEventType.CREATE) in seen and ("sub/in.txt", FilesystemEventType.WRITE) in seen
    finally:
        handle.stop()


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_signed_urls_work_without_routing_headers_and_only_for_their_sandbox(sbx: Sandbox, workdir: str) -> None:
    """With E2B_SANDBOX_URL the signed URL names no sandbox: a plain GET (a browser, curl) must
    still reach the right one, and only with a genuine, unexpired signature."""
    sbx.files.write(f"{workdir}/s.txt", "signed")
    url = sbx.download_url(f"{workdir}/s.txt", "user", use_signature_expiration=120)
    assert "e2b-sandbox" not in url.lower()
    assert _fetch(url) == (200, b"signed")
    status, body = _fetch(sbx.download_url(f"{workdir}/s.txt", "user", use_signature_expiration=-120))
    assert status == 401 and json.loads(body) == {"code": 401, "message": "signature is already expired"}
    # A changed path or a made-up signature matches no sandbox's token: 401, nothing forwarded.
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    for changed in ({"path": "/etc/shadow"}, {"signature": "v1_" + "A" * 43}, {"username": "root"}):
        status, body = _fetch(parts._replace(query=urllib.parse.urlencode({**query, **changed})).geturl())
        assert status == 401, (changed, body)
    # Upload through a signed upload URL (multipart, as the SDK documents).
    up = sbx.upload_url(f"{workdir}/up.txt", "user")
    boundary = "b" + uuid.uuid4().hex
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\n\r\n"
               f"uploaded\r\n--{boundary}--\r\n").encode()
    req = urllib.request.Request(up, data=payload, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    assert sbx.files.read(f"{workdir}/up.txt") == "uploaded"


def test_a_sandbox_killed_under_a_command_says_so(sbx: Sandbox, sdk) -> None:  # type: ignore[no-untyped-def]
    other = Sandbox.create(timeout=120, secure=True)
    try:
        # One sandbox's signature never opens another's files: it routes to its own sandbox.
        other.files.write("/home/user/only-in-other.txt", "other")
        status, _ = _fetch(sbx.download_url("/home/user/only-in-other.txt", "user"))
        assert status == 404
        cmd = other.commands.run("sleep 60", background=True)
        time.sleep(0.5)
    finally:
        other.kill()
    with pytest.raises(TimeoutException, match="sandbox was killed or reached its end of life"):
        cmd.wait()
