"""Metering through the HTTP surface: usage report, logs, metric history, Prometheus, dashboard."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from corral.api import create_app
from corral.config import Settings
from tests.api.conftest import API_KEY, make_templates
from tests.lifecycle.memory_tier import MemoryTier


async def _create(client, **meta):
    r = await client.post("/sandboxes", json={"templateID": "base", "metadata": meta})
    assert r.status_code == 201, r.text
    return r.json()["sandboxID"]


async def test_usage_report_groups_by_metadata_and_counts_pauses(client):
    a = await _create(client, agent="discovery")
    b = await _create(client, agent="discovery")
    c = await _create(client, agent="analysis")
    assert (await client.post(f"/sandboxes/{c}/pause")).status_code == 204
    await asyncio.sleep(0.2)
    assert (await client.post(f"/sandboxes/{c}/connect", json={"timeout": 60})).status_code == 201
    for sid in (a, b, c):
        assert (await client.delete(f"/sandboxes/{sid}")).status_code == 204
    doc = (await client.get("/usage", params={"by": "agent", "since": "1h"})).json()
    groups = {g["key"]: g for g in doc["groups"]}
    assert groups["discovery"]["sandboxes"] == 2 and sorted(groups["discovery"]["sandbox_ids"]) == sorted([a, b])
    assert groups["analysis"]["paused_seconds"] >= 0.2 and groups["analysis"]["running_seconds"] > 0
    assert doc["total"]["sandboxes"] == 3 and doc["prices"]["vcpu_per_second"] == 0.000014
    by_template = (await client.get("/usage", params={"by": "template"})).json()
    assert [g["key"] for g in by_template["groups"]] == ["base"]


@pytest.mark.parametrize("params, message", [
    ({"since": "yesterday"}, "invalid since"), ({"until": "2026-13-01"}, "invalid until"),
    ({"since": "1h", "until": "2h"}, "until must be after since"), ({"by": "<script>"}, "invalid by"),
])
async def test_usage_rejects_bad_parameters(client, params, message):
    r = await client.get("/usage", params=params)
    assert r.status_code == 400 and message in r.json()["message"]


async def test_usage_needs_the_api_key(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anon:
        for path in ("/usage", "/dashboard/api/sandboxes", "/sandboxes/x/logs", "/sandboxes/metrics?sandbox_ids=x"):
            assert (await anon.get(path)).status_code == 401, path


async def test_usage_survives_a_restart(tmp_path, tier):
    settings = Settings(data_dir=tmp_path / "data", env_api_keys=(API_KEY,))
    templates = make_templates(tmp_path)
    first = create_app(settings, tier=tier, templates_store=templates)
    await first.state.service.start()
    transport = httpx.ASGITransport(app=first)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"X-API-Key": API_KEY}) as c:
        sid = await _create(c, agent="search")
        await c.delete(f"/sandboxes/{sid}")
        before = (await c.get("/usage", params={"by": "agent"})).json()["total"]
    await first.state.service.close()
    second = create_app(settings, tier=MemoryTier(), templates_store=templates)
    await second.state.service.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t",
                                     headers={"X-API-Key": API_KEY}) as c:
            after = (await c.get("/usage", params={"by": "agent"})).json()
            logs = (await c.get(f"/sandboxes/{sid}/logs")).json()
    finally:
        await second.state.service.close()
    assert after["total"] == before and after["groups"][0]["key"] == "search"
    assert any("killed" in line["line"] for line in logs["logs"])


async def test_logs_v1_and_v2_as_the_sdk_client_reads_them(client):
    sid = await _create(client)
    await client.post(f"/sandboxes/{sid}/pause")
    await client.post(f"/sandboxes/{sid}/connect", json={})
    await client.delete(f"/sandboxes/{sid}")
    v1 = (await client.get(f"/sandboxes/{sid}/logs")).json()
    assert [e["line"].split(":")[0] for e in v1["logs"]] == ["sandbox started", "sandbox paused", "sandbox resumed", "sandbox killed"]
    assert v1["logEntries"][0]["level"] == "info" and v1["logEntries"][0]["fields"]["template"] == "base"
    from e2b.api.client.models.sandbox_logs import SandboxLogs
    from e2b.api.client.models.sandbox_logs_v2_response import SandboxLogsV2Response

    assert len(SandboxLogs.from_dict(v1).log_entries) == 4
    back = (await client.get(f"/v2/sandboxes/{sid}/logs", params={"direction": "backward", "limit": 2})).json()
    assert [e["message"].split(":")[0] for e in SandboxLogsV2Response.from_dict(back).to_dict()["logs"]] == ["sandbox killed", "sandbox resumed"]
    found = (await client.get(f"/v2/sandboxes/{sid}/logs", params={"search": "paused"})).json()["logs"]
    assert [e["message"] for e in found] == ["sandbox paused"]
    assert (await client.get("/sandboxes/nope/logs")).status_code == 404
    assert (await client.get(f"/v2/sandboxes/{sid}/logs", params={"direction": "sideways"})).status_code == 400
    assert (await client.get(f"/sandboxes/{sid}/logs", params={"limit": "5000"})).status_code == 400


async def test_metric_history_between_start_and_end(app, client):
    sid = await _create(client)
    history = app.state.metrics_history
    await history.sample_all()
    await asyncio.sleep(1.1)
    await history.sample_all()
    samples = (await client.get(f"/sandboxes/{sid}/metrics")).json()
    assert len(samples) == 2 and samples[0]["timestampUnix"] < samples[1]["timestampUnix"]
    from e2b.api.client.models.sandbox_metric import SandboxMetric

    assert SandboxMetric.from_dict(samples[0]).cpu_count == 2
    only_last = (await client.get(f"/sandboxes/{sid}/metrics", params={"start": samples[1]["timestampUnix"]})).json()
    assert only_last == samples[1:]
    bulk = (await client.get("/sandboxes/metrics", params={"sandbox_ids": f"{sid},nope"})).json()
    assert list(bulk["sandboxes"]) == [sid]
    await client.delete(f"/sandboxes/{sid}")
    # History stays readable after the sandbox is gone.
    assert len((await client.get(f"/sandboxes/{sid}/metrics")).json()) == 2
    assert (await client.get("/sandboxes/never/metrics")).status_code == 404


async def test_prometheus_has_live_counts_latencies_and_pools(client):
    sid = await _create(client, agent="discovery")
    await client.get(f"/sandboxes/{sid}")
    text = (await client.get("/metrics")).text
    assert 'corral_sandboxes{state="running",template="base"} 1.0' in text
    assert 'corral_api_request_seconds_count{method="GET",route="/sandboxes/{sandbox_id}",status="200"} 1.0' in text
    assert 'route="/sandboxes/' + sid not in text  # ids never become labels
    assert "corral_pool_hits" in text and "corral_pool_target" in text


async def test_dashboard_page_is_public_but_holds_no_data_and_is_locked_down(client, app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anon:
        page = await anon.get("/dashboard")
        js = await anon.get("/dashboard/app.js")
    assert page.status_code == 200 and 'id="login"' in page.text and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "form-action 'none'" in csp and "default-src 'none'" in csp
    assert "<script>" not in page.text and ".innerHTML" not in js.text and "insertAdjacentHTML" not in js.text and "sessionStorage" in js.text
    sid = await _create(client, agent="<img src=x onerror=alert(1)>")
    rows = (await client.get("/dashboard/api/sandboxes")).json()
    assert rows[0]["sandboxID"] == sid and rows[0]["tier"] == "memory" and rows[0]["cpuUsedPct"] is not None
