from __future__ import annotations

import asyncio
import re
from urllib.parse import quote, urlencode

import httpx

from corral.wire.handoff import EnvdConfig
from tests.api.conftest import API_KEY


async def _create(client: httpx.AsyncClient, **body) -> dict:
    r = await client.post("/v2/sandboxes", json={"templateID": "base", "metadata": {}, "envVars": {}, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_returns_e2b_sandbox_document(client):
    doc = await _create(client, timeout=120, metadata={"k": "v"}, envVars={"A": "1"})
    assert re.fullmatch(r"[a-z0-9]{20}", doc["sandboxID"])
    assert doc["templateID"] == "base" and doc["clientID"] and doc["envdVersion"] >= "0.6"
    assert doc["envdAccessToken"]


async def test_v1_create_route_also_works(client):
    r = await client.post("/sandboxes", json={"templateID": "base"})
    assert r.status_code == 201


async def test_env_vars_and_token_reach_the_tier_but_not_the_listing(client, tier):
    doc = await _create(client, envVars={"SECRET": "sekrit-value-9f2c"})
    handoff = EnvdConfig.from_bytes(tier.running[doc["sandboxID"]].payload_config)
    assert handoff.env_vars == {"SECRET": "sekrit-value-9f2c"} and handoff.access_token == doc["envdAccessToken"]
    listed = (await client.get("/v2/sandboxes")).json()
    assert "sekrit-value-9f2c" not in str(listed) and doc["envdAccessToken"] not in str(listed)


async def test_each_sandbox_gets_its_own_uid_range(client, tier):
    a, b = await _create(client), await _create(client)
    ua, ub = tier.running[a["sandboxID"]].uid_base, tier.running[b["sandboxID"]].uid_base
    assert ua != ub and abs(ua - ub) >= 65536 and min(ua, ub) >= 1 << 30


async def test_bad_bodies_are_400_with_json_message(client):
    for body in (b"", b"not json", b"[1]", b'{"timeout": 5}', b'{"templateID": "base", "timeout": -1}',
                 b'{"templateID": "base", "metadata": {"a": 1}}', b'{"templateID": "base", "timeout": 999999}'):
        r = await client.post("/v2/sandboxes", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["code"] == 400 and r.json()["message"]


async def test_unknown_template_is_404(client):
    r = await client.post("/v2/sandboxes", json={"templateID": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["message"]


async def test_template_resources_are_capped_by_server_ceiling(client, tier):
    doc = await _create(client, templateID="big")
    info = (await client.get(f"/sandboxes/{doc['sandboxID']}")).json()
    assert info["cpuCount"] == 8 and info["memoryMB"] == 8192


async def test_auth_is_required_and_checked(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for headers in ({}, {"X-API-Key": "e2b_" + "00" * 20}, {"X-API-Key": API_KEY + "x"}):
            for method, path in (("POST", "/v2/sandboxes"), ("GET", "/v2/sandboxes"), ("DELETE", "/sandboxes/x")):
                r = await c.request(method, path, headers=headers, json={"templateID": "base"})
                assert r.status_code == 401 and r.json()["code"] == 401
        assert (await c.get("/health")).status_code == 200


async def test_get_info_and_404(client):
    doc = await _create(client, metadata={"user": "abc"})
    info = (await client.get(f"/sandboxes/{doc['sandboxID']}")).json()
    for key in ("templateID", "sandboxID", "clientID", "startedAt", "endAt", "envdVersion", "cpuCount", "memoryMB", "diskSizeMB", "state"):
        assert key in info
    assert info["state"] == "running" and info["metadata"] == {"user": "abc"}
    assert info["cpuCount"] == 2 and info["memoryMB"] == 1024 and info["diskSizeMB"] == 2048
    assert (await client.get("/sandboxes/doesnotexist")).status_code == 404


async def test_kill_then_kill_again(client, tier):
    sid = (await _create(client))["sandboxID"]
    assert (await client.delete(f"/sandboxes/{sid}")).status_code == 204
    assert sid in tier.destroyed and sid not in tier.running
    assert (await client.delete(f"/sandboxes/{sid}")).status_code == 404
    assert (await client.get(f"/sandboxes/{sid}")).status_code == 404


async def test_list_filters_by_metadata_as_the_sdk_encodes_it(client):
    a = await _create(client, metadata={"user": "abc", "app": "prod x"})
    await _create(client, metadata={"user": "other"})
    inner = urlencode({quote("user"): quote("abc"), quote("app"): quote("prod x")})
    r = await client.get("/v2/sandboxes", params={"metadata": inner, "state": "running,paused"})
    assert r.status_code == 200
    assert [s["sandboxID"] for s in r.json()] == [a["sandboxID"]]


async def test_list_pagination_with_next_token(client):
    ids = [(await _create(client))["sandboxID"] for _ in range(5)]
    seen, token = [], None
    while True:
        params = {"limit": 2, **({"nextToken": token} if token else {})}
        r = await client.get("/v2/sandboxes", params=params)
        assert r.status_code == 200 and len(r.json()) <= 2
        seen += [s["sandboxID"] for s in r.json()]
        token = r.headers.get("x-next-token")
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert (await client.get("/v2/sandboxes", params={"nextToken": "garbage!"})).status_code == 400
    assert (await client.get("/v2/sandboxes", params={"limit": 0})).status_code == 400
    assert (await client.get("/v2/sandboxes", params={"state": "exploded"})).status_code == 400


async def test_set_timeout(client):
    sid = (await _create(client))["sandboxID"]
    assert (await client.post(f"/sandboxes/{sid}/timeout", json={"timeout": 600})).status_code == 204
    assert (await client.post(f"/sandboxes/{sid}/timeout", json={"timeout": -5})).status_code == 400
    assert (await client.post("/sandboxes/nope/timeout", json={"timeout": 5})).status_code == 404


async def test_timeout_expiry_kills_the_sandbox(client, tier):
    sid = (await _create(client, timeout=1))["sandboxID"]
    for _ in range(100):
        if sid in tier.destroyed:
            break
        await asyncio.sleep(0.1)
    assert sid in tier.destroyed
    assert (await client.get(f"/sandboxes/{sid}")).status_code == 404


async def test_a_sandbox_that_dies_on_its_own_is_cleaned_up(client, tier):
    sid = (await _create(client))["sandboxID"]
    tier.dead.add(sid)
    for _ in range(100):
        if sid in tier.destroyed:
            break
        await asyncio.sleep(0.1)
    assert sid in tier.destroyed


async def test_pause_twice_is_409_and_connect_resumes_with_201(client, tier):
    sid = (await _create(client))["sandboxID"]
    assert (await client.post(f"/sandboxes/{sid}/pause")).status_code == 204
    assert sid in tier.frozen
    assert (await client.post(f"/sandboxes/{sid}/pause")).status_code == 409
    assert (await client.get(f"/sandboxes/{sid}")).json()["state"] == "paused"
    r = await client.post(f"/v2/sandboxes/{sid}/connect", json={})
    assert r.status_code == 201 and sid not in tier.frozen
    assert (await client.post(f"/v2/sandboxes/{sid}/connect", json={})).status_code == 200
    assert (await client.post("/v2/sandboxes/nope/connect", json={})).status_code == 404


async def test_metrics_shape(client):
    sid = (await _create(client))["sandboxID"]
    r = await client.get(f"/sandboxes/{sid}/metrics")
    assert r.status_code == 200
    (m,) = r.json()
    for key in ("timestamp", "timestampUnix", "cpuCount", "cpuUsedPct", "memUsed", "memTotal", "memCache", "diskUsed", "diskTotal"):
        assert key in m
    assert m["memTotal"] == 1024 << 20 and 0 <= m["cpuUsedPct"] <= 100


async def test_sandbox_traffic_for_unknown_sandbox_is_502_not_found(client):
    r = await client.post("/process.Process/List", json={}, headers={"E2b-Sandbox-Id": "nope", "E2b-Sandbox-Port": "49983"})
    assert r.status_code == 502 and "was not found" in r.json()["message"]


async def test_templates_listing(client):
    r = await client.get("/templates")
    assert r.status_code == 200 and {t["templateID"] for t in r.json()} == {"base", "big"}
    assert all(t["names"] == t["aliases"] and t["templateID"] in t["names"] for t in r.json())   # the SDK requires `names`


async def test_tag_qualified_templates_not_made_by_the_build_api(client):
    """Such a template has one tag, `default`; any other tag is a 404 naming it."""
    r = await client.post("/sandboxes", json={"templateID": "base:default", "timeout": 60})
    assert r.status_code == 201 and r.json()["templateID"] == "base"
    r = await client.post("/sandboxes", json={"templateID": "base:v2"})
    assert r.status_code == 404 and r.json()["code"] == 404 and "no tag 'v2'" in r.json()["message"]
    r = await client.post("/sandboxes", json={"templateID": "nothing:v2"})   # no such template: as before
    assert r.status_code in (400, 404) and "nothing" in r.json()["message"]


async def test_restart_cleans_up_what_it_cannot_adopt(tmp_path, tier):
    from corral.api import create_app
    from corral.config import Settings
    from tests.api.conftest import make_templates

    settings = Settings(data_dir=tmp_path / "d", env_api_keys=(API_KEY,))
    app1 = create_app(settings, tier=tier, templates_store=make_templates(tmp_path))
    await app1.state.service.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app1), base_url="http://t", headers={"X-API-Key": API_KEY}) as c:
        sid = (await _create(c))["sandboxID"]
    await app1.state.service.close()
    app2 = create_app(settings, tier=tier, templates_store=make_templates(tmp_path))
    await app2.state.service.start()  # MemoryTier.adopt says "gone": the row must be closed
    try:
        assert sid in tier.destroyed
        assert app2.state.store.get(sid).state == "killed"
        assert not (settings.sandboxes_dir / sid).exists()
    finally:
        await app2.state.service.close()


async def test_server_only_envd_routes_are_not_proxied(client):
    sid = (await _create(client))["sandboxID"]
    for path in ("/.corral/init", "/.corral/anything", "/.corral/"):
        r = await client.post(path, json={}, headers={"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49983"})
        assert r.status_code == 404, path


async def test_kill_releases_per_sandbox_server_state(app, client):
    sid = (await _create(client))["sandboxID"]
    # A proxied request opens an upstream client for the sandbox (its envd is absent here: 502).
    r = await client.post("/process.Process/List", json={}, headers={"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49983"})
    assert r.status_code == 502
    assert (await client.get(f"/sandboxes/{sid}/metrics")).status_code == 200
    assert sid in app.proxy._clients and sid in app.state.meter._last
    assert (await client.delete(f"/sandboxes/{sid}")).status_code == 204
    assert sid not in app.proxy._clients and sid not in app.state.meter._last
    assert sid not in app.state.service.parts.locks and app.state.service.handle(sid) is None


async def test_bad_network_rules_are_400_and_nothing_starts(client, tier):
    before = set(tier.running)
    for network in ({"denyOut": ["example.com"]}, {"allowOut": ["http://x.test/"]}, {"allowOut": "x.test"},
                    {"bogus": []}, {"allowOut": ["*"]}):
        r = await client.post("/v2/sandboxes", json={"templateID": "base", "network": network})
        assert r.status_code == 400 and r.json()["message"], (network, r.text)
    assert set(tier.running) == before


async def test_offline_by_default_and_no_network_attached(client):
    sid = (await _create(client))["sandboxID"]
    info = (await client.get(f"/sandboxes/{sid}")).json()
    assert info["allowInternetAccess"] is False
    audit = (await client.get(f"/sandboxes/{sid}/network/audit")).json()
    assert audit == {"sandboxID": sid, "attached": False}


async def test_network_update_validation(client):
    sid = (await _create(client))["sandboxID"]
    assert (await client.put(f"/sandboxes/{sid}/network", json={"denyOut": ["a.test"]})).status_code == 400
    assert (await client.put(f"/sandboxes/{sid}/network", json={"rules": {"a.test": {}}})).status_code == 400
    assert (await client.put(f"/sandboxes/{sid}/network", content=b"[")).status_code == 400
    assert (await client.put("/sandboxes/nope/network", json={})).status_code == 404
    # Taking everything away from a sandbox that had nothing needs no network machinery.
    assert (await client.put(f"/sandboxes/{sid}/network", json={"allow_internet_access": False})).status_code == 204


async def test_corral_extensions_narrow_cpu_and_memory(client, tier):
    doc = await _create(client, metadata={"corral.cpu_count": "1", "corral.memory_mb": "256", "k": "v"})
    limits = tier.running[doc["sandboxID"]].limits
    assert (limits.cpu_count, limits.memory_mb) == (1, 256)
    info = (await client.get(f"/sandboxes/{doc['sandboxID']}")).json()
    assert (info["cpuCount"], info["memoryMB"]) == (1, 256)
    assert info["metadata"]["corral.cpu_count"] == "1"       # metadata stays what the client sent
    raw = await _create(client, corral={"cpuCount": 1, "memoryMB": 512})
    assert tier.running[raw["sandboxID"]].limits.memory_mb == 512


async def test_corral_extensions_that_widen_or_are_not_numbers_are_400s(client, tier):
    before = set(tier.running)
    cases = [
        ({"metadata": {"corral.cpu_count": "3"}}, "template's 2 CPUs"),
        ({"templateID": "big", "metadata": {"corral.cpu_count": "9"}}, "server's ceiling of 8 CPUs"),
        ({"metadata": {"corral.memory_mb": "lots"}}, "positive whole number"),
        ({"metadata": {"corral.cpu_count": "0"}}, "positive whole number"),
        ({"corral": {"cpuCount": "2"}}, "positive whole number"),
        ({"corral": {"cpuCount": True}}, "positive whole number"),
        ({"corral": {"gpus": 1}}, "unknown field 'gpus'"),
        ({"metadata": {"corral.cpu_count": "1"}, "corral": {"cpuCount": 2}}, "metadata says 1"),
    ]
    for extra, says in cases:
        r = await client.post("/v2/sandboxes", json={"templateID": "base", **extra})
        assert r.status_code == 400 and says in r.json()["message"], (extra, r.text)
    assert set(tier.running) == before


async def test_list_is_newest_first_by_default_and_started_after_is_inclusive(client):
    """E2B's list: `order` defaults to desc, `startedAfter` means "at or after"."""
    first = await _create(client, metadata={"order-test": "x"})
    await asyncio.sleep(0.01)
    second = await _create(client, metadata={"order-test": "x"})
    q = {"metadata": "order-test=x"}
    ids = lambda r: [s["sandboxID"] for s in r.json()]  # noqa: E731
    assert ids(await client.get("/v2/sandboxes", params=q)) == [second["sandboxID"], first["sandboxID"]]
    assert ids(await client.get("/v2/sandboxes", params={**q, "order": "asc"})) == [first["sandboxID"], second["sandboxID"]]
    started = (await client.get(f"/sandboxes/{second['sandboxID']}")).json()["startedAt"]
    assert ids(await client.get("/v2/sandboxes", params={**q, "startedAfter": started})) == [second["sandboxID"]]
    assert (await client.get("/v2/sandboxes", params={**q, "order": "sideways"})).status_code == 400


async def test_server_timing_names_the_path_a_create_or_connect_took(client):
    """`Server-Timing` on create, connect and resume: which path the server took and its own time."""
    def timing(res):  # type: ignore[no-untyped-def]
        first, *phases = res.headers["server-timing"].split(", ")
        name, desc, dur = first.split(";")
        total = float(dur.removeprefix("dur="))
        # then the steps inside it (claim, start, tier, deadline...), each within the whole
        for entry in phases:
            step, step_dur = entry.split(";")
            assert step.isidentifier() and 0 <= float(step_dur.removeprefix("dur=")) <= total
        return name, desc

    res = await client.post("/sandboxes", json={"templateID": "base", "timeout": 300})
    assert res.status_code == 201 and timing(res) == ("create", 'desc="started"')
    sid = res.json()["sandboxID"]
    res = await client.post(f"/sandboxes/{sid}/connect", json={"timeout": 300})
    assert res.status_code == 200 and timing(res) == ("connect", 'desc="running"')
    for memory, how in ((True, "full (freezer)"), (False, "filesystem (layer)")):
        assert (await client.post(f"/sandboxes/{sid}/pause", json={"memory": memory})).status_code == 204
        res = await client.post(f"/sandboxes/{sid}/connect", json={"timeout": 300})
        assert res.status_code == 201 and timing(res) == ("resume", f'desc="{how}"')
    replay = {"templateID": "base", "timeout": 300}
    first = await client.post("/sandboxes", json=replay, headers={"Idempotency-Key": "st-" + sid})
    again = await client.post("/sandboxes", json=replay, headers={"Idempotency-Key": "st-" + sid})
    assert timing(again) == ("create", 'desc="idempotent replay"')
    # routes that name nothing carry no header; neither do errors before a handler noted anything
    assert "server-timing" not in (await client.get(f"/sandboxes/{sid}")).headers
    assert "server-timing" not in (await client.post("/sandboxes/nope/connect", json={})).headers
    for s in (sid, first.json()["sandboxID"]):
        assert (await client.delete(f"/sandboxes/{s}")).status_code == 204
