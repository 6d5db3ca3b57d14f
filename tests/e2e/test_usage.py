"""Usage and warm pools through the official SDK and `corral usage` against a real server.

The seconds `corral usage` reports are checked against what this test measured around each
sandbox's create and kill: inside the bounds those calls give, and within 1% of the time the test
held the sandbox (from create's answer to the kill call; metering starts when create answers).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone

import httpx
import pytest

from tests.conftest import REPO, start_server, stop_server

pytestmark = pytest.mark.e2e

LIFETIME_S = 16.0
PAUSED_S = 4.0


@pytest.fixture(scope="module")
def metered_server(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    srv = start_server(tmp_path_factory.mktemp("usage") / "data",
                       extra_env={"CORRAL_POOL": "base=1", "CORRAL_METRICS_INTERVAL": "1"})
    yield srv
    stop_server(srv)


@pytest.fixture
def sdk_env(metered_server, monkeypatch):
    for k, v in metered_server.env().items():
        monkeypatch.setenv(k, v)
    return metered_server


def _usage(srv, *args: str) -> dict:
    env = {**os.environ, "CORRAL_URL": srv.url, "E2B_API_KEY": srv.api_key}
    done = subprocess.run([sys.executable, "-m", "corral.cli.main", "usage", "--json", *args],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _db(srv, sql: str, *params):
    with sqlite3.connect(srv.data_dir / "corral.db") as db:
        return db.execute(sql, params).fetchall()


def _wait_pooled(srv, n: int = 1) -> list[str]:
    """The pooled sandboxes once the pool says it has `n` ready (a pooled row is in the store a
    moment before its sandbox is warmed and ready to claim)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if f'corral_pool_ready{{template="base"}} {float(n)}' in httpx.get(srv.url + "/metrics").text:
            return [r[0] for r in _db(srv, "select sandbox_id from sandboxes where state='pooled' and template_id='base'")]
        time.sleep(0.1)
    raise AssertionError(f"the pool did not fill:\n{srv.log()}")


def test_usage_seconds_match_the_sandboxes_this_test_ran(sdk_env):
    """Creates, pauses, resumes and kills go over the REST API the SDK uses, so that the times
    taken around them are the server's answer times and not the SDK's own set-up after it."""
    from e2b import Sandbox

    srv = sdk_env
    api = httpx.Client(base_url=srv.url, headers={"X-API-Key": srv.api_key}, timeout=60)
    since = datetime.now(timezone.utc).isoformat()
    spans = {}
    plan = [("discovery", "base"), ("discovery", "base"), ("search", "media-gateway-search")]
    created = []
    for agent, template in plan:
        t0 = time.time()
        r = api.post("/v2/sandboxes", json={"templateID": template, "metadata": {"agent": agent}, "timeout": 120})
        t1 = time.time()
        assert r.status_code == 201, r.text
        created.append((r.json()["sandboxID"], agent, t0, t1))
    # The sandboxes are real: the SDK runs a command in one of them.
    assert Sandbox.connect(created[1][0]).commands.run("echo metered").stdout.strip() == "metered"
    # One of them is paused for a while in the middle of its life.
    paused_id = created[0][0]
    time.sleep((LIFETIME_S - PAUSED_S) / 2)
    p0 = time.time()
    assert api.post(f"/sandboxes/{paused_id}/pause", json={}).status_code == 204
    p1 = time.time()
    time.sleep(PAUSED_S)
    r0 = time.time()
    assert api.post(f"/v2/sandboxes/{paused_id}/connect", json={"timeout": 120}).status_code == 201
    r1 = time.time()
    time.sleep((LIFETIME_S - PAUSED_S) / 2)
    for sid, agent, c0, c1 in created:
        k0 = time.time()
        assert api.delete(f"/sandboxes/{sid}").status_code == 204
        spans[sid] = (agent, c0, c1, k0, time.time())

    until = datetime.now(timezone.utc).isoformat()
    doc = _usage(srv, "--by", "agent", "--since", since, "--until", until)
    groups = {g["key"]: g for g in doc["groups"]}
    assert set(groups) == {"discovery", "search"}
    assert sorted(groups["discovery"]["sandbox_ids"]) == sorted(s for s, v in spans.items() if v[0] == "discovery")
    assert groups["search"]["sandboxes"] == 1 and doc["total"]["sandboxes"] == 3
    for agent in ("discovery", "search"):
        mine = [v for v in spans.values() if v[0] == agent]
        paused_lo = (r0 - p1) if agent == "discovery" else 0.0
        paused_hi = (r1 - p0) if agent == "discovery" else 0.0
        lower = sum(k0 - c1 for _, _, c1, k0, _ in mine) - paused_hi
        upper = sum(k1 - c0 for _, c0, _, _, k1 in mine) - paused_lo
        # The true seconds lie between `lower` (create answered .. kill called) and `upper` (create
        # sent .. kill answered): the server's figure must fall inside, widened by the 1% the
        # issue allows. (A check against the midpoint failed in CI at load 30+, where creates and
        # resumes took seconds and the midpoint is no better a guess than either end.)
        got = groups[agent]["running_seconds"]
        assert 0.99 * lower <= got <= 1.01 * upper, (agent, lower, got, upper)
        if agent == "discovery":
            paused = groups[agent]["paused_seconds"]
            assert 0.99 * paused_lo <= paused <= 1.01 * paused_hi, (paused_lo, paused, paused_hi)
    # Cost is the reservation priced at E2B's rates.
    rec = {r[0]: r for r in _db(srv, "select sandbox_id, cpu_count, memory_mb, running_seconds from sandbox_usage")}
    expected = sum(r[3] * (r[1] * 0.000014 + r[2] / 1024 * 0.0000045) for sid, r in rec.items() if sid in spans)
    assert doc["total"]["cost"] == pytest.approx(expected, abs=2e-6)

    # The same totals after a restart of the server: the store has them, not its memory.
    stop_server(srv, kill_sandboxes=False)
    again = start_server(srv.data_dir, port=int(srv.url.rsplit(":", 1)[1]),
                         extra_env={"CORRAL_POOL": "base=1", "CORRAL_METRICS_INTERVAL": "1"})
    srv.proc, srv.log_path = again.proc, again.log_path
    after = _usage(srv, "--by", "agent", "--since", since, "--until", until)
    assert after["groups"] == doc["groups"] and after["total"] == doc["total"]
    # The tables as a person reads them.
    env = {**os.environ, "CORRAL_URL": srv.url, "E2B_API_KEY": srv.api_key, "COLUMNS": "200"}
    text = subprocess.run([sys.executable, "-m", "corral.cli.main", "usage", "--by", "agent", "--since", since],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO).stdout
    for needle in ("Estimated usage", "Sandboxes/Day", "Monthly Hours", "discovery", "search", "Monthly cost estimate",
                   "Sandbox hours", "e2b.dev"):
        assert needle in text, (needle, text)


def test_pool_hands_out_only_sandboxes_that_ran_nothing(sdk_env):
    from e2b import Sandbox

    srv = sdk_env
    _wait_pooled(srv)
    first = Sandbox.create(timeout=120)
    first.commands.run("echo used > /tmp/marker && (sleep 1000 &)")
    first_id = first.sandbox_id
    first.kill()
    _wait_pooled(srv)
    second = Sandbox.create(timeout=120)
    try:
        assert second.sandbox_id != first_id
        probe = second.commands.run("ls /tmp; ps -eo args", user="root")
        assert "marker" not in probe.stdout and "sleep 1000" not in probe.stdout
    finally:
        second.kill()
    # A pooled sandbox that was ever handed to a client (here: marked so in the usage store, as
    # if it had been) is never handed out: the claim kills it and starts a fresh one.
    (pooled,) = _wait_pooled(srv)
    _db(srv, "insert into sandbox_usage (sandbox_id, template, template_id, tier, metadata, cpu_count, memory_mb, "
             "from_pool, created_at, state, state_since, running_seconds, paused_seconds, egress_bytes_out, "
             "egress_bytes_in) values (?, 'base', 'base', 'namespace', '{}', 1, 512, 1, ?, 'ended', ?, 0, 0, 0, 0)",
        pooled, datetime.now(timezone.utc).isoformat(" "), datetime.now(timezone.utc).isoformat(" "))
    third = Sandbox.create(timeout=120)
    try:
        assert third.sandbox_id != pooled
        (state,) = _db(srv, "select state from sandboxes where sandbox_id=?", pooled)[0]
        assert state == "killed"
    finally:
        third.kill()


def test_pool_hits_misses_and_refills_are_counted(sdk_env):
    from e2b import Sandbox

    srv = sdk_env
    _wait_pooled(srv)
    a = Sandbox.create(timeout=60)
    b = Sandbox.create(timeout=60)  # the pool refills after a short delay: this one misses
    a.kill()
    b.kill()
    metrics = httpx.get(srv.url + "/metrics").text
    def value(name: str) -> float:
        line = next(ln for ln in metrics.splitlines() if ln.startswith(f'{name}{{template="base"}}'))
        return float(line.split()[-1])
    assert value("corral_pool_hits_total") >= 1 and value("corral_pool_misses_total") >= 1
    assert value("corral_pool_refills_total") >= 1 and value("corral_pool_refill_seconds_total") > 0
    assert 'corral_pool_target{template="base"} 1.0' in metrics
    pools = _usage(srv, "--since", "1h")["pools"]["base"]
    assert pools["hits"] >= 1 and pools["misses"] >= 1 and pools["refill_seconds_avg"] > 0


def test_metric_history_and_logs_as_the_sdk_reads_them(sdk_env):
    from e2b import Sandbox
    from e2b.api.client.models.sandbox_logs import SandboxLogs

    srv = sdk_env
    sbx = Sandbox.create(timeout=60, metadata={"agent": "analysis"})
    try:
        start = datetime.now(timezone.utc)
        sbx.commands.run("python3 -c 'sum(range(10**7))'")
        deadline = time.monotonic() + 30
        samples = []
        while len(samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            samples = sbx.get_metrics(start=start)
        assert len(samples) >= 2 and all(s.timestamp >= start.replace(microsecond=0) for s in samples)
        assert samples[0].cpu_count >= 1 and samples[0].mem_total > 0
    finally:
        sbx.kill()
    r = httpx.get(f"{srv.url}/sandboxes/{sbx.sandbox_id}/logs", headers={"X-API-Key": srv.api_key})
    logs = SandboxLogs.from_dict(r.json())
    assert [e.message.split(":")[0] for e in logs.log_entries][-1] == "sandbox killed"
    assert "claimed from the warm pool" in logs.logs[0].line or "started" in logs.logs[0].line
