"""The small part of the DNS wire format (RFC 1035) the resolver needs, written defensively.

Everything a sandbox sends is hostile input: lengths are checked, compression pointers may only
point backwards and are followed a bounded number of times, and the resolver never relays bytes
from upstream to the sandbox: it builds every answer itself from parsed A records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_AAAA = 1, 2, 5, 6, 28
CLASS_IN = 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 2, 3, 4, 5
FLAG_QR, FLAG_TC, FLAG_RD, FLAG_RA = 0x8000, 0x0200, 0x0100, 0x0080
OPCODE_QUERY = 0

_HEADER = struct.Struct("!HHHHHH")
_MAX_JUMPS = 32


class DnsFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    name: str        # lower-case, no trailing dot
    qtype: int
    qclass: int


@dataclass(frozen=True)
class DnsMessage:
    id: int
    flags: int
    questions: tuple[Question, ...]
    answers: tuple[Record, ...] = ()

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: IPv4Address | str | bytes    # A -> address, CNAME -> target name, other -> raw


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    jumps = 0
    end: int | None = None
    pos = offset
    total = 0
    while True:
        if pos >= len(data):
            raise DnsFormatError("name runs past the end of the message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise DnsFormatError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= pos:
                raise DnsFormatError("compression pointer does not point backwards")
            if end is None:
                end = pos + 2
            jumps += 1
            if jumps > _MAX_JUMPS:
                raise DnsFormatError("too many compression pointers")
            pos = target
            continue
        if length & 0xC0:
            raise DnsFormatError("unknown label type")
        pos += 1
        if length == 0:
            break
        if pos + length > len(data):
            raise DnsFormatError("label runs past the end of the message")
        raw = data[pos:pos + length]
        total += length + 1
        if total > 255:
            raise DnsFormatError("name longer than 255 bytes")
        try:
            labels.append(raw.decode("ascii").lower())
        except UnicodeDecodeError:
            raise DnsFormatError("non-ASCII label") from None
        pos += length
    return ".".join(labels), (end if end is not None else pos)


def encode_name(name: str) -> bytes:
    name = name.rstrip(".")
    out = bytearray()
    if name:
        for label in name.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) <= 63:
                raise DnsFormatError(f"bad label in {name!r}")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        raise DnsFormatError("name longer than 255 bytes")
    return bytes(out)


def parse_message(data: bytes, *, with_answers: bool = False) -> DnsMessage:
    if len(data) < _HEADER.size:
        raise DnsFormatError("shorter than a DNS header")
    mid, flags, qd, an, _ns, _ar = _HEADER.unpack_from(data)
    if qd > 4:
        raise DnsFormatError("too many questions")
    pos = _HEADER.size
    questions = []
    for _ in range(qd):
        name, pos = _read_name(data, pos)
        if pos + 4 > len(data):
            raise DnsFormatError("truncated question")
        qtype, qclass = struct.unpack_from("!HH", data, pos)
        pos += 4
        questions.append(Question(name, qtype, qclass))
    answers: list[Record] = []
    if with_answers:
        for _ in range(an):
            name, pos = _read_name(data, pos)
            if pos + 10 > len(data):
                raise DnsFormatError("truncated record")
            rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
            pos += 10
            if pos + rdlen > len(data):
                raise DnsFormatError("record data runs past the end")
            rdata: IPv4Address | str | bytes
            if rtype == TYPE_A and rclass == CLASS_IN:
                if rdlen != 4:
                    raise DnsFormatError("A record of the wrong length")
                rdata = IPv4Address(data[pos:pos + 4])
            elif rtype == TYPE_CNAME:
                rdata, _ = _read_name(data, pos)
            else:
                rdata = data[pos:pos + rdlen]
            answers.append(Record(name, rtype, rclass, min(ttl, 0x7FFFFFFF), rdata))
            pos += rdlen
    return DnsMessage(mid, flags, tuple(questions), tuple(answers))


def build_query(mid: int, name: str, qtype: int = TYPE_A) -> bytes:
    return _HEADER.pack(mid, FLAG_RD, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def build_response(query: DnsMessage, rcode: int, addresses: list[IPv4Address] = (), ttl: int = 0) -> bytes:  # type: ignore[assignment]
    """An answer to `query` holding only A records for its (single) question name."""
    flags = FLAG_QR | (query.opcode << 11) | (query.flags & FLAG_RD) | FLAG_RA | (rcode & 0xF)
    q = query.questions[0] if query.questions else None
    body = b""
    if q is not None:
        body = encode_name(q.name) + struct.pack("!HH", q.qtype, q.qclass)
    answers = b""
    for addr in addresses:
        # 0xC00C: a pointer to the question name right after the header
        answers += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4) + addr.packed
    return _HEADER.pack(query.id, flags, 1 if q else 0, len(addresses), 0, 0) + body + answers


def follow_a_records(response: DnsMessage, qname: str) -> tuple[list[IPv4Address], int]:
    """A records for `qname` following CNAMEs within the answer section; also the smallest TTL."""
    target = qname.rstrip(".").lower()
    seen = {target}
    ttl: int | None = None
    addrs: list[IPv4Address] = []
    for _ in range(16):
        next_target = None
        for rr in response.answers:
            if rr.name != target:
                continue
            if rr.rtype == TYPE_A and isinstance(rr.rdata, IPv4Address):
                addrs.append(rr.rdata)
                ttl = rr.ttl if ttl is None else min(ttl, rr.ttl)
            elif rr.rtype == TYPE_CNAME and isinstance(rr.rdata, str):
                next_target = rr.rdata
                ttl = rr.ttl if ttl is None else min(ttl, rr.ttl)
        if addrs or next_target is None or next_target in seen:
            break
        seen.add(next_target)
        target = next_target
    return list(dict.fromkeys(addrs)), (ttl or 0)
