"""The warm pool depends on the starter, not the service; a claim never hands out a sandbox that
does not fit the request or whose daemon does not answer."""

from __future__ import annotations

import asyncio

from corral.config import Settings
from corral.lifecycle import CreateRequest, ResourceRequest, SandboxService
from corral.store import Store


async def _pooled_service(settings: Settings, templates, tier) -> SandboxService:  # type: ignore[no-untyped-def]
    settings.pool = {"base": 1}
    svc = SandboxService(settings, Store(settings.db_path), templates, tier)
    await svc.start()
    for _ in range(500):
        if svc.pool is not None and svc.pool.ready("base") == 1:
            break
        await asyncio.sleep(0.01)
    assert svc.pool is not None and svc.pool.ready("base") == 1
    return svc


async def test_pooled_sandboxes_are_invisible(settings, templates, tier):
    svc = await _pooled_service(settings, templates, tier)
    try:
        [pooled] = svc.store.live()
        assert pooled.state == "pooled" and svc.list() == [] and svc.envd_socket(pooled.sandbox_id) == (None, None)
    finally:
        await svc.close()
    assert svc.store.get(pooled.sandbox_id).kill_reason == "pool closed"


async def test_a_request_that_narrows_limits_does_not_take_a_pooled_sandbox(settings, templates, tier):
    svc = await _pooled_service(settings, templates, tier)
    try:
        [pooled] = svc.store.live()
        plan = svc.starter.plan(CreateRequest(template="base", resources=ResourceRequest(cpu_count=1)))
        assert await svc.pool.claim(plan) is None
        assert svc.pool.ready("base") == 1 and svc.store.get(pooled.sandbox_id).state == "pooled"
    finally:
        await svc.close()


async def test_a_pooled_sandbox_whose_daemon_does_not_answer_is_killed_not_handed_out(settings, templates, tier):
    svc = await _pooled_service(settings, templates, tier)
    try:
        [pooled] = svc.store.live()
        # The in-memory tier has no envd behind the socket: the hand-over fails.
        rec = await svc.create(CreateRequest(template="base"))
        assert rec.sandbox_id != pooled.sandbox_id and rec.state == "running"
        assert svc.store.get(pooled.sandbox_id).kill_reason == "pooled sandbox unhealthy"
    finally:
        await svc.close()
