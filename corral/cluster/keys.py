"""API keys on a replica: checked against the shared database, and trusted for a few seconds.

Every request through a replica carries an API key, and looking each one up in PostgreSQL costs a
round trip per request on the hot path (creates, connects, lists, a build's status polls). A key found
valid is trusted for `ttl_s` (CORRAL_KEY_CACHE, default 5 s): a key revoked (`corral keys
revoke`) stops working on every replica within that time, since nothing here outlives it. A key
found invalid is not remembered, so a key just created works at once; a flood of wrong keys costs
what it cost before (one indexed lookup each). Keys are held by their SHA-256 digest only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from corral.api.auth import KeyRing
from corral.ids import hash_key

_MAX_KEYS = 10_000


class CachedKeys:
    def __init__(self, keys: KeyRing, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys
        self.store = keys.store
        self.ttl_s = ttl_s
        self._clock = clock
        self._valid_until: OrderedDict[str, float] = OrderedDict()

    def check(self, presented: str | None) -> bool:
        if not presented:
            return False
        digest = hash_key(presented)
        now = self._clock()
        until = self._valid_until.get(digest)
        if until is not None and now < until:
            return True
        ok = self.keys.check(presented)
        if ok and self.ttl_s > 0:
            self._valid_until[digest] = now + self.ttl_s
            self._valid_until.move_to_end(digest)
            while len(self._valid_until) > _MAX_KEYS:
                self._valid_until.popitem(last=False)
        else:
            self._valid_until.pop(digest, None)
        return ok
