"""The one place an isolation tier is chosen: callers above the lifecycle never name a tier.

The server runs every tier this host can offer behind one :class:`corral.runtime.tiers.TierSet`:
the namespace tier always, gVisor when ``runsc`` is installed. The server's default
(``CORRAL_ISOLATION`` / ``corral serve --isolation``) is the weakest tier a sandbox gets; a
template's ``isolation`` and a request's ``corral.isolation`` may raise it, never lower it
(:func:`corral.runtime.isolation.choose`).
"""

from __future__ import annotations

import hashlib
import logging

from corral.config import Settings
from corral.errors import InvalidRequest
from corral.runtime.base import Tier
from corral.runtime.isolation import LEVELS, choose
from corral.runtime.tiers import TierSet

log = logging.getLogger("corral.lifecycle")

TIERS = ("namespace", "gvisor")


def _runsc_installed() -> bool:
    from corral.runtime.gvisor.runsc import runsc_installed

    return runsc_installed()


def make_tier(settings: Settings) -> Tier:
    if settings.tier not in TIERS:
        known = ", ".join(TIERS)
        raise InvalidRequest(f"unknown isolation tier {settings.tier!r} (available: {known})")
    from corral.runtime.namespace import NamespaceTier

    # Cgroups are grouped per data dir, so two servers on one host (a test server beside a
    # real one) never mistake each other's sandboxes for leftovers.
    digest = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:10]
    tiers: dict[str, Tier] = {"namespace": NamespaceTier(cgroup_group=f"corral-{digest}")}
    if _runsc_installed():
        from corral.runtime.gvisor import GVisorTier

        # runsc's state lives under the data dir, so a restarted server finds its sandboxes.
        tiers["gvisor"] = GVisorTier(cgroup_group=f"corral-gv-{digest}",
                                     runsc_root=settings.data_dir / "runsc")
    elif settings.tier == "gvisor":
        raise InvalidRequest("the default isolation is gvisor, but runsc is not installed "
                             "(make deps installs it)")
    else:
        log.info("runsc is not installed: the gvisor isolation tier is not offered")
    return TierSet(tiers, settings.tier)


def available(tier: Tier) -> tuple[str, ...]:
    return tier.available if isinstance(tier, TierSet) else (tier.name,)


def choose_isolation(settings: Settings, tier: Tier, template_minimum: str | None,
                     requested: str | None) -> str:
    """The tier one sandbox runs in (InvalidRequest, a 400, when the request may not have it).

    A server built around a single tier (tests give one) runs everything there: its default is
    that tier, and asking for another is refused as unavailable."""
    if not isinstance(tier, TierSet):
        default = tier.name if tier.name not in LEVELS else settings.tier
        if tier.name not in LEVELS:   # a stand-in tier: only "nothing asked" is possible
            if template_minimum or requested:
                raise InvalidRequest(f"isolation {(requested or template_minimum)!r} is not "
                                     f"available on this server (it runs {tier.name!r})")
            return tier.name
        return choose(default, template_minimum, requested, (tier.name,))
    return choose(settings.tier, template_minimum, requested, tier.available)


def route(tier: Tier, sandbox_id: str, isolation: str) -> None:
    """Send ``sandbox_id``'s create (and everything after) to the chosen tier."""
    if isinstance(tier, TierSet):
        tier.use(sandbox_id, isolation)


def attaches_at_boot(tier: Tier, isolation: str) -> bool:
    """Whether sandboxes of this tier must get their network before they start (gVisor's network
    stack takes its interfaces at boot; the namespace tier's veth can come later)."""
    return isolation == "gvisor" and isinstance(tier, TierSet) and "gvisor" in tier.tiers
