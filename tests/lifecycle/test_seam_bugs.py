"""The two bugs the seams hid (issue 8), each pinned by a test that failed before the fix.

(a) A sandbox was `running` in the store before its egress was attached, so a concurrent list,
    get or connect saw a sandbox without its network (and without its resolv.conf).
(b) A template removed between the create handler's check and the service's lookup raised an
    uncaught NotFound: a 500 instead of a 404.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from corral.api import create_app
from corral.config import Settings
from corral.templates import TemplateStore
from tests.lifecycle.memory_tier import MemoryTier
from tests.templates.helpers import make_template

API_KEY = "e2b_" + "cd" * 20


def _app(tmp_path: Path, templates: TemplateStore, tier: MemoryTier):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", env_api_keys=(API_KEY,), egress=True)
    return create_app(settings, tier=tier, templates_store=templates)


def _client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://test", headers={"X-API-Key": API_KEY})


async def test_a_sandbox_is_invisible_until_its_network_is_attached(tmp_path):
    store = TemplateStore(tmp_path / "templates")
    make_template(store, "base")
    tier = MemoryTier()
    app = _app(tmp_path, store, tier)
    service = app.state.service
    seen_while_attaching: dict[str, object] = {}

    async with _client(app) as client:
        async def attach(sandbox_id, *args, **kwargs):  # type: ignore[no-untyped-def]
            # The network is being attached right now: what does a concurrent client see?
            seen_while_attaching["listed"] = [r["sandboxID"] for r in (await client.get("/v2/sandboxes")).json()]
            seen_while_attaching["get"] = (await client.get(f"/sandboxes/{sandbox_id}")).status_code
            seen_while_attaching["connect"] = (await client.post(f"/sandboxes/{sandbox_id}/connect",
                                                                 json={"timeout": 60})).status_code
            seen_while_attaching["proxied"] = service.envd_socket(sandbox_id)[0] is not None

        await service.start()
        try:
            service.egress.attach = attach
            r = await client.post("/v2/sandboxes", json={"templateID": "base", "allow_internet_access": True})
            assert r.status_code == 201, r.text
            sid = r.json()["sandboxID"]
            assert seen_while_attaching == {"listed": [], "get": 404, "connect": 404, "proxied": False}
            # Once create has answered, the sandbox is visible, with its network.
            info = (await client.get(f"/sandboxes/{sid}")).json()
            assert info["state"] == "running" and info["allowInternetAccess"] is True
        finally:
            await service.close()


async def test_a_template_removed_during_create_is_a_404_not_a_500(tmp_path):
    class CheckedBeforeRemoval(TemplateStore):
        """`exists` answers as it did just before the removal landed: the race's outcome."""

        def exists(self, name: str) -> bool:
            return name == "short-lived" or super().exists(name)

    store = CheckedBeforeRemoval(tmp_path / "templates")
    make_template(store, "short-lived")
    store.remove("short-lived")
    tier = MemoryTier()
    app = _app(tmp_path, store, tier)
    await app.state.service.start()
    try:
        async with _client(app) as client:
            r = await client.post("/v2/sandboxes", json={"templateID": "short-lived"})
        assert r.status_code == 404, r.text
        assert r.json()["code"] == 404 and "short-lived" in r.json()["message"]
        assert tier.running == {}
    finally:
        await app.state.service.close()
