"""The resolver's decisions, with the upstream replaced by a table (no sockets)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from corral.network import dns_wire as w
from corral.network.audit import DnsLog
from corral.network.egress_policy import FLOOR_RANGES, from_e2b
from corral.network.resolver import Resolver, UpstreamAnswer

FLOOR = FLOOR_RANGES + (IPv4Network("10.201.0.0/16"),)


class TableResolver(Resolver):
    def __init__(self, policy, answers: dict[str, list[str]]) -> None:
        self.asked: list[str] = []
        self.pins: list[tuple[str, list[IPv4Address], int]] = []
        self.log = DnsLog()

        async def pin(sid, name, addrs, ttl):
            self.pins.append((name, addrs, ttl))

        super().__init__(netns=None, upstreams=[("198.18.0.53", 53)], policy_for=lambda sid: policy,
                         log_for=lambda sid: self.log, pinner=pin, floor=FLOOR)
        self.answers = answers

    async def ask_upstream(self, name: str) -> UpstreamAnswer | None:
        self.asked.append(name)
        if name not in self.answers:
            return UpstreamAnswer(w.RCODE_NXDOMAIN, [], 0)
        return UpstreamAnswer(w.RCODE_NOERROR, [IPv4Address(a) for a in self.answers[name]], 30)


async def ask(r: Resolver, name: str, qtype: int = w.TYPE_A) -> w.DnsMessage:
    reply = await r.handle("sbx", w.build_query(99, name, qtype))
    assert reply is not None
    return w.parse_message(reply, with_answers=True)


async def test_only_allowed_names_go_upstream_and_get_pinned() -> None:
    r = TableResolver(from_e2b(False, {"allowOut": ["api.x.test"]}), {"api.x.test": ["198.18.1.10"],
                                                                      "b.x.test": ["198.18.1.11"]})
    m = await ask(r, "API.x.test")
    assert m.id == 99 and m.rcode == 0 and [a.rdata for a in m.answers] == [IPv4Address("198.18.1.10")]
    assert r.pins == [("api.x.test", [IPv4Address("198.18.1.10")], 30)]
    assert (await ask(r, "b.x.test")).rcode == w.RCODE_NXDOMAIN
    assert r.asked == ["api.x.test"]
    assert r.log.names["b.x.test"]["allowed"] is False


async def test_aaaa_and_other_types_get_no_data() -> None:
    r = TableResolver(from_e2b(False, {"allowOut": ["api.x.test"]}), {"api.x.test": ["198.18.1.10"]})
    for qtype in (w.TYPE_AAAA, 16, 65):
        m = await ask(r, "api.x.test", qtype)
        assert m.rcode == 0 and m.answers == ()
    assert r.asked == [] and r.pins == []


async def test_rebinding_answers_are_dropped() -> None:
    r = TableResolver(from_e2b(False, {"allowOut": ["*.x.test"]}),
                      {"a.x.test": ["127.0.0.1"], "b.x.test": ["10.201.0.6", "198.18.1.12"],
                       "c.x.test": ["169.254.169.254"]})
    assert (await ask(r, "a.x.test")).rcode == w.RCODE_NXDOMAIN
    assert (await ask(r, "c.x.test")).rcode == w.RCODE_NXDOMAIN
    m = await ask(r, "b.x.test")
    assert [a.rdata for a in m.answers] == [IPv4Address("198.18.1.12")]
    assert r.pins == [("b.x.test", [IPv4Address("198.18.1.12")], 30)]


async def test_open_internet_resolves_without_pinning() -> None:
    r = TableResolver(from_e2b(True, None), {"any.test": ["198.18.1.13"]})
    assert [a.rdata for a in (await ask(r, "any.test")).answers] == [IPv4Address("198.18.1.13")]
    assert r.pins == []


async def test_hostile_packets() -> None:
    r = TableResolver(from_e2b(True, None), {})
    assert await r.handle("sbx", b"\x00") is None                       # garbage: no answer
    q = bytearray(w.build_query(5, "a.test"))
    q[2] |= 0x80                                                          # a "response"
    assert await r.handle("sbx", bytes(q)) is None
    q = bytearray(w.build_query(5, "a.test"))
    q[2] |= 0x10                                                          # opcode 2 (status)
    assert w.parse_message(await r.handle("sbx", bytes(q))).rcode == w.RCODE_NOTIMP
    q = bytearray(w.build_query(5, "a.test"))
    q[-1] = 3                                                             # class CHAOS
    assert w.parse_message(await r.handle("sbx", bytes(q))).rcode == w.RCODE_REFUSED
    assert r.asked == []


async def test_unknown_sandbox_gets_nothing() -> None:
    r = TableResolver(None, {"a.test": ["198.18.1.1"]})
    assert (await ask(r, "a.test")).rcode == w.RCODE_NXDOMAIN and r.asked == []


def test_dns_log_is_bounded() -> None:
    from corral.network.audit import MAX_NAMES
    log = DnsLog()
    for i in range(MAX_NAMES + 10):
        log.note(f"n{i}.test", allowed=False)
    assert len(log.names) == MAX_NAMES and log.dropped_names == 10
    assert DnsLog(log.to_json()).names == log.names


def test_system_resolvers(tmp_path) -> None:
    from corral.network import system_resolvers
    conf = tmp_path / "resolv.conf"
    conf.write_text("# x\nnameserver 127.0.0.53\nnameserver ::1\nnameserver bogus\nsearch a\nnameserver 10.0.0.2\n")
    assert system_resolvers(str(conf)) == ["127.0.0.53", "10.0.0.2"]
    assert system_resolvers(str(tmp_path / "missing")) == []
