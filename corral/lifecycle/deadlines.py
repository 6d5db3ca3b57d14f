"""The sandbox's own deadline, kept in step with the store's `end_at`.

The store's `end_at` is when the server's reaper kills (or pauses) a sandbox. Each sandbox also
holds its own end time, a little later (`SELF_END_GRACE_S`, or `SELF_END_GRACE_PAUSE_S` for a
sandbox that should be paused at its timeout, which needs a server), at which its envd ends it
by itself: the backstop for a server that is gone. A live server therefore always acts first.

Every change of `end_at` goes through `push`; a pause clears the sandbox's own deadline first
(a frozen daemon cannot act, and an overdue timer must not fire at the thaw), and resume sets
it again. A failure to reach envd is logged, not raised: the server's reaper still enforces the
store's deadline, and a sandbox that cannot be reached is on its way out anyway.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from corral.lifecycle.parts import Parts
from corral.store import SandboxRecord, SandboxState
from corral.wire.client import EnvdError
from corral.wire.constants import SELF_END_GRACE_PAUSE_S, SELF_END_GRACE_S

log = logging.getLogger("corral.lifecycle")

# A pooled sandbox has no client deadline yet; its own deadline is a lease the pool renews while
# the server lives (a restarted server discards pooled sandboxes anyway), so an orphaned pool
# ends within POOL_LEASE_S of its server.
POOL_LEASE_S = 120.0
POOL_RENEW_S = 30.0


def pool_lease_end() -> float:
    return time.time() + POOL_LEASE_S


def self_end(end_at: datetime, on_timeout: str) -> float:
    """The sandbox's own end time (Unix seconds) for the server's deadline `end_at`."""
    grace = SELF_END_GRACE_PAUSE_S if on_timeout == "pause" else SELF_END_GRACE_S
    return end_at.timestamp() + grace


def own_end_at(rec: SandboxRecord) -> float | None:
    """The sandbox's own end time for a record; None while paused."""
    if rec.state == SandboxState.PAUSED.value:
        return None
    return self_end(rec.end_at, rec.on_timeout)


async def push(parts: Parts, rec: SandboxRecord, *, clear: bool = False) -> bool:
    """Tell the sandbox its own deadline (or clear it); False if envd could not be told."""
    handle = parts.handles.get(rec.sandbox_id)
    if handle is None:
        return False
    try:
        await parts.envd(rec.sandbox_id, handle, rec.envd_access_token).set_deadline(
            None if clear else own_end_at(rec))
    except EnvdError as exc:
        log.warning("could not move the own deadline of sandbox %s: %s", rec.sandbox_id, exc.message)
        return False
    return True
