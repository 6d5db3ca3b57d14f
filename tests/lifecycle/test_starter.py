"""The start pipeline, step by step: plan (template → limits), launch (slot → record → tier →
ready), finish (network → running)."""

from __future__ import annotations

import pytest

from corral.errors import CorralError, InvalidRequest
from corral.lifecycle import CreateRequest, ResourceRequest, StartFailed
from corral.runtime.base import TierError
from corral.templates import TemplateNotFound


async def test_plan_resolves_the_template_once_and_settles_limits(service, templates, monkeypatch):
    looked_up: list[str] = []
    real_get = templates.get
    monkeypatch.setattr(templates, "get", lambda name: looked_up.append(name) or real_get(name))
    rec = await service.create(CreateRequest(template="base", timeout=60))
    assert looked_up == ["base"]
    assert (rec.cpu_count, rec.memory_mb, rec.disk_mb) == (2, 1024, 2048)


async def test_launch_leaves_the_row_starting_and_invisible_until_finish(service, tier):
    plan = service.starter.plan(CreateRequest(template="base"))
    rec = await service.starter.launch(plan.template, plan.image, plan.limits, env=plan.env, alias="base",
                                       timeout=plan.timeout, metadata={})
    assert rec.state == "starting" and rec.sandbox_id in tier.running
    assert service.list() == [] and service.envd_socket(rec.sandbox_id) == (None, None)
    with pytest.raises(CorralError) as exc:
        service.get(rec.sandbox_id)
    assert exc.value.status == 404
    done = await service.starter.finish(rec, plan)
    assert done.state == "running" and [r.sandbox_id for r in service.list()] == [rec.sandbox_id]


async def test_each_sandbox_gets_a_free_slot(service):
    a = await service.create(CreateRequest(template="base"))
    b = await service.create(CreateRequest(template="base"))
    assert a.uid_slot != b.uid_slot
    await service.kill(a.sandbox_id)
    c = await service.create(CreateRequest(template="base"))
    assert c.uid_slot == a.uid_slot  # a killed sandbox's slot is reused


async def test_a_tier_failure_leaves_nothing_and_is_a_500_with_the_reason(service, tier, settings):
    tier.fail_create = TierError("no loop devices left")
    with pytest.raises(StartFailed, match="no loop devices left") as exc:
        await service.create(CreateRequest(template="base"))
    assert exc.value.status == 500
    rows = service.store.live()
    assert rows == [] and list(settings.sandboxes_dir.iterdir()) == []


async def test_an_unknown_template_is_a_404_before_anything_is_allocated(service, tier):
    with pytest.raises(TemplateNotFound) as exc:
        await service.create(CreateRequest(template="nope"))
    assert exc.value.status == 404 and tier.running == {} and service.store.live() == []


async def test_a_request_narrows_the_template(service, tier):
    rec = await service.create(CreateRequest(template="base", resources=ResourceRequest(cpu_count=1, memory_mb=256)))
    spec = tier.running[rec.sandbox_id]
    assert (spec.limits.cpu_count, spec.limits.memory_mb) == (1, 256) == (rec.cpu_count, rec.memory_mb)


@pytest.mark.parametrize("resources, says", [
    (ResourceRequest(cpu_count=3), "template's 2 CPUs"),
    (ResourceRequest(memory_mb=4096), "template's 1024 MB"),
    (ResourceRequest(memory_mb=32), "minimum of 64 MB"),
])
async def test_a_request_never_widens_the_template(service, tier, resources, says):
    with pytest.raises(InvalidRequest, match=says):
        await service.create(CreateRequest(template="base", resources=resources))
    assert tier.running == {}


async def test_the_server_ceiling_caps_templates_silently_and_refuses_requests(service, tier):
    rec = await service.create(CreateRequest(template="big"))
    assert (rec.cpu_count, rec.memory_mb) == (8, 8192)
    with pytest.raises(InvalidRequest, match="server's ceiling of 8 CPUs"):
        await service.create(CreateRequest(template="big", resources=ResourceRequest(cpu_count=9)))


async def test_a_timeout_above_the_ceiling_is_refused(service):
    with pytest.raises(InvalidRequest, match="exceeds the maximum"):
        await service.create(CreateRequest(template="base", timeout=10**7))


async def test_a_failed_network_attach_kills_the_sandbox(service, tier, monkeypatch):
    from corral.network import EgressPolicy

    async def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError("no veth for you")

    monkeypatch.setattr(service.egress, "attach", broken)
    plan = service.starter.plan(CreateRequest(template="base"))
    plan = type(plan)(**{**plan.__dict__, "egress": EgressPolicy(internet=True)})
    with pytest.raises(OSError):
        await service.starter.start(plan)
    assert tier.running == {} and service.store.live() == []
    assert service.store.get(tier.destroyed[-1]).kill_reason == "network attach failed"
