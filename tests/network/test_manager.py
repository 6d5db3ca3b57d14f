"""End-to-end behaviour of NetworkManager against a fake internet built in test namespaces."""

from __future__ import annotations

import pytest

from corral.network import NO_EGRESS, NetworkManager, NotAttached, from_e2b
from corral.network.addressing import host_ifname, table_name

from .fakenet import (API_IP, BULK_BYTES, DNS_IP, LAN_IP, METADATA_IP, OTHER_IP, RAW_IP, WORLD_IP, FakeInternet,
                      connects, exchange, http_get, refused, resolve, sh)

pytestmark = pytest.mark.root

NXDOMAIN = 3
TMDB = {"allowOut": ["api.themoviedb.test"]}


async def attach(m: NetworkManager, net: FakeInternet, sid: str, policy):
    path = net.new_sandbox_netns()
    att = await m.attach(sid, policy, netns_path=path)
    return path, att


async def test_a_sandbox_without_attachment_reaches_nothing(internet: FakeInternet) -> None:
    sbx = internet.new_sandbox_netns()
    for ip, port in ((API_IP, 80), (WORLD_IP, 8000), (DNS_IP, 53), ("127.0.0.1", 8000)):
        assert not await connects(sbx, ip, port)


async def test_internet_off_every_connection_fails(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, att = await attach(manager, internet, "off1", from_e2b(False, None))
    for ip, port in ((API_IP, 80), (API_IP, 443), (OTHER_IP, 7000), (RAW_IP, 80), (WORLD_IP, 8000),
                     (str(att.gateway), 8000), (LAN_IP, 80), (METADATA_IP, 80)):
        assert not await connects(sbx, ip, port), (ip, port)
    assert (await resolve(sbx, "api.themoviedb.test", str(att.nameserver)))[0] == NXDOMAIN
    assert internet.dns.asked == []   # a name the policy does not allow never leaves the host


async def test_allowed_domain_works_on_any_port_while_others_fail(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, att = await attach(manager, internet, "dom1", from_e2b(False, TMDB))
    # before the name is resolved its address is not reachable
    assert not await connects(sbx, API_IP, 7000)
    assert await resolve(sbx, "api.themoviedb.test", str(att.nameserver)) == (0, [API_IP])
    assert "hello from " + API_IP in await http_get(sbx, API_IP, 80, host="api.themoviedb.test")
    assert "hello from " + API_IP in await http_get(sbx, API_IP, 443, host="api.themoviedb.test", tls=True)
    assert await exchange(sbx, API_IP, 7000, b"echo me") == b"echo me"
    # another name, and raw addresses, stay closed
    assert (await resolve(sbx, "other.test", str(att.nameserver)))[0] == NXDOMAIN
    for ip, port in ((OTHER_IP, 80), (OTHER_IP, 7000), (RAW_IP, 80)):
        assert not await connects(sbx, ip, port), (ip, port)


async def test_dns_to_any_server_is_answered_by_our_resolver(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, _ = await attach(manager, internet, "dns1", from_e2b(False, TMDB))
    # the sandbox asks the upstream server directly: the policy still answers
    assert (await resolve(sbx, "other.test", DNS_IP))[0] == NXDOMAIN
    assert (await resolve(sbx, "other.test", RAW_IP))[0] == NXDOMAIN
    assert await resolve(sbx, "api.themoviedb.test", DNS_IP) == (0, [API_IP])
    assert "other.test" not in internet.dns.asked


async def test_wildcard_and_cname(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, att = await attach(manager, internet, "wild1", from_e2b(False, {"allowOut": ["*.themoviedb.test"]}))
    assert await resolve(sbx, "alias.themoviedb.test", str(att.nameserver)) == (0, [API_IP])
    assert await exchange(sbx, API_IP, 7000, b"x") == b"x"


async def test_dns_rebinding_is_refused(manager: NetworkManager, internet: FakeInternet) -> None:
    _, other = await attach(manager, internet, "victim1", from_e2b(True, None))
    internet.dns.records["sbx.rebind.test"] = [str(other.address)]
    internet.dns.records["gw.rebind.test"] = [str(other.gateway)]
    sbx, att = await attach(manager, internet, "rebind1", from_e2b(False, {"allowOut": ["*.rebind.test"]}))
    ns = str(att.nameserver)
    for name in ("loop.rebind.test", "lan.rebind.test", "meta.rebind.test", "sbx.rebind.test", "gw.rebind.test"):
        assert (await resolve(sbx, name, ns))[0] == NXDOMAIN, name
    for ip, port in (("127.0.0.1", 8000), (LAN_IP, 80), (METADATA_IP, 80), (str(other.address), 80)):
        assert not await connects(sbx, ip, port), ip
    # a mixed answer keeps only the acceptable address
    assert await resolve(sbx, "mixed.rebind.test", ns) == (0, [OTHER_IP])
    assert await exchange(sbx, OTHER_IP, 7000, b"ok") == b"ok"
    report = await manager.audit("rebind1")
    by_name = {d["name"]: d for d in report["dns"]}
    assert by_name["loop.rebind.test"]["allowed"] is False
    assert "rebinding" in by_name["meta.rebind.test"]["reason"]


async def test_host_private_metadata_and_other_sandboxes_blocked_even_with_internet(
        manager: NetworkManager, internet: FakeInternet) -> None:
    other_sbx, other = await attach(manager, internet, "peer2", from_e2b(True, None))
    await internet.serve_tcp(other_sbx, str(other.address), 9000, _echo_once)
    sbx, att = await attach(manager, internet, "open2", from_e2b(True, None))
    assert await exchange(sbx, RAW_IP, 7000, b"hi") == b"hi"          # the internet is open
    assert (await resolve(sbx, "other.test", str(att.nameserver)))[1] == [OTHER_IP]
    for ip, port in ((WORLD_IP, 8000), (str(att.gateway), 8000), (str(other.gateway), 8000), (METADATA_IP, 80),
                     (LAN_IP, 80), (str(other.address), 9000), (str(att.gateway), 53)):
        assert not await connects(sbx, ip, port), (ip, port)
    # the peer itself reaches its own service (the guard is about crossing sandboxes)
    assert await exchange(other_sbx, str(other.address), 9000, b"me") == b"me"
    # an explicit CIDR opens a private host; a broad one does not open the metadata service
    await manager.update("open2", from_e2b(True, {"allowOut": [f"{LAN_IP}/32", "0.0.0.0/0"]}))
    assert "hello from " + LAN_IP in await http_get(sbx, LAN_IP)
    assert not await connects(sbx, METADATA_IP, 80)
    assert not await connects(sbx, str(other.address), 9000)
    # no IPv6 on the sandbox's link: no link-local path to the host
    assert "inet6" not in sh("nsenter", f"--net={sbx}", "ip", "-6", "addr", "show", "dev", "eth0")


async def _echo_once(reader, writer) -> None:
    writer.write(await reader.read(100))
    await writer.drain()
    writer.close()


async def test_deny_cidr_and_allow_beats_deny(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, _ = await attach(manager, internet, "deny3", from_e2b(True, {"denyOut": ["198.18.1.0/24"]}))
    assert not await connects(sbx, RAW_IP, 7000)
    assert await exchange(sbx, DNS_IP, 80, b"GET / HTTP/1.0\r\n\r\n")  # outside the denied /24
    await manager.update("deny3", from_e2b(True, {"denyOut": ["198.18.1.0/24"], "allowOut": [f"{RAW_IP}"]}))
    assert await exchange(sbx, RAW_IP, 7000, b"y") == b"y"
    assert not await connects(sbx, OTHER_IP, 7000)


async def test_runtime_updates_take_effect(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, att = await attach(manager, internet, "upd4", from_e2b(False, TMDB))
    ns = str(att.nameserver)
    assert await resolve(sbx, "api.themoviedb.test", ns) == (0, [API_IP])
    assert await exchange(sbx, API_IP, 7000, b"1") == b"1"
    await manager.update("upd4", from_e2b(False, {"allowOut": ["other.test"]}))
    assert not await connects(sbx, API_IP, 7000)          # the old pin is gone
    assert (await resolve(sbx, "api.themoviedb.test", ns))[0] == NXDOMAIN
    assert await resolve(sbx, "other.test", ns) == (0, [OTHER_IP])
    assert await exchange(sbx, OTHER_IP, 7000, b"2") == b"2"
    await manager.update("upd4", from_e2b(True, None))
    assert await exchange(sbx, RAW_IP, 7000, b"3") == b"3"
    await manager.update("upd4", NO_EGRESS)
    for ip in (RAW_IP, OTHER_IP, API_IP):
        assert not await connects(sbx, ip, 7000)


async def test_a_connection_open_when_its_rule_is_removed_is_cut(manager: NetworkManager, internet: FakeInternet) -> None:
    import asyncio
    import socket

    from corral.network.netns import make_socket
    sbx, _ = await attach(manager, internet, "cut5", from_e2b(False, {"allowOut": [RAW_IP]}))
    loop = asyncio.get_running_loop()
    sock = make_socket(sbx, socket.AF_INET, socket.SOCK_STREAM)
    await loop.sock_connect(sock, (RAW_IP, 7000))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"a")
    assert await reader.read(10) == b"a"
    await manager.update("cut5", NO_EGRESS)
    writer.write(b"b")
    assert await refused(_read_or_fail(reader, writer))
    writer.close()


async def _read_or_fail(reader, writer) -> None:
    import asyncio
    await writer.drain()
    data = await asyncio.wait_for(reader.read(10), 3)
    if not data:
        raise ConnectionResetError("closed")


async def test_audit_shows_hosts_bytes_and_denied_attempts(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, att = await attach(manager, internet, "aud6", from_e2b(False, TMDB))
    ns = str(att.nameserver)
    await resolve(sbx, "api.themoviedb.test", ns)
    await resolve(sbx, "other.test", ns)
    assert await exchange(sbx, API_IP, 7000, b"z" * 1000) == b"z" * 1000
    assert not await connects(sbx, OTHER_IP, 7000)
    assert not await connects(sbx, WORLD_IP, 8000)
    report = await manager.audit("aud6")
    assert report["address"] == str(att.address)
    hosts = {h["ip"]: h for h in report["hosts"]}
    assert set(hosts) == {API_IP}
    assert hosts[API_IP]["names"] == ["api.themoviedb.test"]
    assert hosts[API_IP]["bytes_out"] > 1000 and hosts[API_IP]["bytes_in"] > 1000
    assert report["bytes_out"] >= hosts[API_IP]["bytes_out"]
    denied = {(d["ip"], d["port"]) for d in report["denied"]}
    assert (OTHER_IP, 7000) in denied and (WORLD_IP, 8000) in denied
    assert report["denied_attempts"] >= 2
    names = {d["name"]: d for d in report["dns"]}
    assert names["api.themoviedb.test"]["allowed"] and names["api.themoviedb.test"]["addresses"] == [API_IP]
    assert names["other.test"]["allowed"] is False
    assert report["budget"] is None
    # the pin outlives the DNS TTL while traffic flows: each packet refreshes it to pin_idle
    assert [(p["ip"], p["expires_in"] > 200) for p in report["pinned"]] == [(API_IP, True)]


async def test_byte_budget_cuts_egress(manager: NetworkManager, internet: FakeInternet) -> None:
    budget = 50_000
    sbx, _ = await attach(manager, internet, "bud7", from_e2b(False, {"allowOut": [RAW_IP]}, byte_budget=budget))
    assert await exchange(sbx, RAW_IP, 7000, b"small") == b"small"
    try:
        got = len(await exchange(sbx, RAW_IP, 7001, b"g", read_all=True))
    except (OSError, TimeoutError):
        got = 0
    assert got < BULK_BYTES            # the download was cut part-way
    report = await manager.audit("bud7")
    assert report["budget"]["exhausted"] and report["budget"]["limit"] == budget
    assert not await connects(sbx, RAW_IP, 7000)
    # raising the budget at runtime keeps what was used and reopens egress
    await manager.update("bud7", from_e2b(False, {"allowOut": [RAW_IP]}, byte_budget=10 * BULK_BYTES))
    report = await manager.audit("bud7")
    assert report["budget"]["used"] >= budget and not report["budget"]["exhausted"]
    assert await exchange(sbx, RAW_IP, 7000, b"again") == b"again"


async def test_detach_leaves_nothing_behind(manager: NetworkManager, internet: FakeInternet) -> None:
    sbx, att = await attach(manager, internet, "gone8", from_e2b(False, TMDB))
    await resolve(sbx, "api.themoviedb.test", str(att.nameserver))
    await manager.detach("gone8")
    world = internet.world_path
    assert host_ifname("gone8") not in sh("nsenter", f"--net={world}", "ip", "-o", "link")
    assert str(att.gateway) not in sh("nsenter", f"--net={world}", "ip", "-o", "addr")
    assert table_name("gone8") not in sh("nsenter", f"--net={world}", "nft", "list", "tables")
    assert len(sh("nsenter", f"--net={sbx}", "ip", "-o", "link").splitlines()) == 1     # lo only
    assert not list(manager.state.dir.glob("*"))
    assert await manager.leftovers() == set()
    with pytest.raises(KeyError):
        await manager.audit("gone8")
    await manager.detach("gone8")      # twice is fine


async def test_restart_readopts_complete_and_removes_broken(internet: FakeInternet, tmp_path) -> None:
    from .conftest import new_manager
    state = tmp_path / "net"
    m1 = new_manager(internet, state)
    await m1.start()
    sbx_a, att_a = await attach(m1, internet, "keep9", from_e2b(False, TMDB))
    _, _ = await attach(m1, internet, "lost9", from_e2b(True, None))
    await resolve(sbx_a, "api.themoviedb.test", str(att_a.nameserver))
    await m1.close()                                     # the server dies; the kernel keeps its state
    world = internet.world_path
    sh("nsenter", f"--net={world}", "ip", "link", "del", host_ifname("lost9"))   # half gone meanwhile
    m2 = new_manager(internet, state)
    assert await m2.leftovers() == {"keep9", "lost9"}
    await m2.start()
    try:
        assert await m2.leftovers() == set() and m2.attached() == {"keep9"}
        assert m2.attachment("keep9") == att_a
        assert m2.attachment("lost9") is None
        assert table_name("lost9") not in sh("nsenter", f"--net={world}", "nft", "list", "tables")
        assert await exchange(sbx_a, API_IP, 7000, b"still") == b"still"    # pinned before the restart
        assert await resolve(sbx_a, "api.themoviedb.test", str(att_a.nameserver)) == (0, [API_IP])
        assert (await resolve(sbx_a, "other.test", str(att_a.nameserver)))[0] == NXDOMAIN
        # the next sandbox does not get keep9's addresses
        _, att_new = await attach(m2, internet, "new9", from_e2b(True, None))
        assert att_new.address != att_a.address
        report = await m2.audit("keep9")
        assert "api.themoviedb.test" in [d["name"] for d in report["dns"]]   # recorded before the restart
    finally:
        await m2.shutdown()
    assert "corral" not in sh("nsenter", f"--net={world}", "nft", "list", "tables")
    assert "crh" not in sh("nsenter", f"--net={world}", "ip", "-o", "link")


async def test_concurrent_attaches_get_distinct_slots(manager: NetworkManager, internet: FakeInternet) -> None:
    import asyncio
    paths = [internet.new_sandbox_netns() for _ in range(8)]
    atts = await asyncio.gather(*(manager.attach(f"par{i}", from_e2b(True, None), netns_path=p)
                                  for i, p in enumerate(paths)))
    assert len({a.address for a in atts}) == 8
    for p in paths:
        assert await exchange(p, RAW_IP, 7000, b"p") == b"p"
    with pytest.raises(RuntimeError, match="already attached"):
        await manager.attach("par0", NO_EGRESS, netns_path=paths[0])
    await asyncio.gather(*(manager.detach(f"par{i}") for i in range(8)))
    assert "crh" not in sh("nsenter", f"--net={internet.world_path}", "ip", "-o", "link")


async def test_bad_attach_arguments_leave_nothing(manager: NetworkManager, internet: FakeInternet) -> None:
    with pytest.raises(ValueError):
        await manager.attach("Bad-Id", NO_EGRESS, netns_path=internet.new_sandbox_netns())
    with pytest.raises(FileNotFoundError):
        await manager.attach("nons", NO_EGRESS, netns_path="/run/netns/does-not-exist")
    with pytest.raises(ValueError):
        await manager.attach("nopid", NO_EGRESS)
    with pytest.raises(KeyError):
        await manager.update("never", NO_EGRESS)
    with pytest.raises(NotAttached) as exc:
        await manager.audit("never")
    assert exc.value.status == 404
    with pytest.raises(TypeError):
        await manager.attach("typed", {"allowOut": ["0.0.0.0/0"]}, netns_path=internet.new_sandbox_netns())  # type: ignore[arg-type]
    assert await manager.leftovers() == set()
    assert not list(manager.state.dir.glob("*"))


async def test_resolver_survives_garbage_from_the_sandbox(manager: NetworkManager, internet: FakeInternet) -> None:
    import asyncio
    import socket

    from corral.network.netns import make_socket
    sbx, att = await attach(manager, internet, "junk1", from_e2b(False, TMDB))
    loop = asyncio.get_running_loop()
    sock = make_socket(sbx, socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await loop.sock_connect(sock, (str(att.nameserver), 53))
        for junk in (b"", b"\x00", b"\xff" * 12, b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",
                     bytes(range(256)) * 2):
            await loop.sock_sendall(sock, junk)
    assert await resolve(sbx, "api.themoviedb.test", str(att.nameserver)) == (0, [API_IP])


async def test_a_failed_attach_is_rolled_back(manager: NetworkManager, internet: FakeInternet) -> None:
    from corral.network.commands import CommandError
    sbx = internet.new_sandbox_netns()
    sh("nsenter", f"--net={sbx}", "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    with pytest.raises(CommandError):
        await manager.attach("fail1", from_e2b(True, None), netns_path=sbx)
    world = internet.world_path
    assert host_ifname("fail1") not in sh("nsenter", f"--net={world}", "ip", "-o", "link")
    assert table_name("fail1") not in sh("nsenter", f"--net={world}", "nft", "list", "tables")
    assert "crp" not in sh("nsenter", f"--net={sbx}", "ip", "-o", "link")
    assert await manager.leftovers() == set() and not list(manager.state.dir.glob("*"))
    # the slot is free again and a retry after fixing the sandbox works
    sh("nsenter", f"--net={sbx}", "ip", "link", "del", "eth0")
    await manager.attach("fail1", from_e2b(True, None), netns_path=sbx)
    assert await exchange(sbx, RAW_IP, 7000, b"r") == b"r"
