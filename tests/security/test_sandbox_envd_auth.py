"""The envd access token is the only key to a sandbox's daemon: requests through the server
with a missing, wrong or foreign `X-Access-Token` are refused, and a signed file URL is good for
exactly one path, one operation and one user.

These talk HTTP directly (httpx) with the routing headers the SDK would send, because the SDK
always sends the right token and so cannot show what happens without it.
"""

from __future__ import annotations

import json
import struct
import urllib.parse
import uuid
from collections.abc import Iterator

import httpx
import pytest
from e2b import Sandbox

from tests.security.conftest import run

pytestmark = [pytest.mark.e2e, pytest.mark.root]

ENVD_PORT = "49983"


@pytest.fixture(scope="module")
def pair(sdk) -> Iterator[tuple[Sandbox, Sandbox]]:  # type: ignore[no-untyped-def]
    a = Sandbox.create(timeout=600, metadata={"suite": "envd-auth"})
    b = Sandbox.create(timeout=600, metadata={"suite": "envd-auth"})
    yield a, b
    a.kill()
    b.kill()


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _token(sbx: Sandbox) -> str:
    token = sbx._envd_access_token  # noqa: SLF001
    assert token
    return token


def _headers(sbx: Sandbox, token: str | None, **extra: str) -> dict[str, str]:
    h = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": ENVD_PORT, **extra}
    if token is not None:
        h["X-Access-Token"] = token
    return h


def _bad_tokens(a: Sandbox, b: Sandbox) -> dict[str, str | None]:
    good = _token(a)
    return {
        "missing": None,
        "empty": "",
        "wrong": "x" * len(good),
        "other sandbox's": _token(b),
        "prefix of the right one": good[:-1],
        "right one plus a byte": good + "a",
        "the API key": "e2b_" + "5e" * 20,
    }


RPC_CALLS = [
    ("/process.Process/List", {}),
    ("/filesystem.Filesystem/ListDir", {"path": "/"}),
    ("/filesystem.Filesystem/Stat", {"path": "/etc/hostname"}),
    ("/filesystem.Filesystem/MakeDir", {"path": "/tmp/made-without-token"}),
]


@pytest.mark.parametrize("path,body", RPC_CALLS)
def test_unary_rpc_needs_the_right_token(pair, http: httpx.Client, path: str, body: dict) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    for label, token in _bad_tokens(a, b).items():
        r = http.post(path, content=json.dumps(body), headers=_headers(
            a, token, **{"Content-Type": "application/json", "Connect-Protocol-Version": "1"}))
        assert r.status_code == 401, f"{label} token: {r.status_code} {r.text}"
    assert a.files.exists("/tmp/made-without-token") is False
    # Control: the same request with the right token is accepted, so the 401s above are real.
    control = {**body, "path": f"/tmp/made-with-token-{uuid.uuid4().hex[:8]}"} if path.endswith("MakeDir") else body
    ok = http.post(path, content=json.dumps(control), headers=_headers(a, _token(a), **{"Content-Type": "application/json", "Connect-Protocol-Version": "1"}))
    assert ok.status_code == 200, ok.text


def _envelope(msg: dict) -> bytes:
    data = json.dumps(msg).encode()
    return struct.pack(">BI", 0, len(data)) + data


def test_streaming_start_without_token_runs_nothing(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    flag = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    body = _envelope({"process": {"cmd": "/bin/bash", "args": ["-c", f"touch {flag}"]}, "stdin": False})
    for label, token in _bad_tokens(a, b).items():
        r = http.post("/process.Process/Start", content=body, headers=_headers(
            a, token, **{"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}))
        assert r.status_code == 401 or b'"unauthenticated"' in r.content, f"{label} token: {r.status_code} {r.content[:200]!r}"
    assert a.files.exists(flag) is False
    # Control: with the token, it runs.
    r = http.post("/process.Process/Start", content=body, headers=_headers(
        a, _token(a), **{"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}))
    assert r.status_code == 200
    assert a.files.exists(flag) is True


def test_files_download_and_upload_need_the_right_token(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    a.files.write("/home/user/tokened.txt", "needs a token")
    target = f"/tmp/upload-{uuid.uuid4().hex[:8]}"
    for label, token in _bad_tokens(a, b).items():
        r = http.get("/files", params={"path": "/home/user/tokened.txt"}, headers=_headers(a, token))
        assert r.status_code == 401, f"{label} token: {r.status_code}"
        assert "needs a token" not in r.text
        r = http.post("/files", params={"path": target}, content=b"evil",
                      headers=_headers(a, token, **{"Content-Type": "application/octet-stream"}))
        assert r.status_code == 401, f"{label} token: {r.status_code}"
    assert a.files.exists(target) is False
    r = http.get("/files", params={"path": "/home/user/tokened.txt"}, headers=_headers(a, _token(a)))
    assert r.status_code == 200 and r.text == "needs a token"


def test_token_of_b_does_not_open_a_even_with_a_signature_for_b(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    a.files.write("/home/user/a-only.txt", "a's data")
    b.files.write("/home/user/a-only.txt", "b's data")
    url = urllib.parse.urlsplit(b.download_url("/home/user/a-only.txt"))
    r = http.get("/files?" + url.query, headers=_headers(a, None))  # b's signature, sent to a
    assert r.status_code == 401
    assert "a's data" not in r.text


def test_health_needs_no_token_and_reveals_nothing(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    r = http.get("/health", headers=_headers(a, None))
    assert r.status_code in (200, 204)
    assert _token(a) not in r.text


def _get_signed(http: httpx.Client, sbx: Sandbox, url: str, **override: str) -> httpx.Response:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(override)
    return http.get("/files", params=query, headers=_headers(sbx, None))


def _post_signed(http: httpx.Client, sbx: Sandbox, url: str, data: bytes, **override: str) -> httpx.Response:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(override)
    return http.post("/files", params=query, content=data,
                     headers=_headers(sbx, None, **{"Content-Type": "application/octet-stream"}))


def test_signed_download_url_is_for_one_path_only(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    a.files.write("/home/user/public.txt", "shared on purpose")
    a.files.write("/home/user/private.txt", "not shared")
    url = a.download_url("/home/user/public.txt")
    assert "signature=" in url
    ok = _get_signed(http, a, url)
    assert ok.status_code == 200 and ok.text == "shared on purpose"
    for other in ("/home/user/private.txt", "/home/user/./public.txt", "/home/user/../user/public.txt",
                  "/etc/shadow", "public.txt"):
        r = _get_signed(http, a, url, path=other)
        assert r.status_code == 401, f"{other}: {r.status_code}"
        assert "not shared" not in r.text
    # Claiming another user with the same signature fails too.
    assert _get_signed(http, a, url, username="root").status_code == 401
    # A tampered signature fails.
    sig = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["signature"]
    tampered = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    assert _get_signed(http, a, url, signature=tampered).status_code == 401


def test_signed_download_url_cannot_upload(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    a.files.write("/home/user/readonly-share.txt", "original")
    url = a.download_url("/home/user/readonly-share.txt")
    r = _post_signed(http, a, url, b"overwritten")
    assert r.status_code == 401
    assert a.files.read("/home/user/readonly-share.txt") == "original"


def test_signed_upload_url_is_for_one_path_only(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    target = f"/home/user/dropbox-{uuid.uuid4().hex[:8]}.txt"
    url = a.upload_url(target)
    r = _post_signed(http, a, url, b"dropped")
    assert r.status_code == 200, r.text
    assert a.files.read(target) == "dropped"
    elsewhere = f"/home/user/elsewhere-{uuid.uuid4().hex[:8]}.txt"
    assert _post_signed(http, a, url, b"nope", path=elsewhere).status_code == 401
    assert a.files.exists(elsewhere) is False
    # An upload signature does not let you read the file back.
    assert _get_signed(http, a, url).status_code == 401


def test_signed_url_as_root_does_not_work_as_user_and_vice_versa(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    a.files.write("/root/root-share.txt", "root's", user="root")
    url = a.download_url("/root/root-share.txt", user="root")
    assert _get_signed(http, a, url).text == "root's"
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    q.pop("username")
    r = http.get("/files", params=q, headers=_headers(a, None))
    assert r.status_code == 401


def test_expired_signature_is_refused(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    a.files.write("/home/user/expiring.txt", "soon gone")
    fresh = a.download_url("/home/user/expiring.txt", use_signature_expiration=600)
    assert _get_signed(http, a, fresh).status_code == 200
    expired = a.download_url("/home/user/expiring.txt", use_signature_expiration=-60)
    r = _get_signed(http, a, expired)
    assert r.status_code == 401
    assert "soon gone" not in r.text
    # Stretching the expiry of a valid signature invalidates it.
    exp = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(fresh).query))["signature_expiration"]
    assert _get_signed(http, a, fresh, signature_expiration=str(int(exp) + 3600)).status_code == 401


def test_unknown_sandbox_id_is_not_found_not_forwarded(pair, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    h = _headers(a, _token(a))
    for sid in ("a" * 20, "../" + a.sandbox_id, a.sandbox_id + "x", ""):
        h["E2b-Sandbox-Id"] = sid
        r = http.get("/files", params={"path": "/etc/hostname"}, headers=h)
        assert r.status_code in (400, 404, 502), f"{sid!r}: {r.status_code}"
    assert run(a, "true").exit_code == 0
