"""The proxy checks the interpreter's token for the port it routed to, and envd picks envd or the
interpreter by the `E2b-Sandbox-Port` header. The two must agree: a request routed by its Host
to envd's port (49983) but carrying a 49999 port header (and no sandbox-id header, so the Host
decides) must not reach the interpreter without a token. And a request routed by Host alone
(old SDKs send no routing headers) reaches the interpreter when it carries the token."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture
def sandbox(server):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": server.api_key}
    r = httpx.post(server.url + "/v2/sandboxes", json={"templateID": "code-interpreter-v1", "timeout": 120},
                   headers=headers, timeout=120)
    assert r.status_code == 201, r.text
    doc = r.json()
    yield doc
    httpx.delete(f"{server.url}/sandboxes/{doc['sandboxID']}", headers=headers, timeout=60)


def test_host_says_envd_header_says_interpreter_runs_nothing(server, sandbox) -> None:  # type: ignore[no-untyped-def]
    sid = sandbox["sandboxID"]
    marker = "pwned-by-header-mismatch"
    r = httpx.post(server.url + "/execute", json={"code": f"open('/tmp/{marker}', 'w').write('x')"},
                   headers={"Host": f"49983-{sid}.e2b.localhost", "E2b-Sandbox-Port": "49999"}, timeout=60)
    assert r.status_code in (401, 404), r.text
    assert marker not in r.text
    # The file was not written: ask envd (with its token) whether it exists.
    check = httpx.post(server.url + "/filesystem.Filesystem/Stat", json={"path": f"/tmp/{marker}"},
                       headers={"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49983",
                                "X-Access-Token": sandbox["envdAccessToken"], "Connect-Protocol-Version": "1"},
                       timeout=30)
    assert check.status_code == 404, check.text


def test_host_routed_interpreter_call_with_the_token_works(server, sandbox) -> None:  # type: ignore[no-untyped-def]
    sid = sandbox["sandboxID"]
    r = httpx.post(server.url + "/execute", json={"code": "6 * 7"}, timeout=120,
                   headers={"Host": f"49999-{sid}.e2b.localhost", "X-Access-Token": sandbox["envdAccessToken"]})
    assert r.status_code == 200, r.text
    assert '"text": "42"' in r.text or '"text":"42"' in r.text
