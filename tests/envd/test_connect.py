"""Connect framing and protobuf-JSON decoding edge cases."""

from __future__ import annotations

import struct

import pytest

from corral.envd.connect import decode_bytes, get_enum, get_int, parse_timeout_ms
from corral.wire.framing import (
    HTTP_STATUS,
    ConnectError,
    EnvelopeReader,
    end_stream_envelope,
    loads_message,
    message_envelope,
)


def test_envelopes_round_trip_across_arbitrary_chunking() -> None:
    wire = message_envelope({"a": 1}) + message_envelope({"b": "é"}) + end_stream_envelope()
    reader = EnvelopeReader()
    got = []
    for i in range(len(wire)):  # one byte at a time
        got += list(reader.feed(wire[i:i + 1]))
    assert got == [(0, b'{"a":1}'), (0, '{"b":"é"}'.encode()), (2, b"{}")]
    assert reader.pending == 0


def test_end_stream_carries_the_error() -> None:
    env = end_stream_envelope(ConnectError("not_found", "gone"))
    assert env[0] == 2 and env[5:] == b'{"error":{"code":"not_found","message":"gone"}}'
    assert struct.unpack(">I", env[1:5])[0] == len(env) - 5


def test_oversized_and_compressed_envelopes_are_refused() -> None:
    with pytest.raises(ConnectError) as e:
        list(EnvelopeReader(max_message=10).feed(struct.pack(">BI", 0, 11)))
    assert e.value.code == "resource_exhausted"
    with pytest.raises(ConnectError):
        list(EnvelopeReader().feed(struct.pack(">BI", 1, 2) + b"{}"))


def test_codes_map_to_http_statuses() -> None:
    assert HTTP_STATUS["not_found"] == 404 and HTTP_STATUS["already_exists"] == 409
    assert HTTP_STATUS["deadline_exceeded"] == 504 and HTTP_STATUS["unauthenticated"] == 401
    assert ConnectError("permission_denied", "x").http_status == 403
    with pytest.raises(ValueError):
        ConnectError("bogus", "x")


def test_protobuf_json_scalars() -> None:
    assert get_int({"depth": "5"}, "depth") == 5 and get_int({"depth": 5.0}, "depth") == 5
    assert get_int({}, "depth") == 0
    for bad in ({"depth": "5x"}, {"depth": True}, {"depth": [1]}, {"depth": 1.5}):
        with pytest.raises(ConnectError):
            get_int(bad, "depth")
    with pytest.raises(ConnectError):
        get_int({"d": -1}, "d", minimum=0)
    sig = {"SIGNAL_SIGKILL": 9}
    assert get_enum({"signal": "SIGNAL_SIGKILL"}, "signal", sig) == 9
    assert get_enum({"signal": 9}, "signal", sig) == 9 and get_enum({"signal": "9"}, "signal", sig) == 9
    with pytest.raises(ConnectError):
        get_enum({"signal": "SIGNAL_NOPE"}, "signal", sig)
    assert decode_bytes("YWJj", "x") == b"abc" and decode_bytes("YWI", "x") == b"ab"  # no padding
    assert decode_bytes("YWI=", "x") == b"ab" and decode_bytes("-_8", "x") == b"\xfb\xff"  # url-safe
    with pytest.raises(ConnectError):
        decode_bytes("@@@", "x")
    assert loads_message(b"") == {} and loads_message(b' {"a":1} ') == {"a": 1}
    with pytest.raises(ConnectError):
        loads_message(b"[]")


def test_timeout_header() -> None:
    assert parse_timeout_ms(None) is None and parse_timeout_ms("1500") == 1.5
    assert parse_timeout_ms("0") is None
    for bad in ("-1", "1.5", "abc", "99999999999"):
        with pytest.raises(ConnectError):
            parse_timeout_ms(bad)
