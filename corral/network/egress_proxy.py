"""The egress proxy: a sandbox's HTTP(S) connections to pinned addresses must also *name* an allowed site.

DNS pinning alone opens an address, and an address is often shared (CDNs, shared hosting): a
sandbox allowed `api.example.com` could reach any other site behind the same IP. For sandboxes
whose policy is domain-based, nftables redirects TCP to ports 80/443 of pinned addresses to a
listener on the sandbox's own gateway (one per sandbox, like the resolver, so the sandbox is known
from the socket). The proxy reads the original destination (SO_ORIGINAL_DST), the TLS SNI or HTTP
Host from the first bytes (sniff.py), and connects on only if the name is allowed by the policy
and the destination is pinned. Otherwise it answers 403 (HTTP) or closes (TLS) and records it.

Bytes are counted, and the byte budget applied, by the sandbox's nft table on the sandbox<->proxy
leg (input/output hooks), so audit and budget see proxied traffic like forwarded traffic.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .audit import ProxyLog
from .netns import make_socket, run_in_netns
from .egress_policy import EgressPolicy, destination_allowed, in_ranges
from .sniff import HTTP, MAX_HELLO, MAX_HTTP_HEAD, NeedMore, Sniffed, sniff

log = logging.getLogger("corral.network.egress_proxy")

PROXIED_PORTS = (80, 443)
SO_ORIGINAL_DST = 80
FIRST_BYTES_TIMEOUT = 10.0     # a client that sends no request head in time is closed
CONNECT_TIMEOUT = 10.0
MAX_CONNECTIONS_PER_SANDBOX = 256
CHUNK = 65536
_BLOCKED = b"blocked by the sandbox's egress policy\n"
FORBIDDEN = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
             b"Connection: close\r\n\r\n%s" % (len(_BLOCKED), _BLOCKED))


@dataclass
class _Conn:
    dst: IPv4Address
    name: str | None


class _Listener:
    def __init__(self, server: asyncio.base_events.Server, client: IPv4Address) -> None:
        self.server, self.client = server, str(client)
        self.conns: dict[asyncio.Task[None], _Conn] = {}


class EgressProxy:
    def __init__(self, *, netns: str | None, port: int, policy_for: Callable[[str], EgressPolicy | None],
                 is_pinned: Callable[[str, IPv4Address], bool], log_for: Callable[[str], ProxyLog],
                 floor: Sequence[IPv4Network]) -> None:
        self.netns, self.port = netns, port
        self.policy_for, self.is_pinned, self.log_for, self.floor = policy_for, is_pinned, log_for, tuple(floor)
        self._listeners: dict[str, _Listener] = {}

    async def listen(self, sandbox_id: str, gateway: IPv4Address, client: IPv4Address) -> None:
        await self.unlisten(sandbox_id)
        sock = await asyncio.to_thread(make_socket, self.netns, socket.AF_INET, socket.SOCK_STREAM,
                                       (str(gateway), self.port), reuse=True)
        try:
            sock.listen(64)
            holder: list[_Listener] = []

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await self._serve(sandbox_id, holder[0], reader, writer)

            server = await asyncio.start_server(handle, sock=sock)
        except BaseException:
            sock.close()
            raise
        holder.append(_Listener(server, client))
        self._listeners[sandbox_id] = holder[0]

    async def unlisten(self, sandbox_id: str) -> None:
        lst = self._listeners.pop(sandbox_id, None)
        if lst is None:
            return
        lst.server.close()
        for t in list(lst.conns):
            t.cancel()
        await asyncio.gather(*lst.conns, return_exceptions=True)

    def listening(self, sandbox_id: str) -> bool:
        return sandbox_id in self._listeners

    async def close(self) -> None:
        for sid in list(self._listeners):
            await self.unlisten(sid)

    def revalidate(self, sandbox_id: str) -> int:
        """Cut open connections the sandbox's (new) policy no longer allows; returns how many."""
        lst = self._listeners.get(sandbox_id)
        policy = self.policy_for(sandbox_id)
        if lst is None:
            return 0
        cut = 0
        for task, conn in list(lst.conns.items()):
            if policy is None or not self._still_allowed(sandbox_id, policy, conn):
                task.cancel()
                cut += 1
        return cut

    def _still_allowed(self, sid: str, policy: EgressPolicy, conn: _Conn) -> bool:
        if not destination_allowed(policy, conn.dst, floor=self.floor, pinned=True):
            return False
        if destination_allowed(policy, conn.dst, floor=self.floor):
            return True      # open without a pin: a CIDR rule, or the open internet
        if conn.name == str(conn.dst):
            return self.is_pinned(sid, conn.dst)
        return conn.name is not None and policy.pins_name(conn.name) and self.is_pinned(sid, conn.dst)

    # ------------------------------------------------------------------------------ one connection

    async def _serve(self, sid: str, lst: _Listener, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            peer = writer.get_extra_info("peername")
            if peer is None or peer[0] != lst.client or len(lst.conns) >= MAX_CONNECTIONS_PER_SANDBOX:
                return
            dst, port = original_destination(writer.get_extra_info("socket"))
            if (str(dst), port) == tuple(writer.get_extra_info("sockname")[:2]):
                return     # connected to the proxy directly, not redirected: nothing to forward
            conn = _Conn(dst, None)
            lst.conns[task] = conn
            await self._decide_and_forward(sid, conn, port, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            # cut by revalidate() or unlisten(): this task is the connection's top level, and
            # asyncio's server logs an error for a handler task that ends cancelled
            pass
        finally:
            lst.conns.pop(task, None)
            writer.close()

    async def _decide_and_forward(self, sid: str, conn: _Conn, port: int, reader: asyncio.StreamReader,
                                  writer: asyncio.StreamWriter) -> None:
        policy = self.policy_for(sid)
        audit = self.log_for(sid)
        dst = conn.dst
        if policy is None or not destination_allowed(policy, dst, floor=self.floor, pinned=True):
            audit.note(dst, port, None, None, "destination not allowed")
            return
        head = b""
        if not in_ranges(dst, policy.allow_nets):     # a CIDR rule needs no name
            head, sniffed = await _read_head(reader)
            kind = sniffed.kind if sniffed else None
            conn.name = sniffed.name if sniffed else None
            reason = ""
            if sniffed is None:
                reason = "neither TLS nor HTTP"
            elif conn.name is None:
                reason = "no server name (SNI)" if kind != HTTP else "no usable Host header"
            elif kind == HTTP and conn.name == str(dst):
                # "http://<pinned address>/": names no other site, and the pinned address is
                # open on every other port anyway; it reaches the address's default site
                reason = "" if self.is_pinned(sid, dst) else "address not pinned for an allowed name"
            elif not policy.pins_name(conn.name):
                reason = "name not allowed"
            elif not self.is_pinned(sid, dst):
                reason = "address not pinned for an allowed name"
            if not reason and await asyncio.to_thread(run_in_netns, self.netns, lambda: _is_local(dst)):
                reason = "destination is an address of the host"
            if reason:
                audit.note(dst, port, kind, conn.name, reason)
                if kind == HTTP:
                    writer.write(FORBIDDEN)
                    await asyncio.wait_for(writer.drain(), 5)
                return
            audit.note(dst, port, kind, conn.name, "")
        up_reader, up_writer = await self._connect(dst, port)
        try:
            if head:
                up_writer.write(head)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            up_writer.close()

    async def _connect(self, dst: IPv4Address, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await asyncio.to_thread(run_in_netns, self.netns, lambda: _upstream_socket(dst))
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (str(dst), port)), CONNECT_TIMEOUT)
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise


def _is_local(dst: IPv4Address) -> bool:
    """Whether `dst` is an address of this host (binding to it succeeds exactly then).

    The proxy connects from the host, where the host's own addresses are reachable: a pinned
    name resolving to one of them must not become a way into host services (the input hook
    refuses them for forwarded traffic).
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((str(dst), 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return False
        raise
    finally:
        probe.close()
    return True


def _upstream_socket(dst: IPv4Address) -> socket.socket:
    """The proxy's own connection (checked again here: CIDR-allowed destinations skip the name step)."""
    if _is_local(dst):
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"{dst} is an address of the host")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.setblocking(False)
    return s


def original_destination(sock: socket.socket) -> tuple[IPv4Address, int]:
    """Where the sandbox meant to connect before nftables redirected it here."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, addr = struct.unpack_from("!2xH4s", raw)
    return IPv4Address(addr), port


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, Sniffed | None]:
    """The first bytes of the connection, as many as needed to find the name, bounded in size and time."""
    limit = max(MAX_HELLO, MAX_HTTP_HEAD) + 5 + 2048
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIRST_BYTES_TIMEOUT
    while True:
        try:
            return data, sniff(data)
        except NeedMore:
            pass
        if len(data) >= limit:
            return data, None
        chunk = await asyncio.wait_for(reader.read(limit - len(data)), max(deadline - loop.time(), 0.01))
        if not chunk:
            return data, None
        data += chunk


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:
        dst.close()
