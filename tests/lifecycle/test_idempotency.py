"""Idempotent creates over the real service and store (in-memory tier)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from corral.errors import InvalidRequest
from corral.lifecycle import SandboxService
from corral.lifecycle.idempotency import IdempotencyConflict, body_hash, caller_scope, check_key
from corral.lifecycle.requests import CreateRequest
from corral.store import Store

SCOPE = caller_scope("e2b_key_one")


def _req(**kw: object) -> CreateRequest:
    return CreateRequest(template="base", **kw)  # type: ignore[arg-type]


async def test_retry_returns_the_same_sandbox(service: SandboxService) -> None:
    digest = body_hash({"templateID": "base", "timeout": 60})
    first, replayed = await service.idempotent.create(SCOPE, "k-1", digest, _req(timeout=60))
    assert replayed is False
    again, replayed = await service.idempotent.create(SCOPE, "k-1", digest, _req(timeout=60))
    assert replayed is True and again.sandbox_id == first.sandbox_id
    assert [r.sandbox_id for r in service.list()] == [first.sandbox_id]


async def test_different_body_under_the_same_key_is_a_conflict(service: SandboxService) -> None:
    await service.idempotent.create(SCOPE, "k-2", body_hash({"timeout": 60}), _req(timeout=60))
    with pytest.raises(IdempotencyConflict) as exc:
        await service.idempotent.create(SCOPE, "k-2", body_hash({"timeout": 61}), _req(timeout=61))
    assert exc.value.status == 409
    assert len(service.list()) == 1


async def test_keys_are_per_caller(service: SandboxService) -> None:
    digest = body_hash({})
    a, _ = await service.idempotent.create(SCOPE, "shared", digest, _req())
    b, replayed = await service.idempotent.create(caller_scope("e2b_key_two"), "shared", digest, _req())
    assert replayed is False and a.sandbox_id != b.sandbox_id


async def test_concurrent_retries_make_one_sandbox(service: SandboxService) -> None:
    digest = body_hash({"x": 1})
    results = await asyncio.gather(*(service.idempotent.create(SCOPE, "k-3", digest, _req()) for _ in range(5)))
    assert len({rec.sandbox_id for rec, _ in results}) == 1
    assert sum(1 for _, replayed in results if not replayed) == 1
    assert len(service.list()) == 1


async def test_a_failed_create_records_nothing(service: SandboxService) -> None:
    with pytest.raises(Exception):
        await service.idempotent.create(SCOPE, "k-4", body_hash({}), CreateRequest(template="no-such-template"))
    rec, replayed = await service.idempotent.create(SCOPE, "k-4", body_hash({}), _req())
    assert replayed is False and rec.template_id == "base"


async def test_the_key_survives_a_restart_and_expires(service: SandboxService, settings) -> None:  # type: ignore[no-untyped-def]
    digest = body_hash({})
    rec, _ = await service.idempotent.create(SCOPE, "k-5", digest, _req())
    reopened = Store(settings.db_path)
    seen = reopened.idempotency.lookup(SCOPE, "k-5")
    assert seen is not None and seen.sandbox_id == rec.sandbox_id
    assert reopened.idempotency.lookup(SCOPE, "k-5", now=seen.expires_at + timedelta(seconds=1)) is None
    assert seen.expires_at - rec.started_at <= timedelta(hours=24, seconds=5)


async def test_losing_a_race_between_replicas_kills_the_duplicate(service: SandboxService) -> None:
    """Another replica recorded the key while we were creating: ours is killed, theirs returned."""
    digest = body_hash({})
    theirs, _ = await service.idempotent.create(SCOPE, "other-replica", digest, _req())
    original = service.store.idempotency.lookup

    def not_yet(scope: str, key: str, now=None):  # type: ignore[no-untyped-def]
        return None if key == "k-6" else original(scope, key, now)

    service.store.idempotency.remember(SCOPE, "k-6", digest, theirs.sandbox_id)
    service.store.idempotency.lookup = not_yet  # type: ignore[method-assign]
    try:
        rec, replayed = await service.idempotent.create(SCOPE, "k-6", digest, _req())
    finally:
        service.store.idempotency.lookup = original  # type: ignore[method-assign]
    assert replayed is True and rec.sandbox_id == theirs.sandbox_id
    assert [r.sandbox_id for r in service.list()] == [theirs.sandbox_id]


@pytest.mark.parametrize("key", ["", "UPPER", "a b", "a/b", "x" * 256, "ключ", "a\n"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidRequest):
        check_key(key)


def test_body_hash_ignores_key_order_and_spacing() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})
