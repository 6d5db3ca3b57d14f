"""The DNS codec against hostile and ordinary messages."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest

from corral.network import dns_wire as w

HDR = struct.Struct("!HHHHHH")


def test_query_round_trip() -> None:
    q = w.parse_message(w.build_query(0x1234, "Api.Example.COM."))
    assert q.id == 0x1234 and q.questions == (w.Question("api.example.com", w.TYPE_A, w.CLASS_IN),)
    assert not q.is_response and q.opcode == 0


def test_response_carries_only_our_a_records() -> None:
    q = w.parse_message(w.build_query(7, "a.b"))
    r = w.parse_message(w.build_response(q, 0, [IPv4Address("1.2.3.4"), IPv4Address("5.6.7.8")], 60),
                        with_answers=True)
    assert r.is_response and r.id == 7 and r.rcode == 0
    assert [a.rdata for a in r.answers] == [IPv4Address("1.2.3.4"), IPv4Address("5.6.7.8")]
    assert all(a.name == "a.b" and a.ttl == 60 for a in r.answers)
    assert w.parse_message(w.build_response(q, w.RCODE_NXDOMAIN)).rcode == w.RCODE_NXDOMAIN


def test_cname_chain_is_followed() -> None:
    def rr(name: str, rtype: int, rdata: bytes, ttl: int) -> bytes:
        return w.encode_name(name) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
    msg = (HDR.pack(1, 0x8180, 1, 3, 0, 0) + w.encode_name("a.x") + struct.pack("!HH", 1, 1)
           + rr("a.x", w.TYPE_CNAME, w.encode_name("b.y"), 100) + rr("b.y", w.TYPE_A, bytes([9, 9, 9, 9]), 50)
           + rr("other.z", w.TYPE_A, bytes([6, 6, 6, 6]), 10))
    addrs, ttl = w.follow_a_records(w.parse_message(msg, with_answers=True), "a.x")
    assert addrs == [IPv4Address("9.9.9.9")] and ttl == 50   # the unrelated record is ignored


@pytest.mark.parametrize("data", [
    b"",
    b"\x00" * 11,
    HDR.pack(1, 0, 1, 0, 0, 0) + b"\x03abc",                           # name runs off the end
    HDR.pack(1, 0, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01",     # pointer to itself
    HDR.pack(1, 0, 1, 0, 0, 0) + b"\xc0\x20" + b"\x00\x01\x00\x01",     # pointer forwards
    HDR.pack(1, 0, 1, 0, 0, 0) + b"\x40abc\x00\x00\x01\x00\x01",        # reserved label type
    HDR.pack(1, 0, 1, 0, 0, 0) + b"\x03a\xffb\x00\x00\x01\x00\x01",     # non-ASCII
    HDR.pack(1, 0, 1, 0, 0, 0) + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01",   # > 255 bytes
    HDR.pack(1, 0, 9, 0, 0, 0),                                          # too many questions
    HDR.pack(1, 0, 1, 0, 0, 0) + b"\x01a\x00\x00",                      # truncated question
])
def test_malformed_messages_are_rejected(data: bytes) -> None:
    with pytest.raises(w.DnsFormatError):
        w.parse_message(data, with_answers=True)


def test_bad_a_record_length() -> None:
    msg = (HDR.pack(1, 0x8180, 1, 1, 0, 0) + w.encode_name("a.x") + struct.pack("!HH", 1, 1)
           + w.encode_name("a.x") + struct.pack("!HHIH", 1, 1, 5, 3) + b"abc")
    with pytest.raises(w.DnsFormatError):
        w.parse_message(msg, with_answers=True)


def test_encode_name_limits() -> None:
    with pytest.raises(w.DnsFormatError):
        w.encode_name("a" * 64 + ".com")
    with pytest.raises(w.DnsFormatError):
        w.encode_name("a..b")
