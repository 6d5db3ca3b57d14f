"""The one place an isolation tier is chosen: callers above the lifecycle never name a tier."""

from __future__ import annotations

import hashlib

from corral.config import Settings
from corral.errors import InvalidRequest
from corral.runtime.base import Tier

TIERS = ("namespace",)


def make_tier(settings: Settings) -> Tier:
    if settings.tier == "namespace":
        from corral.runtime.namespace import NamespaceTier

        # Cgroups are grouped per data dir, so two servers on one host (a test server beside a
        # real one) never mistake each other's sandboxes for leftovers.
        digest = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:10]
        return NamespaceTier(cgroup_group=f"corral-{digest}")
    raise InvalidRequest(f"unknown isolation tier {settings.tier!r} (available: {', '.join(TIERS)})")
