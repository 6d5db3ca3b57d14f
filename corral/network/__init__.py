"""Sandbox egress: policy model, per-sandbox veth + nftables, a pinning DNS resolver, audit.

The server uses three things from here:

* `from_e2b(...)` / `from_spec(...)` / `narrow(...)` to turn requests and templates into one
  `EgressPolicy` (raising `NetworkPolicyError` with a message for bad input);
* `NetworkManager` to attach, update and detach a sandbox's network and read its audit;
* `Attachment` (what attach returns): the nameserver to write into the sandbox's resolv.conf.
"""

from .manager import Attachment, NetworkManager
from .resolver import system_resolvers
from .policy import NO_EGRESS, DomainRule, EgressPolicy, NetworkPolicyError, from_e2b, from_spec, narrow

__all__ = ["Attachment", "DomainRule", "EgressPolicy", "NO_EGRESS", "NetworkManager", "NetworkPolicyError",
           "from_e2b", "from_spec", "narrow", "system_resolvers"]
