"""Warm pools through the official SDK: a claimed sandbox behaves exactly like a fresh one."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pooled_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("pool") / "data", extra_env={"CORRAL_POOL": "base=2"})
    yield srv
    stop_server(srv)


def _wait_pool_ready(srv, n: int) -> None:
    import sqlite3

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(srv.data_dir / "corral.db") as db:
            (count,) = db.execute("select count(*) from sandboxes where state='pooled'").fetchone()
        if count >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"pool did not fill:\n{srv.log()}")


def test_claimed_sandbox_has_the_clients_token_envs_and_metadata(pooled_server, monkeypatch):
    from e2b import Sandbox

    for k, v in pooled_server.env().items():
        monkeypatch.setenv(k, v)
    _wait_pool_ready(pooled_server, 2)
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
    # The pool refills behind the claim.
    _wait_pool_ready(pooled_server, 2)
    # A create the pool serves says so, with the server's own time, in its Server-Timing header.
    key = {"X-API-Key": pooled_server.env()["E2B_API_KEY"]}
    res = httpx.post(pooled_server.url + "/sandboxes", json={"templateID": "base", "timeout": 60}, headers=key,
                     timeout=60)
    assert res.status_code == 201, res.text
    assert res.headers["server-timing"].startswith('create;desc="warm pool";dur=')
    assert httpx.delete(f"{pooled_server.url}/sandboxes/{res.json()['sandboxID']}", headers=key,
                        timeout=60).status_code == 204
