"""Which site a TCP connection asks for, from its first bytes: TLS SNI or the HTTP Host header.

The egress proxy (proxy.py) uses this to tell two sites apart that share one address. Every
length read from the wire is checked against what was actually received and against fixed
ceilings, so a hostile client can make the parser say "no name" but never read out of bounds or
buffer without limit. Names come back lower-case without a trailing dot or port; anything that
is not a plain LDH host name is refused (None), so the policy matcher only ever sees clean names.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

MAX_HELLO = 16 * 1024          # bytes of ClientHello we are willing to buffer
MAX_HTTP_HEAD = 16 * 1024      # bytes of HTTP request head we are willing to buffer

TLS = "tls"
HTTP = "http"

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_METHOD = re.compile(rb"^[A-Z]{1,16}$")


class NeedMore(Exception):
    """The bytes so far are a valid prefix; read more (up to the ceiling) and ask again."""


@dataclass(frozen=True)
class Sniffed:
    kind: str            # TLS or HTTP
    name: str | None     # None: the protocol was recognised but carried no usable name


def clean_host(raw: str) -> str | None:
    """A host name as the policy understands it, or None (IP literals, junk, IDN in UTF-8...)."""
    name = raw.strip().rstrip(".").lower()
    return name if _HOST.match(name) and not _looks_like_ipv4(name) else None


def _looks_like_ipv4(name: str) -> bool:
    return all(p.isdigit() for p in name.split("."))


def sniff(data: bytes) -> Sniffed | None:
    """Name asked for by the connection that began with `data`.

    Raises NeedMore when `data` is an incomplete but so far valid ClientHello or request head
    (the caller reads more, up to the ceilings); returns None when it is neither protocol.
    """
    if not data:
        raise NeedMore
    if data[0] == 0x16:
        return Sniffed(TLS, tls_server_name(data))
    if _METHOD.match(data.split(b" ", 1)[0]):
        return Sniffed(HTTP, http_host(data))
    return None


# ---------------------------------------------------------------------------------- TLS

def _handshake_bytes(data: bytes) -> bytes:
    """Concatenated payload of the leading TLS handshake records (a ClientHello may span records)."""
    out = bytearray()
    pos = 0
    while True:
        if len(data) - pos < 5:
            raise NeedMore
        ctype, major, _minor, length = struct.unpack_from("!BBBH", data, pos)
        if ctype != 0x16 or major != 3 or length == 0 or length > 16384 + 2048:
            raise ValueError("not a TLS handshake record")
        if len(data) - pos - 5 < length:
            # keep what we have: the hello header may already tell us it is complete
            out += data[pos + 5:]
            return bytes(out)
        out += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(out) >= 4 and len(out) - 4 >= int.from_bytes(out[1:4], "big"):
            return bytes(out)
        if pos >= len(data):
            return bytes(out)


def tls_server_name(data: bytes) -> str | None:
    """The host_name of the SNI extension of the ClientHello at the start of `data`."""
    try:
        hs = _handshake_bytes(data)
    except ValueError:
        return None
    if len(hs) < 4:
        raise NeedMore
    if hs[0] != 1:                              # not a ClientHello
        return None
    body_len = int.from_bytes(hs[1:4], "big")
    if body_len > MAX_HELLO:
        return None
    if len(hs) - 4 < body_len:
        raise NeedMore
    body = memoryview(hs)[4:4 + body_len]
    r = _Reader(body)
    try:
        r.take(2 + 32)                          # legacy_version, random
        r.take(r.u8())                          # session id
        r.take(r.u16())                         # cipher suites
        r.take(r.u8())                          # compression methods
        if r.left() == 0:
            return None                         # no extensions at all
        ext = _Reader(r.take(r.u16()))
        while ext.left():
            etype, elen = ext.u16(), ext.u16()
            edata = ext.take(elen)
            if etype != 0:
                continue
            names = _Reader(edata)
            lst = _Reader(names.take(names.u16()))
            while lst.left():
                ntype, name = lst.u8(), lst.take(lst.u16())
                if ntype == 0:
                    try:
                        return clean_host(bytes(name).decode("ascii"))
                    except UnicodeDecodeError:
                        return None
            return None
    except IndexError:
        return None                             # a length pointed past the message: malformed
    return None


class _Reader:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def left(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int) -> memoryview:
        if n < 0 or n > self.left():
            raise IndexError("length past the end")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        b = self.take(2)
        return (b[0] << 8) | b[1]


# ---------------------------------------------------------------------------------- HTTP

def http_host(data: bytes) -> str | None:
    """The Host header of the HTTP/1.x request head at the start of `data` (exactly one required)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) >= MAX_HTTP_HEAD:
            return None
        raise NeedMore
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    hosts = []
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if not sep or key != key.strip():
            return None                         # obs-fold or "Host :" tricks: refuse the request
        if key.lower() == b"host":
            hosts.append(value)
    if len(hosts) != 1:
        return None
    try:
        text = hosts[0].decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        return None                             # IPv6 literal
    host, _, port = text.partition(":")
    if port and not port.isdigit():
        return None
    try:
        return str(IPv4Address(host))          # an address literal: the proxy compares it with the destination
    except ValueError:
        return clean_host(host)
