"""Rendered rule sets: the shape of the decisions, and (as root) that nft accepts them."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address, IPv4Network

import pytest

from corral.network.addressing import Slot
from corral.network.nftables import (CarriedUse, SandboxTable, parse_table_json, render_global, render_table,
                                     render_update)
from corral.network.egress_policy import FLOOR_RANGES, from_e2b

from .conftest import CAN_NET

POOL = IPv4Network("10.201.0.0/16")


def table(policy, proxy_port: int = 15443) -> SandboxTable:
    return SandboxTable("abc", "corral-abc", "crh0123456789ab", Slot(POOL, 1), policy, FLOOR_RANGES + (POOL,),
                        proxy_port=proxy_port)


def egress_rules(text: str) -> list[str]:
    block = text.split("chain egress {")[1].split("\n  }")[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_internet_off_ends_in_refuse_and_on_in_permit() -> None:
    off = egress_rules(render_table(table(from_e2b(False, {"allowOut": ["a.test"]}))))
    assert off[-1] == "goto refuse" and "goto permit" not in off[-1]
    on = egress_rules(render_table(table(from_e2b(True, {"denyOut": ["5.0.0.0/8"]}))))
    assert on[-2:] == ["ip daddr @deny_nets goto refuse", "goto permit"]
    # order: floor, narrow private allows, guarded, other allows, pins
    assert [r.split()[2] for r in on[2:7]] == ["@floor", "@guarded_allow", "@guarded", "@open_allow", "@pinned"]
    assert on[0] == "meta nfproto ipv6 drop" and on[1] == "ip saddr != 10.201.0.6 drop"


def test_budget_rules_only_with_a_budget() -> None:
    assert "quota" not in render_table(table(from_e2b(True, None)))
    text = render_table(table(from_e2b(True, None, byte_budget=1234)))
    assert "quota budget { over 1234 bytes used 0 bytes }" in text
    assert 'quota name "budget" goto exhausted' in text and 'quota name "budget" drop' in text
    # a table made again after a filesystem-mode resume goes on from the old one's use
    carried = CarriedUse(budget_used=900, bytes_out=300, packets_out=3, bytes_in=600, packets_in=6)
    again = render_table(table(from_e2b(True, None, byte_budget=1234)), carried)
    assert "quota budget { over 1234 bytes used 900 bytes }" in again
    assert "counter bytes_out { packets 3 bytes 300 }" in again and "counter bytes_in { packets 6 bytes 600 }" in again
    assert CarriedUse.from_json(carried.to_json()) == carried
    with pytest.raises(ValueError):
        CarriedUse.from_json({"budget_used": -1})


def test_dns_is_redirected_to_the_gateway() -> None:
    text = render_table(table(from_e2b(False, None)))
    assert 'iifname "crh0123456789ab" udp dport 53 dnat ip to 10.201.0.5:53' in text
    assert "ip saddr 10.201.0.6 ip daddr 10.201.0.5 udp dport 53 accept" in text


def test_parse_table_json() -> None:
    objs = [{"counter": {"name": "bytes_out", "packets": 3, "bytes": 300}},
            {"quota": {"name": "budget", "bytes": 1000, "used": 400}},
            {"set": {"name": "out_dests", "elem": [{"elem": {"val": "1.2.3.4", "counter": {"packets": 2, "bytes": 99}}}]}},
            {"set": {"name": "denials", "elem": [{"elem": {"val": {"concat": ["5.6.7.8", "tcp", 80]},
                                                           "counter": {"packets": 1, "bytes": 60}}}]}}]
    got = parse_table_json(objs)
    assert got["counters"]["bytes_out"] == {"packets": 3, "bytes": 300}
    assert got["quota"] == {"limit": 1000, "used": 400}
    assert got["sets"]["out_dests"] == [{"value": "1.2.3.4", "packets": 2, "bytes": 99}]
    assert got["sets"]["denials"][0]["value"] == ["5.6.7.8", "tcp", 80]


def test_http_s_to_pinned_addresses_goes_through_the_proxy_only_for_domain_policies() -> None:
    redirect = ('iifname "crh0123456789ab" ip saddr 10.201.0.6 tcp dport { 80, 443 } ip daddr @pinned '
                'ip daddr != @open_allow ip daddr != @guarded_allow dnat ip to 10.201.0.5:15443')
    assert redirect in render_table(table(from_e2b(False, {"allowOut": ["a.test", "1.2.3.4"]})))
    for policy in (from_e2b(True, {"allowOut": ["a.test"]}), from_e2b(False, {"allowOut": ["1.2.3.4"]})):
        assert "dnat ip to 10.201.0.5:15443" not in render_table(table(policy))
    assert "15443" not in render_table(table(from_e2b(False, {"allowOut": ["a.test"]}), proxy_port=0))
    # proxied bytes are accounted (and budgeted) on the sandbox<->proxy leg; only redirected
    # connections may reach the proxy port
    text = render_table(table(from_e2b(False, {"allowOut": ["a.test"]}, byte_budget=10)))
    assert "ip saddr 10.201.0.6 ip daddr 10.201.0.5 tcp dport 15443 ct status dnat goto proxied_out" in text
    assert 'oifname "crh0123456789ab" ip saddr 10.201.0.5 tcp sport 15443 ct status dnat goto proxied_in' in text
    proxied_in = text.split("chain proxied_in {")[1].split("\n  }")[0]
    assert 'quota name "budget" drop' in proxied_in and "add @in_srcs { ct original ip daddr }" in proxied_in


@pytest.mark.root
@pytest.mark.skipif(not CAN_NET, reason="needs root and nft")
def test_nft_accepts_the_rendered_rules() -> None:
    t = table(from_e2b(True, {"allowOut": ["10.5.0.0/16", "1.2.3.4", "a.test"], "denyOut": ["8.8.8.0/24"]},
                       byte_budget=5000))
    t2 = table(from_e2b(False, {"allowOut": ["b.test"]}, byte_budget=100))
    script = (render_global(POOL, "crh") + render_table(t, CarriedUse(budget_used=10, bytes_out=5, packets_out=1))
              + render_update(t2, had_budget=True, budget_used=10, drop_pins=[]))
    # check mode inside a private netns: validated by the kernel, applied nowhere
    subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=script, text=True, check=True,
                   capture_output=True)
    bad = render_table(t).replace("goto refuse", "goto nowhere", 1)
    assert subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=bad, text=True,
                          capture_output=True).returncode != 0
    assert IPv4Address("10.201.0.6") == t.slot.address


@pytest.mark.root
@pytest.mark.skipif(not CAN_NET, reason="needs root and nft")
def test_an_update_adds_the_proxy_chains_to_a_table_from_before_them() -> None:
    old = table(from_e2b(False, {"allowOut": ["a.test"]}), proxy_port=0)
    legacy = render_table(old) + "".join(f"delete chain inet corral-abc {c}\n"
                                         for c in ("output_hook", "proxied_out", "proxied_in"))
    new = table(from_e2b(False, {"allowOut": ["a.test"]}, byte_budget=100))
    script = legacy + render_update(new, had_budget=False, budget_used=0, drop_pins=[])
    script += render_update(new, had_budget=True, budget_used=5, drop_pins=[])   # and again, now present
    out = subprocess.run(["unshare", "--net", "sh", "-c", "nft -f - && nft list table inet corral-abc"],
                         input=script, text=True, check=True, capture_output=True).stdout
    assert "hook output" in out and "chain proxied_in" in out and "dnat ip to 10.201.0.5:15443" in out
