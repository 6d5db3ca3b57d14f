"""The reaper: timeouts kill (or pause, with autoPause), and sandboxes that died are cleaned up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from corral.lifecycle import CreateRequest


def _expire(service, sid: str) -> None:  # type: ignore[no-untyped-def]
    service.store.update(sid, end_at=datetime.now(timezone.utc) - timedelta(seconds=1))


async def test_an_expired_sandbox_is_killed(service, tier):
    rec = await service.create(CreateRequest(template="base", timeout=60))
    _expire(service, rec.sandbox_id)
    await service.reaper.once()
    assert service.store.get(rec.sandbox_id).kill_reason == "timeout" and rec.sandbox_id not in tier.running


async def test_an_expired_auto_pause_sandbox_is_paused_not_killed(service, tier):
    rec = await service.create(CreateRequest(template="base", timeout=60, auto_pause=True))
    _expire(service, rec.sandbox_id)
    await service.reaper.once()
    after = service.store.get(rec.sandbox_id)
    assert after.state == "paused" and rec.sandbox_id in tier.frozen
    assert after.end_at > datetime.now(timezone.utc) + timedelta(days=29)


async def test_a_sandbox_that_died_on_its_own_is_removed(service, tier):
    rec = await service.create(CreateRequest(template="base", timeout=60))
    tier.dead.add(rec.sandbox_id)
    await service.reaper.once()
    assert service.store.get(rec.sandbox_id).kill_reason == "exited"


async def test_the_reaper_sleeps_until_the_next_deadline_at_most(service):
    assert await service.reaper.once() == 2.0          # nothing live: the liveness interval
    await service.create(CreateRequest(template="base", timeout=1))
    assert await service.reaper.once() <= 1.0


async def test_a_kill_runs_the_hooks_once(service):
    seen: list[str] = []
    service.on_kill.append(seen.append)
    rec = await service.create(CreateRequest(template="base"))
    assert await service.kill(rec.sandbox_id) is True
    assert await service.kill(rec.sandbox_id) is False
    assert seen == [rec.sandbox_id]

