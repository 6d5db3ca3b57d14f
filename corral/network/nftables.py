"""nftables rule sets: one global table for NAT and guards, one table per sandbox for its policy.

Per-sandbox tables (`inet corral-<id>`) make a sandbox's rules, counters, pinned addresses and
budget one object that is created and removed atomically (`nft -f`), and that a restarted
server finds by name. Each table's base chains act only on that sandbox's host-side veth and
accept everything else (policy accept), so tables compose: a packet is refused as soon as one
table refuses it.

Every packet a sandbox sends is judged (not just the first of a connection), so taking a rule
away cuts existing connections too; a pinned address stays pinned while traffic to it flows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from .addressing import Slot
from .egress_policy import GUARDED_RANGES, EgressPolicy

GLOBAL_TABLE = "corral"
REJECT = "reject with icmpx admin-prohibited"
POLICY_SETS = ("floor", "guarded", "guarded_allow", "open_allow", "deny_nets")
_CHAINS = ("forward_hook", "input_hook", "output_hook", "dns_redirect", "egress", "permit", "exhausted", "refuse",
           "ingress", "local_in", "proxied_out", "proxied_in")
PROXIED_PORTS = "{ 80, 443 }"
_OUTPUT_HOOK = "type filter hook output priority filter; policy accept;"


@dataclass(frozen=True)
class CarriedUse:
    """What a sandbox's earlier network used, for a table made again after a filesystem-mode
    resume (the old one ended with the sandbox's network namespace): its budget keeps counting
    from where it was, and its byte counters go on growing, instead of both starting at zero."""

    budget_used: int = 0
    bytes_out: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    packets_in: int = 0

    @classmethod
    def from_table(cls, parsed: dict[str, Any]) -> "CarriedUse":
        """From `parse_table_json` of the live table."""
        c = parsed.get("counters", {})
        quota = parsed.get("quota") or {}
        return cls(int(quota.get("used", 0)), c.get("bytes_out", {}).get("bytes", 0),
                   c.get("bytes_out", {}).get("packets", 0), c.get("bytes_in", {}).get("bytes", 0),
                   c.get("bytes_in", {}).get("packets", 0))

    def to_json(self) -> dict[str, int]:
        return {"budget_used": self.budget_used, "bytes_out": self.bytes_out, "packets_out": self.packets_out,
                "bytes_in": self.bytes_in, "packets_in": self.packets_in}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CarriedUse":
        values = {k: data.get(k, 0) for k in ("budget_used", "bytes_out", "packets_out", "bytes_in", "packets_in")}
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values.values()):
            raise ValueError(f"carried network use: expected counts >= 0, got {data!r}")
        return cls(**values)


@dataclass(frozen=True)
class SandboxTable:
    sandbox_id: str
    table: str
    host_if: str
    slot: Slot
    policy: EgressPolicy
    floor: tuple[IPv4Network, ...]
    pin_idle: int = 600          # seconds a pinned address stays without traffic
    comment: str = ""
    proxy_port: int = 0          # the egress proxy's port on the gateway (0: no name checks)

    def set_elements(self) -> dict[str, tuple[IPv4Network, ...]]:
        p = self.policy
        return {"floor": self.floor, "guarded": GUARDED_RANGES, "guarded_allow": p.guarded_allows,
                "open_allow": p.open_allows, "deny_nets": p.deny_nets if p.internet else ()}


def _elements(nets: Iterable[IPv4Network]) -> str:
    return ", ".join(str(n) if n.prefixlen < 32 else str(n.network_address) for n in nets)


def _sets(t: SandboxTable) -> list[str]:
    out = []
    for name, nets in t.set_elements().items():
        elems = _elements(nets)
        body = "type ipv4_addr; flags interval; auto-merge;" + (f" elements = {{ {elems} }};" if elems else "")
        out.append(f"  set {name} {{ {body} }}")
    out += [
        f"  set pinned {{ type ipv4_addr; size 65535; flags dynamic,timeout; timeout {t.pin_idle}s; }}",
        "  set out_dests { type ipv4_addr; size 4096; flags dynamic; counter; }",
        "  set in_srcs { type ipv4_addr; size 4096; flags dynamic; counter; }",
        "  set denials { type ipv4_addr . inet_proto . inet_service; size 4096; flags dynamic; counter; }",
    ]
    return out


def _chains(t: SandboxTable) -> list[str]:
    h, addr, gw = t.host_if, t.slot.address, t.slot.gateway
    budget = t.policy.byte_budget is not None
    egress = [
        "meta nfproto ipv6 drop",
        f"ip saddr != {addr} drop",
        "ip daddr @floor goto refuse",
        "ip daddr @guarded_allow goto permit",
        "ip daddr @guarded goto refuse",
        "ip daddr @open_allow goto permit",
        "ip daddr @pinned update @pinned { ip daddr } goto permit",
    ]
    if t.policy.internet:
        egress += ["ip daddr @deny_nets goto refuse", "goto permit"]
    else:
        egress += ["goto refuse"]
    permit = (['quota name "budget" goto exhausted'] if budget else []) + [
        "add @out_dests { ip daddr }", 'counter name "bytes_out" accept']
    ingress = ['ct state established,related quota name "budget" drop'] if budget else []
    ingress += ['ct state established,related add @in_srcs { ip saddr } counter name "bytes_in" accept', "drop"]
    record_denial = "meta l4proto { tcp, udp } add @denials { ip daddr . meta l4proto . th dport }"
    port = t.proxy_port
    prerouting = [f'iifname "{h}" udp dport 53 dnat ip to {gw}:53']
    local_in = ["meta nfproto ipv6 drop", f"ip saddr {addr} ip daddr {gw} udp dport 53 accept"]
    output: list[str] = []
    if port:
        if t.policy.checks_names:
            # HTTP(S) to a pinned address goes through the proxy, which checks SNI/Host; CIDR
            # rules need no name and keep the direct path. Only the first packet of a
            # connection sees this chain, so a policy update re-routes new connections only.
            prerouting.insert(0, f'iifname "{h}" ip saddr {addr} tcp dport {PROXIED_PORTS} ip daddr @pinned '
                                 f'ip daddr != @open_allow ip daddr != @guarded_allow dnat ip to {gw}:{port}')
        # proxied traffic is local to the host: count it and apply the budget on this leg
        local_in.append(f"ip saddr {addr} ip daddr {gw} tcp dport {port} ct status dnat goto proxied_out")
        output.append(f'oifname "{h}" ip saddr {gw} tcp sport {port} ct status dnat goto proxied_in')
    local_in += [record_denial, 'counter name "denied" ' + REJECT]
    proxied_out = (['quota name "budget" goto exhausted'] if budget else []) + [
        # traffic keeps a pin alive, as on the forward path (never re-adds a removed one)
        "ct original ip daddr @pinned update @pinned { ct original ip daddr }",
        "add @out_dests { ct original ip daddr }", 'counter name "bytes_out" accept']
    proxied_in = (['quota name "budget" drop'] if budget else []) + [
        "add @in_srcs { ct original ip daddr }", 'counter name "bytes_in" accept']
    chains: dict[str, tuple[str | None, list[str]]] = {
        "forward_hook": ("type filter hook forward priority filter; policy accept;",
                         [f'iifname "{h}" jump egress', f'oifname "{h}" jump ingress']),
        "input_hook": ("type filter hook input priority filter; policy accept;",
                       [f'iifname "{h}" jump local_in']),
        "output_hook": (_OUTPUT_HOOK, output),
        "dns_redirect": ("type nat hook prerouting priority dstnat; policy accept;", prerouting),
        "egress": (None, egress),
        "permit": (None, permit),
        "exhausted": (None, ['counter name "over_budget" ' + REJECT]),
        "refuse": (None, [record_denial, 'counter name "denied" ' + REJECT]),
        "ingress": (None, ingress),
        "local_in": (None, local_in),
        "proxied_out": (None, proxied_out),
        "proxied_in": (None, proxied_in),
    }
    out = []
    for name in _CHAINS:
        head, rules = chains[name]
        lines = ([f"    {head}"] if head else []) + [f"    {r}" for r in rules]
        out.append(f"  chain {name} {{\n" + "\n".join(lines) + "\n  }")
    return out


def _quota(t: SandboxTable, used: int) -> list[str]:
    if t.policy.byte_budget is None:
        return []
    return [f"  quota budget {{ over {t.policy.byte_budget} bytes used {used} bytes }}"]


def render_table(t: SandboxTable, carried: CarriedUse | None = None) -> str:
    """The whole table; replaces any table of the same name in the same transaction. `carried`:
    the use of the sandbox's previous table, which its counters and budget start from."""
    c = carried or CarriedUse()
    head = [f"table inet {t.table} {{}}", f"delete table inet {t.table}"]
    body = [f"table inet {t.table} {{", f'  comment "{t.comment or "corral sandbox " + t.sandbox_id}"']
    body += [f'  counter bytes_out {{ packets {int(c.packets_out)} bytes {int(c.bytes_out)} }}',
             f'  counter bytes_in {{ packets {int(c.packets_in)} bytes {int(c.bytes_in)} }}',
             '  counter denied {}', '  counter over_budget {}']
    body += _quota(t, int(c.budget_used)) + _sets(t) + _chains(t) + ["}"]
    return "\n".join(head + body) + "\n"


def render_update(t: SandboxTable, *, had_budget: bool, budget_used: int, drop_pins: Iterable[IPv4Address]) -> str:
    """New rules for an existing table, keeping its counters, pinned addresses and budget use."""
    tn = t.table
    # chains added after the first release: created (a no-op when present) so that a table made by
    # an older version, re-adopted after an upgrade, can be updated too
    lines = [f"add chain inet {tn} output_hook {{ {_OUTPUT_HOOK} }}",
             f"add chain inet {tn} proxied_out", f"add chain inet {tn} proxied_in"]
    lines += [f"flush chain inet {tn} {c}" for c in _CHAINS]
    if had_budget:
        lines.append(f"delete quota inet {tn} budget")
    for name, nets in t.set_elements().items():
        lines.append(f"flush set inet {tn} {name}")
        if nets:
            lines.append(f"add element inet {tn} {name} {{ {_elements(nets)} }}")
    pins = list(drop_pins)
    if pins:
        lines.append(f"delete element inet {tn} pinned {{ {', '.join(map(str, pins))} }}")
    body = [f"table inet {tn} {{"] + _quota(t, budget_used) + _chains(t) + ["}"]
    return "\n".join(lines + body) + "\n"


def render_pin(table: str, addrs: Iterable[IPv4Address], timeout: int) -> str:
    elems = ", ".join(f"{a} timeout {timeout}s" for a in addrs)
    return f"add element inet {table} pinned {{ {elems} }}\n"


def render_global(pool: IPv4Network, host_prefix: str, table: str = GLOBAL_TABLE) -> str:
    """NAT for the pool, and two guards no sandbox table can loosen: sandboxes never talk to
    each other, and nothing outside opens a connection into a sandbox."""
    g = table
    return "\n".join([
        f"table ip {g} {{}}", f"delete table ip {g}",
        f"table ip {g} {{",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        f'    ip saddr {pool} oifname != "{host_prefix}*" masquerade',
        "  }",
        "  chain forward_guard {",
        "    type filter hook forward priority filter - 10; policy accept;",
        f'    iifname "{host_prefix}*" oifname "{host_prefix}*" reject with icmp type admin-prohibited',
        f'    oifname "{host_prefix}*" ct state established,related accept',
        f'    oifname "{host_prefix}*" drop',
        "  }",
        "}",
    ]) + "\n"


# ---------------------------------------------------------------------------- reading back

def parse_table_json(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters, quota and dynamic-set elements of one table, from `nft -j list table`."""
    counters: dict[str, dict[str, int]] = {}
    quota: dict[str, int] | None = None
    sets: dict[str, list[dict[str, Any]]] = {}
    for obj in objs:
        if "counter" in obj:
            c = obj["counter"]
            counters[c["name"]] = {"packets": int(c.get("packets", 0)), "bytes": int(c.get("bytes", 0))}
        elif "quota" in obj:
            q = obj["quota"]
            quota = {"limit": int(q.get("bytes", 0)), "used": int(q.get("used", 0))}
        elif "set" in obj:
            s = obj["set"]
            sets[s["name"]] = [_element(e) for e in s.get("elem", [])]
    return {"counters": counters, "quota": quota, "sets": sets}


def _element(e: Any) -> dict[str, Any]:
    if isinstance(e, dict) and "elem" in e:
        inner = e["elem"]
        val = inner.get("val")
        out: dict[str, Any] = {"value": val["concat"] if isinstance(val, dict) and "concat" in val else val}
        if "counter" in inner:
            out["packets"] = int(inner["counter"].get("packets", 0))
            out["bytes"] = int(inner["counter"].get("bytes", 0))
        if "expires" in inner:
            out["expires"] = inner["expires"]
        return out
    if isinstance(e, dict) and "prefix" in e:
        return {"value": f'{e["prefix"]["addr"]}/{e["prefix"]["len"]}'}
    return {"value": e}
