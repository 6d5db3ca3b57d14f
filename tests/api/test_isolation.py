"""The isolation extension over HTTP: metadata `corral.isolation` and the body's `corral.isolation`,
refusals as 400s that say why, and `isolation` in GET /sandboxes/{id}."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from corral.api import create_app
from corral.config import Settings
from corral.runtime.tiers import TierSet
from tests.api.conftest import API_KEY, make_templates
from tests.lifecycle.test_isolation import Named


@pytest.fixture
async def tiers_client(tmp_path: Path):  # type: ignore[no-untyped-def]
    tiers = TierSet({"namespace": Named("namespace"), "gvisor": Named("gvisor")}, "namespace")
    app = create_app(Settings(data_dir=tmp_path / "data", env_api_keys=(API_KEY,)), tier=tiers,
                     templates_store=make_templates(tmp_path))
    await app.state.service.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"X-API-Key": API_KEY}) as c:
        yield c, tiers
    await app.state.service.close()


async def test_metadata_and_body_choose_the_tier(tiers_client) -> None:  # type: ignore[no-untyped-def]
    client, tiers = tiers_client
    r = await client.post("/v2/sandboxes", json={"templateID": "base", "metadata": {"corral.isolation": "gvisor"}})
    assert r.status_code == 201, r.text
    sid = r.json()["sandboxID"]
    assert sid in tiers.tiers["gvisor"].running
    assert (await client.get(f"/sandboxes/{sid}")).json()["isolation"] == "gvisor"
    r = await client.post("/v2/sandboxes", json={"templateID": "base", "corral": {"isolation": "gvisor"}})
    assert r.status_code == 201 and r.json()["sandboxID"] in tiers.tiers["gvisor"].running
    plain = (await client.post("/v2/sandboxes", json={"templateID": "base"})).json()["sandboxID"]
    assert (await client.get(f"/sandboxes/{plain}")).json()["isolation"] == "namespace"


@pytest.mark.parametrize("extra, says", [
    ({"metadata": {"corral.isolation": "vm"}}, "expected one of namespace, gvisor, microvm"),
    ({"metadata": {"corral.isolation": "microvm"}}, "does not run"),
    ({"corral": {"isolation": 3}}, "expected one of"),
    ({"metadata": {"corral.isolation": "gvisor"}, "corral": {"isolation": "namespace"}}, "metadata says"),
])
async def test_bad_isolation_is_a_400(tiers_client, extra, says) -> None:  # type: ignore[no-untyped-def]
    client, _ = tiers_client
    r = await client.post("/v2/sandboxes", json={"templateID": "base", **extra})
    assert r.status_code == 400 and says in r.json()["message"], r.text


async def test_a_single_tier_server_refuses_other_tiers(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/v2/sandboxes", json={"templateID": "base", "metadata": {"corral.isolation": "gvisor"}})
    assert r.status_code == 400 and "not available" in r.json()["message"]
