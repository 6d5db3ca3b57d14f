"""The gateway's JSON API and page, in process: answers, refusals (each a 4xx JSON message),
the Host check, the CSP, concurrency and the trace store."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from corral.mediagateway.errors import SandboxError
from corral.mediagateway.gateway import create_app
from tests.mediagateway.gateway.conftest import ScriptedOrchestrator

USERS = [("u001", "Ada"), ("u002", "Grace")]


def client_for(orchestrator: object, **kwargs: object) -> httpx.AsyncClient:
    app = create_app(orchestrator, users=USERS, **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080")


async def test_health_users_query_and_the_past_trace() -> None:
    orch = ScriptedOrchestrator(["Alpha", "Beta"])
    async with client_for(orch) as c:
        assert (await c.get("/api/health")).json() == {"status": "ok", "in_flight": 0, "kept": 0}
        assert (await c.get("/api/users")).json() == {"users": [{"id": "u001", "name": "Ada"}, {"id": "u002", "name": "Grace"}]}
        r = await c.post("/api/query", json={"query": "  space opera  ", "user_id": "u002"})
        assert r.status_code == 200
        trace = r.json()
        assert orch.calls == [("space opera", "u002")]
        assert [i["title"] for i in trace["recommendations"]] == ["Alpha", "Beta"]
        assert [s["agent"] for s in trace["steps"]] == ["discovery", "search", "recommendation"]
        past = await c.get(f"/api/requests/{trace['request_id']}")
        assert past.status_code == 200 and past.json() == trace
        assert (await c.get("/api/requests")).json()["requests"][0]["request_id"] == trace["request_id"]
        assert (await c.get("/api/health")).json()["kept"] == 1


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    (b'{"query": "x"}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    (b"{not json", {}, 400, "invalid_json"),
    (b"[1, 2]", {}, 400, "invalid_request"),
    (b"{}", {}, 400, "invalid_query"),
    (b'{"query": "   "}', {}, 400, "invalid_query"),
    (b'{"query": 7}', {}, 400, "invalid_query"),
    (b'{"query": "' + b"a" * 501 + b'"}', {}, 400, "invalid_query"),
    (b'{"query": "a\\u0000b"}', {}, 400, "invalid_query"),
    (b'{"query": "ok", "user_id": "../etc"}', {}, 400, "invalid_user"),
    (b'{"query": "ok", "user_id": 5}', {}, 400, "invalid_user"),
    (b'{"query": "ok", "user_id": "u999"}', {}, 400, "unknown_user"),
    (b'{"query": "ok", "admin": true}', {}, 400, "invalid_request"),
    (b'{"query": "' + b"a" * 20000 + b'"}', {}, 413, "too_large"),
])
async def test_bad_input_is_a_4xx_json_message(body: bytes, headers: dict, status: int, code: str) -> None:
    orch = ScriptedOrchestrator(["Alpha"])
    async with client_for(orch) as c:
        r = await c.post("/api/query", content=body, headers={"content-type": "application/json", **headers})
        assert r.status_code == status
        assert r.json()["code"] == code and r.json()["message"]
    assert orch.calls == []


async def test_unknown_paths_methods_and_requests_are_json() -> None:
    async with client_for(ScriptedOrchestrator([])) as c:
        for r, status in [(await c.get("/nope"), 404), (await c.get("/api/query"), 405),
                          (await c.get("/api/requests/0123456789abcdef"), 404),
                          (await c.get("/api/requests/<script>"), 404)]:
            assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
            assert r.json()["message"]


async def test_a_foreign_host_header_is_refused() -> None:
    """DNS rebinding: a page on evil.example that resolves to 127.0.0.1 must not run queries."""
    orch = ScriptedOrchestrator(["Alpha"])
    async with client_for(orch) as c:
        r = await c.post("/api/query", json={"query": "x"}, headers={"host": "evil.example:8080"})
        assert r.status_code == 421 and r.json()["code"] == "unknown_host"
        assert (await c.get("/", headers={"host": "localhost:8080"})).status_code == 200
    assert orch.calls == []


async def test_the_page_has_no_external_assets_and_a_strict_csp() -> None:
    async with client_for(ScriptedOrchestrator([])) as c:
        r = await c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert f'<script nonce="{nonce}">' in r.text and f'<style nonce="{nonce}">' in r.text
    assert not re.search(r"\s(src|href)\s*=", r.text), "the page loads something from elsewhere"
    assert "innerHTML" not in r.text and "insertAdjacentHTML" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    async with client_for(ScriptedOrchestrator([])) as c:
        other = (await c.get("/")).headers["content-security-policy"]
    assert other != csp  # a fresh nonce per page


async def test_a_second_query_is_served_while_the_first_runs() -> None:
    hold = asyncio.Event()
    slow = ScriptedOrchestrator(["Slow"], hold=hold)
    async with client_for(slow) as c:
        first = asyncio.create_task(c.post("/api/query", json={"query": "first"}))
        while slow.running < 1:
            await asyncio.sleep(0.01)
        assert (await c.get("/api/health")).json()["in_flight"] == 1
        second = asyncio.create_task(c.post("/api/query", json={"query": "second"}))
        while slow.running < 2:
            await asyncio.sleep(0.01)
        assert not first.done()  # both are in the orchestrator at once
        hold.set()
        a, b = await first, await second
    assert (a.status_code, b.status_code) == (200, 200)
    assert {a.json()["query"], b.json()["query"]} == {"first", "second"}


async def test_more_than_the_limit_in_flight_is_a_429() -> None:
    hold = asyncio.Event()
    slow = ScriptedOrchestrator(["Slow"], hold=hold)
    async with client_for(slow, max_in_flight=1) as c:
        first = asyncio.create_task(c.post("/api/query", json={"query": "first"}))
        while slow.running < 1:
            await asyncio.sleep(0.01)
        busy = await c.post("/api/query", json={"query": "second"})
        assert busy.status_code == 429 and busy.json()["code"] == "busy"
        hold.set()
        assert (await first).status_code == 200


async def test_orchestrator_failures_are_json_messages() -> None:
    async with client_for(ScriptedOrchestrator([], fail=SandboxError("the sandbox service is down"))) as c:
        r = await c.post("/api/query", json={"query": "x"})
        assert (r.status_code, r.json()) == (502, {"code": "sandbox_error", "message": "the sandbox service is down"})
    async with client_for(ScriptedOrchestrator([], fail=RuntimeError("/secret/host/path exploded"))) as c:
        r = await c.post("/api/query", json={"query": "x"})
        assert r.status_code == 500 and r.json()["code"] == "internal_error"
        assert "/secret" not in r.text  # internals stay in the log


async def test_the_store_keeps_only_the_newest() -> None:
    async with client_for(ScriptedOrchestrator(["A"]), keep=2) as c:
        ids = [(await c.post("/api/query", json={"query": f"q{i}"})).json()["request_id"] for i in range(3)]
        assert (await c.get(f"/api/requests/{ids[0]}")).status_code == 404
        assert (await c.get(f"/api/requests/{ids[2]}")).status_code == 200
