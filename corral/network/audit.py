"""What a sandbox did on the network: the resolver's record of names, and the report that joins
it with the kernel's counters.

The DNS record is bounded (a sandbox asking for a million random names cannot grow the server's
memory or its state file): past `MAX_NAMES` distinct names, further new names are only counted.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

MAX_NAMES = 512
MAX_ADDRS_PER_NAME = 32


class DnsLog:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.names: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (data.get("names") or {}).items()}
        self.dropped_names = int(data.get("dropped_names", 0))
        self.dirty = False

    def note(self, name: str, *, allowed: bool, addresses: list[IPv4Address] = (), reason: str = "") -> None:  # type: ignore[assignment]
        entry = self.names.get(name)
        if entry is None:
            if len(self.names) >= MAX_NAMES:
                self.dropped_names += 1
                return
            entry = self.names[name] = {"queries": 0, "allowed": allowed, "addresses": [], "reason": reason}
            self.dirty = True
        entry["queries"] += 1
        if entry["allowed"] != allowed or entry["reason"] != reason:
            entry["allowed"], entry["reason"] = allowed, reason
            self.dirty = True
        for a in addresses:
            s = str(a)
            if s not in entry["addresses"] and len(entry["addresses"]) < MAX_ADDRS_PER_NAME:
                entry["addresses"].append(s)
                self.dirty = True

    def names_for(self, ip: str) -> list[str]:
        return sorted(n for n, e in self.names.items() if ip in e["addresses"])

    def to_json(self) -> dict[str, Any]:
        return {"names": self.names, "dropped_names": self.dropped_names}


def build_report(sandbox_id: str, address: str, gateway: str, policy: dict[str, Any],
                 table: dict[str, Any], dns: DnsLog) -> dict[str, Any]:
    counters = table["counters"]
    sets = table["sets"]

    def c(name: str, key: str) -> int:
        return counters.get(name, {}).get(key, 0)

    hosts: dict[str, dict[str, Any]] = {}
    for e in sets.get("out_dests", []):
        h = hosts.setdefault(str(e["value"]), {"ip": str(e["value"])})
        h["bytes_out"], h["packets_out"] = e.get("bytes", 0), e.get("packets", 0)
    for e in sets.get("in_srcs", []):
        h = hosts.setdefault(str(e["value"]), {"ip": str(e["value"])})
        h["bytes_in"], h["packets_in"] = e.get("bytes", 0), e.get("packets", 0)
    for h in hosts.values():
        for k in ("bytes_out", "packets_out", "bytes_in", "packets_in"):
            h.setdefault(k, 0)
        h["names"] = dns.names_for(h["ip"])
    denied = []
    for e in sets.get("denials", []):
        v = e["value"]
        ip, proto, port = (v + [None, None, None])[:3] if isinstance(v, list) else (v, None, None)
        denied.append({"ip": str(ip), "protocol": proto, "port": port, "packets": e.get("packets", 0)})
    quota = table.get("quota")
    budget = None
    if quota is not None:
        budget = {"limit": quota["limit"], "used": quota["used"], "exhausted": quota["used"] >= quota["limit"],
                  "refused_packets": c("over_budget", "packets")}
    return {
        "sandbox_id": sandbox_id,
        "address": address,
        "gateway": gateway,
        "policy": policy,
        "bytes_out": c("bytes_out", "bytes"), "packets_out": c("bytes_out", "packets"),
        "bytes_in": c("bytes_in", "bytes"), "packets_in": c("bytes_in", "packets"),
        "denied_attempts": c("denied", "packets"),
        "denied": sorted(denied, key=lambda d: (-d["packets"], d["ip"])),
        "hosts": sorted(hosts.values(), key=lambda h: -(h["bytes_out"] + h["bytes_in"])),
        "dns": [{"name": n, **e} for n, e in sorted(dns.names.items())],
        "dns_names_not_recorded": dns.dropped_names,
        "pinned": [{"ip": str(e["value"]), "expires_in": e.get("expires")} for e in sets.get("pinned", [])],
        "budget": budget,
    }
