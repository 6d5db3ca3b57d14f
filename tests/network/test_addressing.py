from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from corral.network.addressing import (IFNAMSIZ, PoolExhausted, Slot, SlotAllocator, host_ifname, peer_ifname, sandbox_from_table,
                                       table_name)


def test_names_fit_ifnamsiz_and_differ() -> None:
    sid = "a" * 64
    assert len(host_ifname(sid)) <= IFNAMSIZ and len(peer_ifname(sid)) <= IFNAMSIZ
    assert host_ifname(sid) != peer_ifname(sid) != host_ifname("b" * 64)
    assert sandbox_from_table(table_name("abc123")) == "abc123"
    assert sandbox_from_table("corral_1234") is None and sandbox_from_table("other") is None


@pytest.mark.parametrize("bad", ["", "A", "a-b", "a.b", "a/b", "a" * 65, "a b", "x\n"])
def test_bad_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        table_name(bad)
    with pytest.raises(ValueError):
        host_ifname(bad)


def test_slots() -> None:
    s = Slot(IPv4Network("10.201.0.0/16"), 3)
    assert s.network == IPv4Network("10.201.0.12/30")
    assert (s.gateway, s.address) == (IPv4Address("10.201.0.13"), IPv4Address("10.201.0.14"))


def test_allocator_does_not_reuse_a_freed_slot_at_once_and_runs_out_cleanly() -> None:
    a = SlotAllocator(IPv4Network("10.0.0.0/28"))      # 4 slots
    first = a.allocate()
    a.release(first.index)
    assert a.allocate().index != first.index
    a.take(3)
    assert {a.allocate().index, a.allocate().index} == {0, 2}
    with pytest.raises(PoolExhausted, match="exhausted") as exc:
        a.allocate()
    assert exc.value.status == 503     # reaches the API as "try again later", not a 500
    with pytest.raises(ValueError):
        a.take(4)
    with pytest.raises(ValueError):
        SlotAllocator(IPv4Network("10.0.0.0/31"))
