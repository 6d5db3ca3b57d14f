"""The SNI / Host parser: real ClientHellos from the ssl module, and hostile bytes it must survive."""

from __future__ import annotations

import ssl
import struct

import pytest

from corral.network.sniff import HTTP, MAX_HTTP_HEAD, TLS, NeedMore, clean_host, http_host, sniff, tls_server_name


def client_hello(server_name: str | None) -> bytes:
    """The first flight a real TLS client sends (Python's OpenSSL), captured through memory BIOs."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_real_client_hello_gives_its_sni() -> None:
    hello = client_hello("api.themoviedb.test")
    assert sniff(hello).kind == TLS
    assert tls_server_name(hello) == "api.themoviedb.test"
    assert tls_server_name(client_hello("API.Example.COM.")) == "api.example.com"


def test_client_hello_without_sni_has_no_name() -> None:
    assert sniff(client_hello(None)).name is None


def test_every_prefix_of_a_hello_asks_for_more_and_never_misreads() -> None:
    hello = client_hello("api.themoviedb.test")
    for n in range(1, len(hello)):
        with pytest.raises(NeedMore):
            sniff(hello[:n])


def test_hello_split_over_two_records_is_reassembled() -> None:
    hello = client_hello("split.example.test")
    body = hello[5:]
    half = len(body) // 2
    two = (struct.pack("!BBBH", 0x16, 3, 1, half) + body[:half]
           + struct.pack("!BBBH", 0x16, 3, 1, len(body) - half) + body[half:])
    assert tls_server_name(two) == "split.example.test"


def test_lying_lengths_are_refused_not_overread() -> None:
    hello = bytearray(client_hello("api.themoviedb.test"))
    # the session-id length byte sits after record(5) + handshake header(4) + version(2) + random(32)
    bad = bytearray(hello)
    bad[5 + 4 + 2 + 32] = 255
    assert tls_server_name(bytes(bad)) is None
    # a handshake claiming to be far larger than we buffer
    huge = bytes([0x16, 3, 1, 0x40, 0x00, 1, 0x10, 0x00, 0x00]) + b"\0" * 100
    assert tls_server_name(huge) is None
    # a record that is not a handshake, or a handshake that is not a ClientHello
    assert tls_server_name(b"\x17\x03\x03\x00\x05hello") is None
    assert tls_server_name(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00") is None


def test_sni_that_is_not_a_host_name_is_refused() -> None:
    for bad in ("198.18.1.10", "a..b", "-x.test", "x" * 64 + ".test", "under_score.test"):
        assert clean_host(bad) is None, bad


def test_http_host_header() -> None:
    assert http_host(b"GET / HTTP/1.1\r\nHost: API.themoviedb.test:80\r\nAccept: */*\r\n\r\n") == "api.themoviedb.test"
    assert http_host(b"GET / HTTP/1.0\r\nhost:  x.test \r\n\r\n") == "x.test"
    assert http_host(b"GET / HTTP/1.1\r\nHost: 198.18.1.10\r\n\r\n") == "198.18.1.10"
    assert sniff(b"POST /x HTTP/1.1\r\nHost: a.test\r\n\r\nbody").kind == HTTP


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\n\r\n",                                            # no Host
    b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",            # two Hosts: which one wins?
    b"GET / HTTP/1.1\r\nHost : b.test\r\n\r\n",                           # whitespace before the colon
    b"GET / HTTP/1.1\r\nX: y\r\n Host: b.test\r\n\r\n",                   # obs-fold
    b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test:http\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a.test\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: \xc3\xa9.test\r\n\r\n",
])
def test_ambiguous_http_heads_have_no_name(head: bytes) -> None:
    assert http_host(head) is None


def test_http_head_is_bounded() -> None:
    with pytest.raises(NeedMore):
        http_host(b"GET / HTTP/1.1\r\nHost: a.test\r\n")
    assert http_host(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HTTP_HEAD) is None


def test_other_protocols_are_not_guessed() -> None:
    assert sniff(b"SSH-2.0-OpenSSH_9.2\r\n") is None
    assert sniff(b"\x00\x01\x02") is None
    with pytest.raises(NeedMore):
        sniff(b"")
