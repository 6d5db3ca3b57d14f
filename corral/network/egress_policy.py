"""One egress policy model, and the parsers that turn every way of asking for network access into it.

Three vocabularies ask for the same thing:

* the product spec / `e2b.toml`: `internet_access` + `allowed_hosts`;
* E2B's create body: `allow_internet_access` + `network.allowOut` / `network.denyOut`;
* E2B's `PUT /sandboxes/{id}/network` (`SandboxNetworkUpdateConfig`), the same lists.

All of them become an `EgressPolicy`. corral's default is *no egress*: a sandbox reaches nothing
unless a rule grants it. Precedence follows E2B: an allow rule beats a deny rule.

What a destination may be, in order (the first match wins; `destination_allowed` is the
reference implementation, the nftables rules in `nftables.py` mirror it):

1. the *floor* (loopback, 0/8, multicast, reserved, the sandbox pool i.e. every other sandbox,
   plus the operator's `forbidden` list) is never reachable, whatever the policy says; the host's
   own addresses are refused separately (the input hook: only DNS to the sandbox's gateway);
2. an allow CIDR that lies inside a *guarded* range (private, CGNAT, link-local incl.
   169.254.169.254) opens that part of it; a broad CIDR such as 0.0.0.0/0 does not, so
   "allow everything" never silently includes the metadata endpoint or the LAN;
3. the rest of the guarded ranges are refused;
4. other allow CIDRs and addresses pinned by the DNS resolver for an allowed name are reachable;
5. with `internet=True`, everything else except the deny CIDRs is reachable; otherwise nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from corral.errors import InvalidRequest

MAX_RULES = 512          # per list; every entry becomes nft set elements
MAX_BUDGET = 1 << 62

# Never reachable from a sandbox, whatever its policy (the sandbox pool is added by the manager).
FLOOR_RANGES: tuple[IPv4Network, ...] = tuple(IPv4Network(n) for n in (
    "0.0.0.0/8",         # "this network"
    "127.0.0.0/8",       # loopback
    "224.0.0.0/4",       # multicast
    "240.0.0.0/4",       # reserved + limited broadcast
))

# Refused unless an allow CIDR *inside* one of them says otherwise.
GUARDED_RANGES: tuple[IPv4Network, ...] = tuple(IPv4Network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",   # RFC 1918
    "100.64.0.0/10",                                   # carrier-grade NAT (cloud internal networks)
    "169.254.0.0/16",                                  # link-local, cloud metadata (169.254.169.254)
    "192.0.0.0/24",                                    # IETF protocol assignments
))

ALL_TRAFFIC = IPv4Network("0.0.0.0/0")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class NetworkPolicyError(InvalidRequest):
    """A network rule that cannot be honoured (a 400); the message says which entry and why."""


@dataclass(frozen=True)
class DomainRule:
    """An exact name (`api.example.com`) or every name below one (`*.example.com`).

    A wildcard does not match the bare domain itself, as with TLS certificates.
    """

    name: str
    wildcard: bool = False

    def matches(self, qname: str) -> bool:
        q = qname.rstrip(".").lower()
        if self.wildcard:
            return q.endswith("." + self.name)
        return q == self.name

    def __str__(self) -> str:
        return ("*." if self.wildcard else "") + self.name


@dataclass(frozen=True)
class EgressPolicy:
    internet: bool = False
    allow_nets: tuple[IPv4Network, ...] = ()
    allow_domains: tuple[DomainRule, ...] = ()
    deny_nets: tuple[IPv4Network, ...] = ()
    byte_budget: int | None = None   # bytes in + out through the sandbox's uplink; None = unlimited

    @property
    def grants_egress(self) -> bool:
        """False means the sandbox needs no network attachment at all (lo only)."""
        return self.internet or bool(self.allow_nets) or bool(self.allow_domains)

    def allows_name(self, qname: str) -> bool:
        """Whether the resolver may answer this name at all."""
        return self.internet or self.pins_name(qname)

    def pins_name(self, qname: str) -> bool:
        """Whether answers for this name become reachable addresses (an allow rule names it)."""
        return any(rule.matches(qname) for rule in self.allow_domains)

    @property
    def checks_names(self) -> bool:
        """Domain-based without open internet: HTTP(S) to pinned addresses must name an allowed site."""
        return bool(self.allow_domains) and not self.internet

    @property
    def guarded_allows(self) -> tuple[IPv4Network, ...]:
        return tuple(n for n in self.allow_nets if _inside_guarded(n))

    @property
    def open_allows(self) -> tuple[IPv4Network, ...]:
        return tuple(n for n in self.allow_nets if not _inside_guarded(n))

    def to_json(self) -> dict[str, Any]:
        return {
            "internet": self.internet,
            "allow_nets": [str(n) for n in self.allow_nets],
            "allow_domains": [str(d) for d in self.allow_domains],
            "deny_nets": [str(n) for n in self.deny_nets],
            "byte_budget": self.byte_budget,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EgressPolicy:
        return cls(
            internet=bool(data.get("internet", False)),
            allow_nets=tuple(IPv4Network(n) for n in data.get("allow_nets", ())),
            allow_domains=tuple(parse_domain(d, "allow_domains") for d in data.get("allow_domains", ())),
            deny_nets=tuple(IPv4Network(n) for n in data.get("deny_nets", ())),
            byte_budget=data.get("byte_budget"),
        )


NO_EGRESS = EgressPolicy()


def _inside_guarded(net: IPv4Network) -> bool:
    return any(net.subnet_of(g) for g in GUARDED_RANGES)


def in_ranges(addr: IPv4Address, ranges: Iterable[IPv4Network]) -> bool:
    return any(addr in n for n in ranges)


def destination_allowed(policy: EgressPolicy, addr: IPv4Address, *, floor: Sequence[IPv4Network],
                        pinned: bool = False) -> bool:
    """The reference decision for one destination address (see the module docstring)."""
    if in_ranges(addr, floor):
        return False
    if in_ranges(addr, policy.guarded_allows):
        return True
    if in_ranges(addr, GUARDED_RANGES):
        return False
    if in_ranges(addr, policy.open_allows) or pinned:
        return True
    return policy.internet and not in_ranges(addr, policy.deny_nets)


def answer_acceptable(policy: EgressPolicy, addr: IPv4Address, *, floor: Sequence[IPv4Network]) -> bool:
    """DNS-rebinding guard: may an answer for an allowed name point here?

    Loopback, the pool (other sandboxes, gateways) and guarded ranges are refused unless an
    allow CIDR inside a guarded range covers the address.
    """
    if in_ranges(addr, floor):
        return False
    if in_ranges(addr, GUARDED_RANGES):
        return in_ranges(addr, policy.guarded_allows)
    return True


# ---------------------------------------------------------------------------------- parsing

def parse_domain(entry: str, where: str) -> DomainRule:
    text = entry.strip().lower()
    if not text:
        raise NetworkPolicyError(f"{where}: empty entry")
    if "://" in text or "/" in text:
        raise NetworkPolicyError(f"{where}: {entry!r} is not a host name (give the name only, e.g. 'api.example.com')")
    if ":" in text:
        raise NetworkPolicyError(f"{where}: {entry!r}: ports are not part of a rule; a domain rule covers every port")
    if not text.isascii():
        raise NetworkPolicyError(f"{where}: {entry!r}: internationalised names must be given in punycode (xn--...)")
    if text == "*":
        raise NetworkPolicyError(f"{where}: '*' is not a rule; use allow_internet_access / allowOut 0.0.0.0/0 for everything")
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    name = name.rstrip(".")
    if "*" in name:
        raise NetworkPolicyError(f"{where}: {entry!r}: a wildcard is only allowed as the first label ('*.example.com')")
    if len(name) > 253:
        raise NetworkPolicyError(f"{where}: {entry!r}: name longer than 253 characters")
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise NetworkPolicyError(f"{where}: {entry!r} is not a valid host name")
    if wildcard and len(labels) < 2:
        raise NetworkPolicyError(f"{where}: {entry!r}: a wildcard needs a domain of at least two labels")
    if labels[-1].isdigit():
        raise NetworkPolicyError(f"{where}: {entry!r} is neither a valid address nor a host name")
    return DomainRule(name=name, wildcard=wildcard)


def parse_net(entry: str, where: str) -> IPv4Network | None:
    """An IPv4 address or CIDR, or None when the entry is not address-shaped (a domain)."""
    text = entry.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        if re.fullmatch(r"[0-9./]+", text):
            raise NetworkPolicyError(f"{where}: {entry!r} is not a valid IPv4 address or CIDR") from None
        if ":" in text and re.fullmatch(r"[0-9a-fA-F:./]+", text):
            raise NetworkPolicyError(f"{where}: {entry!r}: IPv6 is not supported (sandboxes have IPv4 egress only)") from None
        return None
    if net.version != 4:
        raise NetworkPolicyError(f"{where}: {entry!r}: IPv6 is not supported (sandboxes have IPv4 egress only)")
    return net  # type: ignore[return-value]


def _as_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise NetworkPolicyError(f"{where}: expected a list of strings")
    if len(value) > MAX_RULES:
        raise NetworkPolicyError(f"{where}: at most {MAX_RULES} entries")
    for v in value:
        if not isinstance(v, str):
            raise NetworkPolicyError(f"{where}: every entry must be a string, got {v!r}")
    return list(value)


def _dedupe(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


def _parse_budget(byte_budget: Any) -> int | None:
    if byte_budget is None:
        return None
    if isinstance(byte_budget, bool) or not isinstance(byte_budget, int) or not 0 < byte_budget <= MAX_BUDGET:
        raise NetworkPolicyError(f"byte_budget: expected a positive number of bytes, got {byte_budget!r}")
    return byte_budget


def _parse_allow(entries: list[str], where: str) -> tuple[tuple[IPv4Network, ...], tuple[DomainRule, ...]]:
    nets: list[IPv4Network] = []
    domains: list[DomainRule] = []
    for e in entries:
        net = parse_net(e, where)
        if net is not None:
            nets.append(net)
        else:
            domains.append(parse_domain(e, where))
    return _dedupe(nets), _dedupe(domains)


def _parse_deny(entries: list[str], where: str) -> tuple[IPv4Network, ...]:
    nets = []
    for e in entries:
        net = parse_net(e, where)
        if net is None:
            raise NetworkPolicyError(f"{where}: {e!r}: deny rules take IP addresses or CIDRs only, not domains")
        nets.append(net)
    return _dedupe(nets)


_NETWORK_KEYS = {"allowOut": "allow", "allow_out": "allow", "denyOut": "deny", "deny_out": "deny"}
# Inbound-traffic settings of E2B's network object; they do not concern egress.
_IGNORED_KEYS = {"allowPublicTraffic", "allow_public_traffic", "maskRequestHost", "mask_request_host"}


def from_e2b(allow_internet_access: bool | None = None, network: Mapping[str, Any] | None = None, *,
             default_internet: bool = False, byte_budget: int | None = None) -> EgressPolicy:
    """E2B's create fields (or an update body as `network`).

    `allow_internet_access=False` equals `denyOut: ["0.0.0.0/0"]` as on E2B. When it is not given,
    the server's default applies (`default_internet`; corral ships with False).
    """
    if allow_internet_access is not None and not isinstance(allow_internet_access, bool):
        raise NetworkPolicyError("allow_internet_access: expected true or false")
    network = network or {}
    if not isinstance(network, Mapping):
        raise NetworkPolicyError("network: expected an object with allowOut / denyOut")
    lists: dict[str, list[str]] = {"allow": [], "deny": []}
    for key, value in network.items():
        if key in _IGNORED_KEYS:
            continue
        if key not in _NETWORK_KEYS:
            raise NetworkPolicyError(f"network: unknown field {key!r} (expected allowOut, denyOut)")
        lists[_NETWORK_KEYS[key]] += _as_list(value, f"network.{key}")
    allow_nets, allow_domains = _parse_allow(lists["allow"], "network.allowOut")
    deny_nets = _parse_deny(lists["deny"], "network.denyOut")
    internet = default_internet if allow_internet_access is None else allow_internet_access
    if ALL_TRAFFIC in deny_nets:
        internet = False
    if not internet:
        deny_nets = ()     # everything not allowed is refused anyway
    if ALL_TRAFFIC in allow_nets:
        # allowOut 0.0.0.0/0 is E2B's way of saying "everything": the same as internet access.
        internet = True
        allow_nets = tuple(n for n in allow_nets if n != ALL_TRAFFIC)
    return EgressPolicy(internet=internet, allow_nets=allow_nets, allow_domains=allow_domains,
                        deny_nets=deny_nets, byte_budget=_parse_budget(byte_budget))


def from_spec(internet_access: bool = False, allowed_hosts: Sequence[str] | None = None, *,
              byte_budget: int | None = None) -> EgressPolicy:
    """The product spec's `SandboxSecurityConfig` / `e2b.toml [template.network]`.

    `internet_access` with no `allowed_hosts` opens the internet; with hosts it allows only them.
    """
    if not isinstance(internet_access, bool):
        raise NetworkPolicyError("internet_access: expected true or false")
    hosts = _as_list(allowed_hosts, "allowed_hosts")
    if hosts and not internet_access:
        raise NetworkPolicyError("allowed_hosts needs internet_access = true")
    allow_nets, allow_domains = _parse_allow(hosts, "allowed_hosts")
    return EgressPolicy(internet=internet_access and not hosts, allow_nets=allow_nets,
                        allow_domains=allow_domains, byte_budget=_parse_budget(byte_budget))


def narrow(request: EgressPolicy, ceiling: EgressPolicy) -> EgressPolicy:
    """A request may narrow what the template/server grants, never widen it.

    Internet survives only if both grant it; allow rules of the request survive if the ceiling
    grants internet or lists the same rule; the ceiling's deny CIDRs always stay; the smaller
    budget wins.
    """
    if ceiling.internet:
        nets, domains = request.allow_nets, request.allow_domains
    else:
        nets = tuple(n for n in request.allow_nets if any(n.subnet_of(c) for c in ceiling.allow_nets))
        domains = tuple(d for d in request.allow_domains if d in ceiling.allow_domains
                        or (not d.wildcard and any(c.matches(d.name) for c in ceiling.allow_domains))
                        or (d.wildcard and any(c.wildcard and (d.name == c.name or d.name.endswith("." + c.name))
                                               for c in ceiling.allow_domains)))
    if request.internet and not ceiling.internet:
        nets, domains = _dedupe(nets + ceiling.allow_nets), _dedupe(domains + ceiling.allow_domains)
    # allow beats deny, so a request's allow must not reopen what the ceiling denies
    nets = tuple(n for n in nets if not any(n.overlaps(d) for d in ceiling.deny_nets))
    budgets = [b for b in (request.byte_budget, ceiling.byte_budget) if b is not None]
    return EgressPolicy(internet=request.internet and ceiling.internet, allow_nets=nets, allow_domains=domains,
                        deny_nets=_dedupe(request.deny_nets + ceiling.deny_nets),
                        byte_budget=min(budgets) if budgets else None)
