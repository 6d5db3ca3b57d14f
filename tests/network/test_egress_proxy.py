"""SNI/Host checks: two sites on one address, only the allowed one is reachable over HTTP(S).

In the fake internet `api.themoviedb.test` and `cdn-other.test` share API_IP, like two sites
behind one CDN address.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess

import pytest

from corral.network import NetworkManager, from_e2b
from corral.network.netns import make_socket

from .fakenet import API_IP, BULK_BYTES, RAW_IP, WORLD_IP, FakeInternet, _http, connects, exchange, http_get, refused, resolve

pytestmark = pytest.mark.root

TMDB = {"allowOut": ["api.themoviedb.test"]}


async def domain_sandbox(m: NetworkManager, net: FakeInternet, sid: str, network=TMDB, **kw):
    path = net.new_sandbox_netns()
    att = await m.attach(sid, from_e2b(False, network, **kw), netns_path=path)
    assert await resolve(path, "api.themoviedb.test", str(att.nameserver)) == (0, [API_IP])
    return path, att


async def tls_open(netns: str, ip: str, sni: str | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    sock = make_socket(netns, socket.AF_INET, socket.SOCK_STREAM)
    await asyncio.wait_for(loop.sock_connect(sock, (ip, 443)), 5)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return await asyncio.wait_for(asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=sni or ""), 5)


async def curl(netns: str, *args: str) -> tuple[int, str]:
    """curl inside the sandbox's netns (asynchronously: the proxy runs in this event loop)."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns}", "curl", "-sSk", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", *args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_sni_decides_between_sites_sharing_an_address(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "sni1")
    assert "hello from " + API_IP in await http_get(sbx, API_IP, 443, host="api.themoviedb.test", tls=True)
    # same address, another site's name: the TLS handshake never reaches the server
    assert await refused(http_get(sbx, API_IP, 443, host="cdn-other.test", tls=True))
    # no SNI at all is no name
    assert await refused(tls_open(sbx, API_IP, None))
    report = await manager.audit("sni1")
    denied = report["names_checked"]["denied"]
    assert {"ip": API_IP, "port": 443, "protocol": "tls", "name": "cdn-other.test", "reason": "name not allowed",
            "count": 1} in denied
    assert any(d["name"] is None and d["reason"] == "no server name (SNI)" for d in denied)
    assert report["names_checked"]["allowed"] == [{"ip": API_IP, "port": 443, "protocol": "tls",
                                                   "name": "api.themoviedb.test", "count": 1}]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_curl_with_resolve_to_the_shared_address_is_refused(manager: NetworkManager,
                                                                  internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "sni2")
    assert await curl(sbx, "--resolve", f"api.themoviedb.test:443:{API_IP}", "https://api.themoviedb.test/") == (0, "200")
    code, status = await curl(sbx, "--resolve", f"cdn-other.test:443:{API_IP}", "https://cdn-other.test/")
    assert code != 0 and status == "000"
    # plain HTTP to the shared address with the other site's name: 403 from the proxy
    assert await curl(sbx, "--resolve", f"cdn-other.test:80:{API_IP}", "http://cdn-other.test/") == (0, "403")


async def test_host_header_decides_on_port_80(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "host1")
    assert "hello from " + API_IP in await http_get(sbx, API_IP, 80, host="api.themoviedb.test")
    assert "hello from " + API_IP in await http_get(sbx, API_IP, 80, host="API.themoviedb.test:80")
    answer = await http_get(sbx, API_IP, 80, host="cdn-other.test")
    assert answer.startswith("HTTP/1.1 403 ") and "hello from" not in answer
    # the address literal of the pinned destination names no other site: allowed (see NETWORK.md)
    assert "hello from " + API_IP in await http_get(sbx, API_IP, 80, host=API_IP)
    assert (await http_get(sbx, API_IP, 80, host=RAW_IP)).startswith("HTTP/1.1 403 ")
    # no Host, or two of them
    for head in (b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: api.themoviedb.test\r\nHost: cdn-other.test\r\n\r\n"):
        assert (await exchange(sbx, API_IP, 80, head, read_all=True)).startswith(b"HTTP/1.1 403 ")
    report = await manager.audit("host1")
    denied = {(d["name"], d["reason"]) for d in report["names_checked"]["denied"]}
    assert ("cdn-other.test", "name not allowed") in denied
    assert (None, "no usable Host header") in denied
    assert all(d["protocol"] == "http" and d["port"] == 80 for d in report["names_checked"]["denied"])


async def test_other_ports_of_a_pinned_address_keep_the_direct_path(manager: NetworkManager,
                                                                    internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "port1")
    assert await exchange(sbx, API_IP, 7000, b"any bytes") == b"any bytes"
    assert (await manager.audit("port1"))["names_checked"]["denied"] == []


async def test_cidr_rules_need_no_name(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "cidr1", {"allowOut": ["api.themoviedb.test", RAW_IP]})
    # TLS without SNI and HTTP with a foreign Host to a CIDR-allowed address both go through
    reader, writer = await tls_open(sbx, RAW_IP, None)
    writer.write(b"GET / HTTP/1.0\r\nHost: whatever\r\n\r\n")
    assert b"hello from " + RAW_IP.encode() in await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert "hello from " + RAW_IP in await http_get(sbx, RAW_IP, 80, host="cdn-other.test")


async def test_unpinned_addresses_and_the_host_stay_closed(manager: NetworkManager, internet: FakeInternet) -> None:
    internet.dns.records["host.test"] = [WORLD_IP]
    await internet.serve_tcp(internet.world_path, "0.0.0.0", 80, _http)
    sbx, att = await domain_sandbox(manager, internet, "clos1", {"allowOut": ["api.themoviedb.test", "host.test"]})
    # a name that resolves to the host itself is pinned, but the proxy never connects to the host
    assert await resolve(sbx, "host.test", str(att.nameserver)) == (0, [WORLD_IP])
    answer = await http_get(sbx, WORLD_IP, 80, host="host.test")
    assert answer.startswith("HTTP/1.1 403 ") and "hello from" not in answer
    assert {"ip": WORLD_IP, "port": 80, "protocol": "http", "name": "host.test",
            "reason": "destination is an address of the host", "count": 1} in \
        (await manager.audit("clos1"))["names_checked"]["denied"]
    # not pinned: refused by the forward path as before, even with an allowed name
    assert not await connects(sbx, RAW_IP, 443)
    assert await refused(http_get(sbx, RAW_IP, 80, host="api.themoviedb.test"))
    # the proxy's own port on the gateway cannot be used directly
    assert not await connects(sbx, str(att.gateway), manager.proxy_port)


async def test_proxied_bytes_are_counted_and_the_budget_cuts_them(manager: NetworkManager,
                                                                  internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "bud1")
    body = await http_get(sbx, API_IP, 80, host="api.themoviedb.test", path="/bulk")
    assert body.endswith("x" * BULK_BYTES)
    report = await manager.audit("bud1")
    assert report["bytes_in"] > BULK_BYTES
    host = next(h for h in report["hosts"] if h["ip"] == API_IP)
    assert host["bytes_in"] > BULK_BYTES and host["names"] == ["api.themoviedb.test"]

    sbx2, _ = await domain_sandbox(manager, internet, "bud2", byte_budget=50_000)
    assert await refused(http_get(sbx2, API_IP, 80, host="api.themoviedb.test", path="/bulk"))
    report = await manager.audit("bud2")
    assert report["budget"]["exhausted"]
    assert report["bytes_in"] < BULK_BYTES


async def test_an_update_cuts_proxied_connections_it_no_longer_allows(manager: NetworkManager,
                                                                      internet: FakeInternet) -> None:
    sbx, _ = await domain_sandbox(manager, internet, "upd1")
    reader, writer = await tls_open(sbx, API_IP, "api.themoviedb.test")   # handshake done, request not sent
    await manager.update("upd1", from_e2b(False, {"allowOut": ["other.test"]}))
    assert await refused(_request_on(reader, writer))
    # while a policy that still allows the name keeps an open connection
    sbx2, _ = await domain_sandbox(manager, internet, "upd2")
    reader, writer = await tls_open(sbx2, API_IP, "api.themoviedb.test")
    await manager.update("upd2", from_e2b(False, {"allowOut": ["api.themoviedb.test", "other.test"]}))
    assert b"hello from" in await _request_on(reader, writer)


async def _request_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: api.themoviedb.test\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
        if not data:
            raise ConnectionResetError("closed without an answer")
        return data
    finally:
        writer.close()


async def test_names_are_still_checked_after_a_restart(internet: FakeInternet, tmp_path) -> None:
    from .conftest import new_manager
    m1 = new_manager(internet, tmp_path / "net")
    await m1.start()
    try:
        sbx, _ = await domain_sandbox(m1, internet, "rst1")
    except BaseException:
        await m1.shutdown()
        raise
    await m1.close()                       # the server dies; kernel pins and rules stay
    m2 = new_manager(internet, tmp_path / "net")
    await m2.start()
    try:
        # no new DNS query: the pin from before the restart, and the names that made it, are re-adopted
        assert "hello from " + API_IP in await http_get(sbx, API_IP, 443, host="api.themoviedb.test", tls=True)
        assert (await http_get(sbx, API_IP, 80, host="cdn-other.test")).startswith("HTTP/1.1 403 ")
        await m2.close()                   # and once more: the record of decisions survives too
        m3 = new_manager(internet, tmp_path / "net")
        await m3.start()
        m2 = m3
        checked = (await m3.audit("rst1"))["names_checked"]
        assert [d["name"] for d in checked["denied"]] == ["cdn-other.test"]
        assert [a["name"] for a in checked["allowed"]] == ["api.themoviedb.test"]
    finally:
        await m2.shutdown()
    assert not await connects(sbx, API_IP, 443)


async def test_proxied_traffic_keeps_its_pin_alive(internet: FakeInternet, tmp_path) -> None:
    from .conftest import new_manager
    m = new_manager(internet, tmp_path / "net", pin_idle_seconds=3000)    # pins start at ~150 s
    await m.start()
    try:
        sbx, _ = await domain_sandbox(m, internet, "pin1")
        [before] = (await m.audit("pin1"))["pinned"]
        assert before["expires_in"] < 1000
        assert "hello from " + API_IP in await http_get(sbx, API_IP, 443, host="api.themoviedb.test", tls=True)
        [after] = (await m.audit("pin1"))["pinned"]
        assert after["ip"] == API_IP and after["expires_in"] > 1000        # refreshed to pin_idle
    finally:
        await m.shutdown()


def test_the_decision_record_is_bounded_and_tolerates_damage() -> None:
    from ipaddress import IPv4Address

    from corral.network.audit import MAX_NAMES, ProxyLog
    plog = ProxyLog()
    for i in range(MAX_NAMES + 10):
        plog.note(IPv4Address(API_IP), 443, "tls", f"n{i}.test", "name not allowed")
    plog.note(IPv4Address(API_IP), 443, "tls", "n0.test", "name not allowed")     # known: still counted
    assert len(plog.entries) == MAX_NAMES and plog.dropped == 10
    assert plog.entries[(API_IP, 443, "tls", "n0.test", "name not allowed")] == 2
    again = ProxyLog({"entries": [{"ip": "1.2.3.4"}, None, *plog.to_json()["entries"][:3]], "dropped": 1})
    assert len(again.entries) == 3 and again.report()["not_recorded"] == 1
