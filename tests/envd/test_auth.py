"""Access token and URL signatures: every way of crossing the boundary gets refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from e2b.sandbox.signature import get_signature

from corral.envd.auth import basic_username, compute_signature, signature_valid, token_matches
from tests.envd.helpers import TOKEN, Daemon, start_msg, stream, unary

UNAUTH = "unauthorized access, please provide a valid access token or method signing if supported"


def test_signature_matches_the_official_sdk() -> None:
    for user in (None, "user", "root"):
        sdk = get_signature("/home/user/hello.txt", "read", user, "tok")["signature"]
        assert compute_signature("/home/user/hello.txt", "read", user, "tok") == sdk
    sdk = get_signature("/a", "write", "user", "tok", 60)
    assert compute_signature("/a", "write", "user", "tok", sdk["expiration"]) == sdk["signature"]
    # the example recorded in the protocol notes
    assert compute_signature("/home/user/hello.txt", "read", None, "envd-secret-token") == \
        "v1_C6Qm0+W7ZIcTBuxLFg4kJbj4ld7supmmgrSwfjtRAcU"


def test_signature_checks() -> None:
    sig = compute_signature("/p", "read", None, "t", 2_000_000_000)
    assert signature_valid(signature=sig, expiration="2000000000", path="/p", operation="read",
                           username=None, token="t", now=1_000_000_000)[0]
    ok, reason = signature_valid(signature=sig, expiration="2000000000", path="/p", operation="read",
                                 username=None, token="t", now=2_000_000_001)
    assert not ok and "expired" in reason
    assert not signature_valid(signature=sig, expiration="2000000000", path="/q", operation="read",
                               username=None, token="t", now=0)[0]
    assert not signature_valid(signature=sig, expiration="2000000000", path="/p", operation="write",
                               username=None, token="t", now=0)[0]
    assert not signature_valid(signature=sig, expiration="-5", path="/p", operation="read",
                               username=None, token="t", now=0)[0]


def test_token_and_basic_parsing() -> None:
    assert token_matches("abc", "abc") and not token_matches("abc", "abd") and not token_matches("abc", None)
    assert not token_matches("abc", "ab")
    assert basic_username("Basic cm9vdDo=") == "root"
    assert basic_username("Bearer x") is None and basic_username("Basic !!!") is None and basic_username(None) is None


@pytest.mark.root
async def test_rpc_and_envs_need_the_token(daemon: Daemon) -> None:
    for token in (None, "wrong-token", TOKEN + "x"):
        async with daemon.client(token=token) as c:
            r = await unary(c, "filesystem.Filesystem/Stat", {"path": "/"})
            assert r.status_code == 401 and r.json() == {"code": 401, "message": UNAUTH}
            r = await stream(c, "process.Process/Start", start_msg("echo pwned > /tmp/pwned"))
            assert r.status == 401
            assert (await c.get("/envs")).status_code == 401
            assert (await c.get("/files", params={"path": "/etc/hostname"})).status_code == 401
            assert (await c.get("/health")).status_code == 204
    assert not Path("/tmp/pwned").exists()


@pytest.mark.root
async def test_files_signatures(daemon: Daemon, home: Path) -> None:
    f = home / "signed.txt"
    f.write_text("signed content")
    path = str(f)
    async with daemon.client(token=None) as c:
        sig = compute_signature(path, "read", None, TOKEN)
        r = await c.get("/files", params={"path": path, "signature": sig})
        assert r.status_code == 200 and r.text == "signed content"
        exp = int(time.time()) + 60
        sig = compute_signature(path, "read", "root", TOKEN, exp)
        r = await c.get("/files", params={"path": path, "username": "root", "signature": sig, "signature_expiration": str(exp)})
        assert r.status_code == 200
        # expired
        old = int(time.time()) - 10
        sig = compute_signature(path, "read", None, TOKEN, old)
        r = await c.get("/files", params={"path": path, "signature": sig, "signature_expiration": str(old)})
        assert r.status_code == 401 and "expired" in r.json()["message"]
        # tampered path, swapped operation, escalated user, wrong token
        good = compute_signature(path, "read", None, TOKEN)
        for params in (
            {"path": str(home / "other.txt"), "signature": good},
            {"path": path, "username": "root", "signature": good},
            {"path": path, "signature": compute_signature(path, "read", None, "not-the-token")},
            {"path": path, "signature": good, "signature_expiration": str(int(time.time()) + 999)},
        ):
            assert (await c.get("/files", params=params)).status_code == 401, params
        r = await c.post("/files", params={"path": path, "signature": good}, content=b"overwrite",
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 401
        wsig = compute_signature(path, "write", None, TOKEN)
        r = await c.post("/files", params={"path": path, "signature": wsig}, content=b"written",
                         headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    assert f.read_text() == "written"
    # a header, when present, must be right even if the signature is valid
    async with daemon.client(token="wrong") as c:
        r = await c.get("/files", params={"path": path, "signature": compute_signature(path, "read", None, TOKEN)})
        assert r.status_code == 401
