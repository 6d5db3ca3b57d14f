"""Idempotent creates: a create retried under the same `Idempotency-Key` gets the same sandbox.

The key is scoped to the caller (a hash of its API key) and kept 24 hours in the store, so a
retry after a restart of the server is still recognised. The body is part of the promise: the
same key with a different body is a 409, never a silent second sandbox or a silent replay of
the first. Retries that arrive while the first create is still running wait for it (a lock
per key in this process); two replicas racing on one key are settled by the store's primary
key: the loser kills the sandbox it made and answers with the winner's. A create that fails
records nothing, so its retry really tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from corral.errors import Conflict, InvalidRequest
from corral.lifecycle.requests import CreateRequest
from corral.store import SandboxRecord, Store

# What E2B's SDK accepts (and so sends): lowercase letters, digits and hyphens, e.g. a UUID.
KEY_RE = re.compile(r"[a-z0-9-]{1,255}")


class IdempotencyConflict(Conflict):
    """The key was used with a different request body."""


def check_key(key: str) -> str:
    """A key as E2B's SDK sends it: 1-255 lowercase letters, digits or hyphens."""
    if KEY_RE.fullmatch(key) is None:
        raise InvalidRequest("Idempotency-Key must be 1-255 lowercase letters, digits or hyphens")
    return key


def body_hash(body: Any) -> str:
    """The request body's identity: its JSON with sorted keys, so key order and spacing do not
    make a retry look like a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def caller_scope(credential: str | None) -> str:
    return hashlib.sha256((credential or "").encode()).hexdigest()


class IdempotentCreates:
    def __init__(self, store: Store, create: Callable[[CreateRequest], Awaitable[SandboxRecord]],
                 kill: Callable[[str, str], Awaitable[bool]]) -> None:
        self.store = store
        self._create = create
        self._kill = kill
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _replay(self, sandbox_id: str) -> SandboxRecord:
        rec = self.store.get(sandbox_id)
        if rec is None:   # the row of a sandbox is never deleted; this is a broken store
            raise Conflict(f"the sandbox made under this Idempotency-Key ({sandbox_id}) is unknown")
        return rec

    async def create(self, scope: str, key: str, digest: str, request: CreateRequest) -> tuple[SandboxRecord, bool]:
        """(record, replayed): the sandbox made for this key, made now if there was none."""
        ident = (scope, key)
        lock = self._locks.setdefault(ident, asyncio.Lock())
        try:
            async with lock:
                seen = self.store.idempotency.lookup(scope, key)
                if seen is not None:
                    if seen.body_hash != digest:
                        raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
                    return self._replay(seen.sandbox_id), True
                rec = await self._create(request)
                won = self.store.idempotency.remember(scope, key, digest, rec.sandbox_id)
                if won.sandbox_id == rec.sandbox_id:
                    return rec, False
                # Another replica recorded the key first: ours is a duplicate.
                await self._kill(rec.sandbox_id, "duplicate idempotent create")
                if won.body_hash != digest:
                    raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
                return self._replay(won.sandbox_id), True
        finally:
            if not lock.locked() and self._locks.get(ident) is lock:
                del self._locks[ident]
