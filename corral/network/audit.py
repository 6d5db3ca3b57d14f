"""What a sandbox did on the network: the resolver's record of names, and the report that joins
it with the kernel's counters.

The DNS record is bounded (a sandbox asking for a million random names cannot grow the server's
memory or its state file): past `MAX_NAMES` distinct names, further new names are only counted.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any, TypedDict

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


class ProxyLog:
    """What the egress proxy decided, per (address, port, protocol, name, reason): bounded like DnsLog."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.entries: dict[tuple[str, int, str, str, str], int] = {}
        for e in data.get("entries") or []:
            try:
                key = (str(e["ip"]), int(e["port"]), str(e["protocol"] or ""), str(e["name"] or ""), str(e["reason"]))
                self.entries[key] = int(e["count"])
            except (KeyError, TypeError, ValueError):
                continue     # a damaged entry of a state file must not stop re-adoption
            if len(self.entries) >= MAX_NAMES:
                break
        self.dropped = int(data.get("dropped", 0))
        self.dirty = False

    def note(self, ip: IPv4Address, port: int, protocol: str | None, name: str | None, reason: str) -> None:
        key = (str(ip), port, protocol or "", name or "", reason)
        if key not in self.entries and len(self.entries) >= MAX_NAMES:
            self.dropped += 1
            return
        self.entries[key] = self.entries.get(key, 0) + 1
        self.dirty = True

    def to_json(self) -> dict[str, Any]:
        return {"entries": [{"ip": ip, "port": port, "protocol": proto or None, "name": name or None,
                             "reason": reason, "count": n}
                            for (ip, port, proto, name, reason), n in self.entries.items()],
                "dropped": self.dropped}

    def report(self) -> dict[str, Any]:
        rows = self.to_json()["entries"]
        return {"allowed": [{k: v for k, v in r.items() if k != "reason"} for r in rows if not r["reason"]],
                "denied": [r for r in rows if r["reason"]],
                "not_recorded": self.dropped}


class HostTraffic(TypedDict):
    ip: str
    names: list[str]          # the allowed names whose answers pinned this address
    bytes_out: int
    packets_out: int
    bytes_in: int
    packets_in: int


class DeniedAttempt(TypedDict):
    ip: str
    protocol: str | None
    port: int | None
    packets: int


class BudgetUse(TypedDict):
    limit: int
    used: int
    exhausted: bool
    refused_packets: int


class AuditReport(TypedDict):
    """What `NetworkManager.audit` returns; the API serves it as JSON as it is."""

    sandbox_id: str
    address: str
    gateway: str
    policy: dict[str, Any]                 # EgressPolicy.to_json()
    bytes_out: int
    packets_out: int
    bytes_in: int
    packets_in: int
    denied_attempts: int
    denied: list[DeniedAttempt]
    hosts: list[HostTraffic]
    dns: list[dict[str, Any]]              # one entry per name asked: queries, allowed, addresses, reason
    dns_names_not_recorded: int
    pinned: list[dict[str, Any]]           # ip, expires_in
    budget: BudgetUse | None
    names_checked: dict[str, Any]          # ProxyLog.report(): allowed, denied, not_recorded


def build_report(sandbox_id: str, address: str, gateway: str, policy: dict[str, Any],
                 table: dict[str, Any], dns: DnsLog, proxy: ProxyLog | None = None) -> AuditReport:
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
        "names_checked": (proxy or ProxyLog()).report(),
    }
