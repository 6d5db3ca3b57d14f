"""A throw-away "internet" inside network namespaces this test run creates, and helpers to act
as a sandbox inside one.

    sandbox netns A/B ──veth── world netns (the manager's "host") ──veth── inet netns
                               198.18.0.1/24, host service :8000        198.18.0.2/24
                                                                         hosts on lo, DNS on .53

No namespace here has a route to anything outside these namespaces: the world's default route
points at the inet namespace, which has no default route at all. Every address used
(198.18.0.0/15 is the benchmarking range; 192.168.77.2 and 169.254.169.254 stand in for a LAN
host and a metadata service) lives on a loopback device inside the inet namespace.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from corral.network.netns import make_socket

API_IP = "198.18.1.10"      # api.themoviedb.test and cdn-other.test (a shared address, as on a CDN)
OTHER_IP = "198.18.1.20"    # other.test
RAW_IP = "198.18.1.30"      # no name
LAN_IP = "192.168.77.2"     # a "private network" host
METADATA_IP = "169.254.169.254"
DNS_IP = "198.18.0.53"
WORLD_IP = "198.18.0.1"
HOSTS = (API_IP, OTHER_IP, RAW_IP, LAN_IP, METADATA_IP, DNS_IP)
BULK_BYTES = 200_000


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


# ------------------------------------------------------------------------------ DNS (test side)

def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    labels, end = [], None
    while True:
        n = data[pos]
        if n & 0xC0 == 0xC0:
            end = end or pos + 2
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            continue
        if n == 0:
            return ".".join(labels), end or pos + 1
        labels.append(data[pos + 1:pos + 1 + n].decode())
        pos += 1 + n


def dns_query(name: str, qtype: int = 1) -> tuple[int, bytes]:
    mid = secrets.randbits(16)
    return mid, struct.pack("!HHHHHH", mid, 0x0100, 1, 0, 0, 0) + _name(name) + struct.pack("!HH", qtype, 1)


def dns_parse_answer(data: bytes) -> tuple[int, int, list[str]]:
    mid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", data)
    pos = 12
    for _ in range(qd):
        _, pos = _read_name(data, pos)
        pos += 4
    addrs = []
    for _ in range(an):
        _, pos = _read_name(data, pos)
        rtype, _, _, rdlen = struct.unpack_from("!HHIH", data, pos)
        pos += 10
        if rtype == 1:
            addrs.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return mid, flags & 0xF, addrs


class FakeDns(asyncio.DatagramProtocol):
    """Answers A queries from `records` (name -> list of IPs, or "CNAME:target"); NXDOMAIN otherwise."""

    def __init__(self, records: dict[str, list[str] | str]) -> None:
        self.records = records
        self.asked: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        mid, _flags = struct.unpack_from("!HH", data)
        qname, pos = _read_name(data, 12)
        qtype, _ = struct.unpack_from("!HH", data, pos)
        self.asked.append(qname)
        question = data[12:pos + 4]
        answers: list[bytes] = []
        name = qname
        for _ in range(5):
            rec = self.records.get(name)
            if isinstance(rec, str) and rec.startswith("CNAME:"):
                target = rec[6:]
                rdata = _name(target)
                answers.append(_name(name) + struct.pack("!HHIH", 5, 1, 30, len(rdata)) + rdata)
                name = target
                continue
            if isinstance(rec, list) and qtype == 1:
                for ip in rec:
                    answers.append(_name(name) + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton(ip))
            break
        rcode = 0 if (name in self.records or answers) else 3
        header = struct.pack("!HHHHHH", mid, 0x8180 | rcode, 1, len(answers), 0, 0)
        assert self.transport is not None
        self.transport.sendto(header + question + b"".join(answers), addr)


# ------------------------------------------------------------------------------ TCP servers

async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        local = writer.get_extra_info("sockname")[0]
        body = b"x" * BULK_BYTES if head.startswith(b"GET /bulk ") else f"hello from {local}".encode()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _bulk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read(1)
        writer.write(b"x" * BULK_BYTES)
        await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def make_tls_context(tmp: Path) -> ssl.SSLContext:
    key, crt = tmp / "key.pem", tmp / "crt.pem"
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
       "/CN=api.themoviedb.test", "-keyout", str(key), "-out", str(crt))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


@dataclass
class FakeInternet:
    tag: str
    world: str
    inet: str
    dns: FakeDns
    sandboxes: list[str] = field(default_factory=list)
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    transports: list[asyncio.BaseTransport] = field(default_factory=list)

    @property
    def world_path(self) -> str:
        return netns_path(self.world)

    def new_sandbox_netns(self) -> str:
        name = f"crts{self.tag}{len(self.sandboxes)}"
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        self.sandboxes.append(name)
        return netns_path(name)

    async def serve_tcp(self, netns: str, addr: str, port: int, handler, ssl_ctx: ssl.SSLContext | None = None) -> None:
        sock = make_socket(netns, socket.AF_INET, socket.SOCK_STREAM, (addr, port), reuse=True)
        sock.listen(64)
        self.servers.append(await asyncio.start_server(handler, sock=sock, ssl=ssl_ctx))

    async def close(self) -> None:
        for s in self.servers:
            s.close()
        for t in self.transports:
            t.close()
        for name in [*self.sandboxes, self.world, self.inet]:
            sh("ip", "netns", "del", name, check=False)


async def build_internet(tls: ssl.SSLContext) -> FakeInternet:
    tag = secrets.token_hex(3)
    world, inet = f"crtw{tag}", f"crti{tag}"
    dns = FakeDns({
        "api.themoviedb.test": [API_IP],
        "cdn-other.test": [API_IP],
        "other.test": [OTHER_IP],
        "alias.themoviedb.test": "CNAME:api.themoviedb.test",
        "loop.rebind.test": ["127.0.0.1"],
        "lan.rebind.test": [LAN_IP],
        "meta.rebind.test": [METADATA_IP],
        "mixed.rebind.test": ["127.0.0.1", OTHER_IP],
    })
    net = FakeInternet(tag, world, inet, dns)
    try:
        for name in (world, inet):
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", world, "link", "add", "wup", "type", "veth", "peer", "name", "idown", "netns", netns_path(inet))
        sh("ip", "-n", world, "addr", "add", f"{WORLD_IP}/24", "dev", "wup")
        sh("ip", "-n", world, "link", "set", "wup", "up")
        sh("ip", "-n", world, "route", "add", "default", "via", "198.18.0.2")
        sh("ip", "-n", inet, "addr", "add", "198.18.0.2/24", "dev", "idown")
        sh("ip", "-n", inet, "link", "set", "idown", "up")
        for ip in HOSTS:
            sh("ip", "-n", inet, "addr", "add", f"{ip}/32", "dev", "lo")
        inet_path = netns_path(inet)
        for port, handler, ctx in ((80, _http, None), (443, _http, tls), (7000, _echo, None), (7001, _bulk, None)):
            await net.serve_tcp(inet_path, "0.0.0.0", port, handler, ctx)
        # a service of the "host" itself, on every address of the manager's namespace
        await net.serve_tcp(net.world_path, "0.0.0.0", 8000, _echo)
        sock = make_socket(inet_path, socket.AF_INET, socket.SOCK_DGRAM, (DNS_IP, 53))
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: dns, sock=sock)
        net.transports.append(transport)
        # the promise of this module: nothing routes off these namespaces
        assert sh("ip", "-n", inet, "route", "show", "default") == ""
        assert sh("ip", "-n", world, "-o", "link", "show").count("link/ether") == 1
    except BaseException:
        await net.close()
        raise
    return net


# ------------------------------------------------------------------------------ sandbox side

async def exchange(netns: str, ip: str, port: int, payload: bytes = b"ping", *, tls_name: str | None = None,
                   read_all: bool = False) -> bytes:
    """Connect from inside `netns`, send `payload`, return what comes back. Raises OSError (or
    TimeoutError) when the connection is refused, unreachable or cut."""
    loop = asyncio.get_running_loop()
    sock = make_socket(netns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), 5)
    except BaseException:
        sock.close()
        raise
    ctx = None
    if tls_name:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=tls_name), 5)
    try:
        writer.write(payload)
        await writer.drain()
        if read_all:
            chunks = []
            while data := await asyncio.wait_for(reader.read(65536), 5):
                chunks.append(data)
            return b"".join(chunks)
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


async def http_get(netns: str, ip: str, port: int = 80, host: str = "x", tls: bool = False, path: str = "/") -> str:
    data = await exchange(netns, ip, port, f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode(),
                          tls_name=host if tls else None, read_all=True)
    return data.decode()


async def resolve(netns: str, name: str, server: str) -> tuple[int, list[str]]:
    """(rcode, addresses) for an A query sent from inside `netns` to `server`:53."""
    loop = asyncio.get_running_loop()
    sock = make_socket(netns, socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await loop.sock_connect(sock, (server, 53))
        mid, query = dns_query(name)
        await loop.sock_sendall(sock, query)
        while True:
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
            got_id, rcode, addrs = dns_parse_answer(data)
            if got_id == mid:
                return rcode, addrs


async def connects(netns: str, ip: str, port: int) -> bool:
    """Whether a TCP connection from inside `netns` is established (refused, unreachable or
    unanswered within the safety timeout: False). Only the handshake counts, so a server that
    waits for a request cannot make a reachable destination look closed."""
    loop = asyncio.get_running_loop()
    sock = make_socket(netns, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), 5)
        except (OSError, asyncio.TimeoutError):
            return False
    return True


async def refused(coro) -> bool:
    """True when the connection attempt fails (refused, unreachable, reset or no answer)."""
    try:
        await coro
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
        return True
    return False
