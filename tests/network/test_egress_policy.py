"""Parsing every way of asking for egress into one EgressPolicy, and the reference decision."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from corral.errors import CorralError
from corral.network.egress_policy import (FLOOR_RANGES, NO_EGRESS, DomainRule, EgressPolicy, NetworkPolicyError,
                                          answer_acceptable, destination_allowed, from_e2b, from_spec, narrow)

POOL = IPv4Network("10.201.0.0/16")
FLOOR = FLOOR_RANGES + (POOL,)


def ok(policy: EgressPolicy, ip: str, pinned: bool = False) -> bool:
    return destination_allowed(policy, IPv4Address(ip), floor=FLOOR, pinned=pinned)


def test_default_is_no_egress() -> None:
    assert from_e2b() == NO_EGRESS
    assert not from_e2b().grants_egress
    assert not from_spec().grants_egress
    assert from_e2b(default_internet=True).internet


def test_e2b_fields() -> None:
    p = from_e2b(False, {"allowOut": ["api.themoviedb.test", "*.Example.COM.", "1.2.3.4", "8.8.8.0/24"],
                         "denyOut": ["0.0.0.0/0"]})
    assert not p.internet
    assert p.allow_domains == (DomainRule("api.themoviedb.test"), DomainRule("example.com", wildcard=True))
    assert p.allow_nets == (IPv4Network("1.2.3.4/32"), IPv4Network("8.8.8.0/24"))
    assert p.grants_egress
    # denyOut 0.0.0.0/0 closes the internet as allow_internet_access=False does
    assert not from_e2b(True, {"denyOut": ["0.0.0.0/0"]}).internet
    q = from_e2b(True, {"deny_out": ["5.6.7.0/24"]})
    assert q.internet and q.deny_nets == (IPv4Network("5.6.7.0/24"),)
    # allowOut 0.0.0.0/0 means everything
    assert from_e2b(False, {"allowOut": ["0.0.0.0/0"]}).internet
    # inbound settings of the same object are not egress rules
    assert from_e2b(True, {"allowPublicTraffic": False, "maskRequestHost": "x"}).internet


@pytest.mark.parametrize("network, fragment", [
    ({"denyOut": ["example.com"]}, "deny rules take IP addresses or CIDRs only"),
    ({"allowOut": ["https://api.x.com/"]}, "not a host name"),
    ({"allowOut": ["api.x.com:443"]}, "ports are not part of a rule"),
    ({"allowOut": ["2001:db8::/32"]}, "IPv6 is not supported"),
    ({"allowOut": ["999.1.1.1"]}, "not a valid IPv4 address"),
    ({"allowOut": ["*"]}, "is not a rule"),
    ({"allowOut": ["*.com"]}, "at least two labels"),
    ({"allowOut": ["a.*.com"]}, "only allowed as the first label"),
    ({"allowOut": ["bücher.de"]}, "punycode"),
    ({"allowOut": ["-bad-.com"]}, "not a valid host name"),
    ({"allowOut": ["a" * 64 + ".com"]}, "not a valid host name"),
    ({"allowOut": [""]}, "empty entry"),
    ({"allowOut": "example.com"}, "expected a list"),
    ({"allowOut": [3]}, "must be a string"),
    ({"allowOut": ["x.com"] * 600}, "at most"),
    ({"allow": ["x.com"]}, "unknown field"),
])
def test_bad_input_is_refused_with_a_message(network, fragment) -> None:
    with pytest.raises(NetworkPolicyError, match=fragment.replace("*", r"\*")):
        from_e2b(True, network)


def test_bad_scalars() -> None:
    with pytest.raises(NetworkPolicyError):
        from_e2b("yes", None)  # type: ignore[arg-type]
    with pytest.raises(NetworkPolicyError):
        from_e2b(True, ["x"])  # type: ignore[arg-type]
    for budget in (0, -1, True, 1.5, "10"):
        with pytest.raises(NetworkPolicyError, match="byte_budget"):
            from_e2b(True, None, byte_budget=budget)  # type: ignore[arg-type]


def test_spec_fields() -> None:
    p = from_spec(True, ["api.ruvector.io", "api.justwatch.com", "api.themoviedb.org"])
    assert not p.internet and len(p.allow_domains) == 3
    assert from_spec(True, []).internet
    with pytest.raises(NetworkPolicyError, match="needs internet_access"):
        from_spec(False, ["api.x.com"])


def test_domain_matching() -> None:
    exact, wild = DomainRule("api.x.com"), DomainRule("x.com", wildcard=True)
    assert exact.matches("API.x.com.") and not exact.matches("a.api.x.com")
    assert wild.matches("a.x.com") and wild.matches("a.b.x.com")
    assert not wild.matches("x.com") and not wild.matches("evilx.com") and not wild.matches("x.com.evil.net")


def test_floor_is_never_reachable() -> None:
    everything = from_e2b(True, {"allowOut": ["127.0.0.0/8", "10.201.0.0/16", "224.0.0.1", "0.0.0.0/0"]})
    for ip in ("127.0.0.1", "10.201.0.6", "10.201.3.1", "224.0.0.1", "255.255.255.255", "0.0.0.0"):
        assert not ok(everything, ip, pinned=True), ip


def test_guarded_ranges_need_a_narrow_cidr() -> None:
    open_ = from_e2b(True, None)
    for ip in ("169.254.169.254", "10.0.0.1", "172.16.5.5", "192.168.1.1", "100.64.0.1"):
        assert not ok(open_, ip), ip
        assert not ok(open_, ip, pinned=True), ip
    assert ok(open_, "198.18.1.1")
    broad = from_e2b(False, {"allowOut": ["0.0.0.0/1", "128.0.0.0/1"]})
    assert not ok(broad, "169.254.169.254") and not ok(broad, "10.1.1.1") and ok(broad, "8.8.8.8")
    narrow_ = from_e2b(False, {"allowOut": ["10.5.0.0/16"]})
    assert ok(narrow_, "10.5.1.1") and not ok(narrow_, "10.6.1.1")


def test_allow_beats_deny_and_internet_off_denies() -> None:
    p = from_e2b(True, {"allowOut": ["5.6.7.8"], "denyOut": ["5.6.7.0/24"]})
    assert ok(p, "5.6.7.8") and not ok(p, "5.6.7.9") and ok(p, "9.9.9.9")
    off = from_e2b(False, {"allowOut": ["api.x.com"]})
    assert not ok(off, "9.9.9.9") and ok(off, "9.9.9.9", pinned=True)


def test_rebinding_guard() -> None:
    p = from_e2b(False, {"allowOut": ["*.x.com", "192.168.7.0/24"]})
    for ip in ("127.0.0.1", "10.201.0.2", "169.254.169.254", "10.0.0.1", "0.0.0.0"):
        assert not answer_acceptable(p, IPv4Address(ip), floor=FLOOR), ip
    assert answer_acceptable(p, IPv4Address("192.168.7.9"), floor=FLOOR)
    assert answer_acceptable(p, IPv4Address("93.184.216.34"), floor=FLOOR)


def test_names_allowed_and_pinned() -> None:
    p = from_e2b(False, {"allowOut": ["api.x.com"]})
    assert p.allows_name("api.x.com") and p.pins_name("api.x.com")
    assert not p.allows_name("b.x.com")
    o = from_e2b(True, None)
    assert o.allows_name("anything.test") and not o.pins_name("anything.test")


def test_json_round_trip() -> None:
    p = from_e2b(True, {"allowOut": ["*.x.com", "1.2.3.0/24"], "denyOut": ["5.0.0.0/8"]}, byte_budget=10)
    assert EgressPolicy.from_json(p.to_json()) == p


def test_narrow_never_widens() -> None:
    ceiling = from_spec(True, ["api.x.com", "*.y.com"], byte_budget=1000)
    req = from_e2b(True, {"allowOut": ["api.x.com", "evil.com", "a.y.com", "*.z.y.com", "1.2.3.4"]}, byte_budget=5000)
    got = narrow(req, ceiling)
    assert not got.internet and got.byte_budget == 1000 and got.allow_nets == ()
    assert {str(d) for d in got.allow_domains} == {"api.x.com", "a.y.com", "*.z.y.com", "*.y.com"}
    # a request for "internet" under an allowlist ceiling gets the allowlist
    assert narrow(from_e2b(True, None), ceiling).allow_domains == ceiling.allow_domains
    # an allow may not reopen what the ceiling denies
    open_ceiling = from_e2b(True, {"denyOut": ["5.0.0.0/8"]})
    assert narrow(from_e2b(True, {"allowOut": ["5.1.1.1"]}), open_ceiling).allow_nets == ()
    assert narrow(from_e2b(False, None), open_ceiling) .grants_egress is False


def test_a_bad_rule_is_a_400_with_the_entry_in_its_message() -> None:
    with pytest.raises(CorralError) as exc:
        from_e2b(None, {"allowOut": ["http://x.example.com/"]})
    assert isinstance(exc.value, NetworkPolicyError) and exc.value.status == 400
    assert "http://x.example.com/" in exc.value.message
