"""Warm pools through the official SDK: a claimed sandbox behaves exactly like a fresh one."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.tiers import runsc_missing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pooled_server(tmp_path_factory):
    # With runsc, also one gVisor sandbox of base, for creates that raise isolation (base@gvisor).
    pool = "base=2" if runsc_missing() else "base=2,base@gvisor=1"
    srv = start_server(tmp_path_factory.mktemp("pool") / "data", extra_env={"CORRAL_POOL": pool})
    yield srv
    stop_server(srv)


def _pooled_ids(srv, tier: str | None = None) -> set[str]:
    import sqlite3

    with sqlite3.connect(srv.data_dir / "corral.db") as db:
        rows = db.execute("select sandbox_id, tier from sandboxes where state='pooled'").fetchall()
    return {sid for sid, t in rows if tier is None or t == tier}


def _wait_pool_ready(srv, n: int, tier: str | None = None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        count = len(_pooled_ids(srv, tier))
        if count >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"pool did not fill:\n{srv.log()}")


def test_claimed_sandbox_has_the_clients_token_envs_and_metadata(pooled_server, monkeypatch):
    from e2b import Sandbox

    for k, v in pooled_server.env().items():
        monkeypatch.setenv(k, v)
    _wait_pool_ready(pooled_server, 2, "namespace")
    # Pooled sandboxes are not visible to clients.
    assert Sandbox.list().next_items() == []
    sbx = Sandbox.create(envs={"CLAIMED_VAR": "hello-pool"}, metadata={"who": "pool-test"}, timeout=120)
    try:
        assert sbx.commands.run("echo $CLAIMED_VAR").stdout.strip() == "hello-pool"
        info = sbx.get_info()
        assert info.metadata == {"who": "pool-test"}
        assert (info.end_at - info.started_at).total_seconds() == pytest.approx(120, abs=2)
        # Only the token the client received opens envd.
        url = pooled_server.url
        hdr = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983"}
        assert httpx.get(url + "/envs", headers={**hdr, "X-Access-Token": "wrong"}).status_code == 401
        assert httpx.get(url + "/envs", headers={**hdr, "X-Access-Token": sbx._envd_access_token}).json() == {"CLAIMED_VAR": "hello-pool"}
        listed = [s.sandbox_id for s in Sandbox.list().next_items()]
        assert listed == [sbx.sandbox_id]
    finally:
        sbx.kill()
    # The pool refills behind the claim (the row says `pooled` a moment before the pool holds it
    # ready, so the header check waits for the pool's own gauge).
    _wait_pool_ready(pooled_server, 2, "namespace")
    from corral.bench.target import Target

    assert Target(pooled_server.url, pooled_server.api_key).wait_pool("base", 120), pooled_server.log()
    # A create the pool serves says so, with the server's own time, in its Server-Timing header.
    key = {"X-API-Key": pooled_server.env()["E2B_API_KEY"]}
    res = httpx.post(pooled_server.url + "/sandboxes", json={"templateID": "base", "timeout": 60}, headers=key,
                     timeout=60)
    assert res.status_code == 201, res.text
    assert res.headers["server-timing"].startswith('create;desc="warm pool";dur=')
    assert httpx.delete(f"{pooled_server.url}/sandboxes/{res.json()['sandboxID']}", headers=key,
                        timeout=60).status_code == 204


def test_a_create_that_raises_isolation_is_served_by_the_tiers_pool(pooled_server, monkeypatch):
    """`base@gvisor=1`: a create asking for gvisor gets the booted gVisor sandbox, handed over
    through its envd (behind the relay) with the client's token and env vars, like any claim."""
    from e2b import Sandbox

    if runsc_missing():
        pytest.skip(runsc_missing() or "")
    for k, v in pooled_server.env().items():
        monkeypatch.setenv(k, v)
    _wait_pool_ready(pooled_server, 1, "gvisor")
    # (the row says `pooled` a moment before the pool holds it ready: after its warm-up command)
    from corral.bench.target import Target

    assert Target(pooled_server.url, pooled_server.api_key).wait_pool("base@gvisor", 120), pooled_server.log()
    [pooled] = _pooled_ids(pooled_server, "gvisor")
    sbx = Sandbox.create(envs={"CLAIMED_VAR": "gv-pool"}, metadata={"corral.isolation": "gvisor"}, timeout=120)
    try:
        assert sbx.sandbox_id.split("-")[0] == pooled
        info = httpx.get(f"{pooled_server.url}/sandboxes/{sbx.sandbox_id}",
                         headers={"X-API-Key": pooled_server.api_key}).json()
        assert info["isolation"] == "gvisor"
        assert sbx.commands.run("echo $CLAIMED_VAR; uname -r").stdout.split() == ["gv-pool", "4.4.0"]
        hdr = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983"}
        assert httpx.get(pooled_server.url + "/envs", headers={**hdr, "X-Access-Token": "wrong"}).status_code == 401
    finally:
        sbx.kill()
