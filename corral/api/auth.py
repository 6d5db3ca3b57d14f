"""API-key authentication for the REST control plane.

Keys are compared as SHA-256 digests, so the comparison is constant-time with respect to the
secret and the store never holds a usable key. In-sandbox traffic is not authenticated here: it
carries the sandbox's own access token, which the in-sandbox daemon checks.
"""

from __future__ import annotations

import hmac

from corral.ids import hash_key
from corral.store import Store


class KeyRing:
    def __init__(self, store: Store, env_keys: tuple[str, ...] = ()) -> None:
        self.store = store
        self._env_hashes = tuple(hash_key(k) for k in env_keys)

    def check(self, presented: str | None) -> bool:
        if not presented:
            return False
        digest = hash_key(presented)
        ok = False
        for h in self._env_hashes:
            ok |= hmac.compare_digest(h, digest)
        return ok or self.store.has_key(digest)

    @property
    def configured(self) -> bool:
        return bool(self._env_hashes) or bool(self.store.keys())
