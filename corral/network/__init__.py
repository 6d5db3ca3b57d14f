"""Sandbox egress: the policy model, per-sandbox veth + nftables, a pinning DNS resolver, audit.

This is the package's whole public surface; lifecycle, api and the template builder import from
here only (the modules behind it may change):

* the policy model: `EgressPolicy`, `DomainRule`, `NO_EGRESS`, and the parsers that build one,
  `from_e2b(...)` (E2B's create and update fields), `from_spec(...)` (the spec's / e2b.toml's
  `internet_access` + `allowed_hosts`) and `narrow(request, ceiling)`; bad input raises
  `NetworkPolicyError`, a `corral.errors.InvalidRequest` (400) that names the entry;
* `NetworkManager`: attach, update (`ensure`), detach a sandbox's network, re-adopt after a
  restart (`start`, `leftovers`), and read its audit (`audit`, an `AuditReport`);
* `Attachment` (what attach returns): the nameserver to write into the sandbox's resolv.conf;
* the errors that reach an edge: `NotAttached` (404), `PoolExhausted` (503);
* `system_resolvers()`: the host's nameservers, the default upstreams.
"""

from .addressing import PoolExhausted
from .audit import AuditReport
from .egress_policy import NO_EGRESS, DomainRule, EgressPolicy, NetworkPolicyError, from_e2b, from_spec, narrow
from .manager import Attachment, NetworkManager, NotAttached
from .nftables import CarriedUse
from .resolver import system_resolvers

__all__ = ["Attachment", "AuditReport", "CarriedUse", "DomainRule", "EgressPolicy", "NO_EGRESS", "NetworkManager",
           "NetworkPolicyError", "NotAttached", "PoolExhausted", "from_e2b", "from_spec", "narrow",
           "system_resolvers"]
