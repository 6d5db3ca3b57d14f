"""The sandboxes' DNS resolver: answers only names a sandbox may reach, and pins what it answers.

Each attached sandbox gets a UDP socket on its own gateway address (port 53); nftables redirects
every UDP/53 packet the sandbox sends, whatever its destination, to that socket, so the sandbox
cannot pick another resolver. Which sandbox asks is known from the socket, not from the packet.

For a name the policy allows, the resolver asks the configured upstream resolvers for A records,
drops every address the sandbox must not reach (DNS rebinding: loopback, another sandbox,
private or link-local space unless a CIDR rule opens it), pins the rest into the sandbox's
nftables set *before* answering (so the connection that follows is allowed), and builds a fresh
answer itself. Names the policy does not allow are never sent upstream (no DNS exfiltration
through the host) and get NXDOMAIN. Only A queries are resolved: sandboxes have IPv4 egress
only, so AAAA and other types for an allowed name get an empty answer (NODATA).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from . import dns_wire as w
from .audit import DnsLog
from .netns import make_socket
from .egress_policy import EgressPolicy, answer_acceptable

log = logging.getLogger("corral.network.resolver")

MAX_INFLIGHT_PER_SANDBOX = 32
MAX_ANSWERS = 16
MAX_ANSWER_TTL = 300

Pinner = Callable[[str, str, list[IPv4Address], int], Awaitable[None]]


@dataclass
class UpstreamAnswer:
    rcode: int
    addresses: list[IPv4Address]
    ttl: int


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, sandbox_id: str, client: IPv4Address) -> None:
        self.resolver, self.sandbox_id, self.client = resolver, sandbox_id, str(client)
        self.transport: asyncio.DatagramTransport | None = None
        self.inflight = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr[0] != self.client or self.inflight >= MAX_INFLIGHT_PER_SANDBOX:
            return
        self.inflight += 1
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self.resolver.handle(self.sandbox_id, data)
            if reply is not None and self.transport is not None:
                self.transport.sendto(reply, addr)
        except Exception:  # one bad query must not take the endpoint down
            log.exception("resolver: query from sandbox %s failed", self.sandbox_id)
        finally:
            self.inflight -= 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for t in list(self.tasks):
            t.cancel()


class Resolver:
    def __init__(self, *, netns: str | None, upstreams: Sequence[tuple[str, int]],
                 policy_for: Callable[[str], EgressPolicy | None], log_for: Callable[[str], DnsLog],
                 pinner: Pinner, floor: Sequence[IPv4Network], timeout: float = 2.0) -> None:
        if not upstreams:
            raise ValueError("the sandbox resolver needs at least one upstream resolver")
        self.netns, self.upstreams, self.timeout = netns, list(upstreams), timeout
        self.policy_for, self.log_for, self.pinner, self.floor = policy_for, log_for, pinner, tuple(floor)
        self._endpoints: dict[str, _Endpoint] = {}

    async def listen(self, sandbox_id: str, gateway: IPv4Address, client: IPv4Address) -> None:
        await self.unlisten(sandbox_id)
        sock = await asyncio.to_thread(make_socket, self.netns, socket.AF_INET, socket.SOCK_DGRAM,
                                       (str(gateway), 53)) if self.netns else \
            make_socket(None, socket.AF_INET, socket.SOCK_DGRAM, (str(gateway), 53))
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(lambda: _Endpoint(self, sandbox_id, client), sock=sock)
        self._endpoints[sandbox_id] = proto

    async def unlisten(self, sandbox_id: str) -> None:
        ep = self._endpoints.pop(sandbox_id, None)
        if ep is not None:
            ep.close()

    def listening(self, sandbox_id: str) -> bool:
        return sandbox_id in self._endpoints

    async def close(self) -> None:
        for sid in list(self._endpoints):
            await self.unlisten(sid)

    # ------------------------------------------------------------------------------ queries

    async def handle(self, sandbox_id: str, data: bytes) -> bytes | None:
        try:
            query = w.parse_message(data)
        except w.DnsFormatError:
            return None
        if query.is_response:
            return None
        if query.opcode != w.OPCODE_QUERY:
            return w.build_response(query, w.RCODE_NOTIMP)
        if len(query.questions) != 1:
            return w.build_response(query, w.RCODE_FORMERR)
        q = query.questions[0]
        if q.qclass != w.CLASS_IN:
            return w.build_response(query, w.RCODE_REFUSED)
        policy = self.policy_for(sandbox_id)
        dns_log = self.log_for(sandbox_id)
        if policy is None or not q.name or not policy.allows_name(q.name):
            dns_log.note(q.name, allowed=False, reason="not allowed by policy")
            return w.build_response(query, w.RCODE_NXDOMAIN)
        if q.qtype != w.TYPE_A:
            return w.build_response(query, w.RCODE_NOERROR)
        answer = await self.ask_upstream(q.name)
        if answer is None:
            dns_log.note(q.name, allowed=True, reason="upstream failed")
            return w.build_response(query, w.RCODE_SERVFAIL)
        if answer.rcode != w.RCODE_NOERROR:
            dns_log.note(q.name, allowed=True, reason=f"upstream rcode {answer.rcode}")
            return w.build_response(query, w.RCODE_NXDOMAIN if answer.rcode == w.RCODE_NXDOMAIN else w.RCODE_SERVFAIL)
        good = [a for a in answer.addresses if answer_acceptable(policy, a, floor=self.floor)][:MAX_ANSWERS]
        refused = [a for a in answer.addresses if a not in good]
        if answer.addresses and not good:
            dns_log.note(q.name, allowed=False, addresses=refused,
                         reason="rebinding: answer points at a forbidden address")
            return w.build_response(query, w.RCODE_NXDOMAIN)
        ttl = min(max(answer.ttl, 0), MAX_ANSWER_TTL)
        if good and policy.pins_name(q.name):
            await self.pinner(sandbox_id, q.name, good, ttl)
        dns_log.note(q.name, allowed=True, addresses=good,
                     reason="" if not refused else f"dropped forbidden answers {', '.join(map(str, refused))}")
        return w.build_response(query, w.RCODE_NOERROR, good, ttl)

    async def ask_upstream(self, name: str) -> UpstreamAnswer | None:
        for host, port in self.upstreams:
            try:
                return await asyncio.wait_for(self._ask_one(host, port, name), self.timeout)
            except (OSError, asyncio.TimeoutError, w.DnsFormatError) as exc:
                log.warning("resolver: upstream %s:%s failed for %s: %r", host, port, name, exc)
        return None

    async def _ask_one(self, host: str, port: int, name: str) -> UpstreamAnswer:
        loop = asyncio.get_running_loop()
        if self.netns:
            sock = await asyncio.to_thread(make_socket, self.netns, socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = make_socket(None, socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            await loop.sock_connect(sock, (host, port))   # connected: the kernel drops other sources
            mid = secrets.randbits(16)
            await loop.sock_sendall(sock, w.build_query(mid, name, w.TYPE_A))
            while True:
                data = await loop.sock_recv(sock, 4096)
                try:
                    msg = w.parse_message(data, with_answers=True)
                except w.DnsFormatError:
                    continue
                if (msg.id != mid or not msg.is_response or len(msg.questions) != 1
                        or msg.questions[0].name != name.rstrip(".").lower() or msg.questions[0].qtype != w.TYPE_A):
                    continue   # not the answer to our question: keep waiting until the timeout
                addrs, ttl = w.follow_a_records(msg, name)
                return UpstreamAnswer(msg.rcode, addrs, ttl)


def system_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The host's own IPv4 nameservers, the natural upstream for the sandbox resolver.

    (The resolver runs in the host's namespace, so a loopback stub such as 127.0.0.53 works.)
    """
    found = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    try:
                        if IPv4Address(parts[1]):
                            found.append(parts[1])
                    except ValueError:
                        continue
    except OSError:
        return []
    return found
