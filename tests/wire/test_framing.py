"""Connect framing shared by envd and the host's client: envelopes, end-of-stream, errors."""

from __future__ import annotations

import struct

import pytest

from corral.errors import CorralError
from corral.wire.framing import (
    FLAG_COMPRESSED, FLAG_END_STREAM, HTTP_STATUS, ConnectError, EnvelopeReader, StreamDecoder,
    end_stream_envelope, envelope, message_envelope,
)


def test_messages_round_trip_through_the_stream_decoder_in_any_chunking() -> None:
    wire = message_envelope({"a": 1}) + message_envelope({"b": "é"}) + end_stream_envelope()
    for size in (1, 2, 5, 7, len(wire)):
        decoder = StreamDecoder()
        got = []
        for i in range(0, len(wire), size):
            got += list(decoder.feed(wire[i:i + size]))
        decoder.finish()
        assert got == [{"a": 1}, {"b": "é"}]
        assert decoder.ended and decoder.error is None


def test_an_error_frame_ends_the_stream_with_its_code_and_message() -> None:
    decoder = StreamDecoder()
    wire = message_envelope({"x": 1}) + end_stream_envelope(ConnectError("not_found", "no such process"))
    assert list(decoder.feed(wire)) == [{"x": 1}]
    decoder.finish()
    assert decoder.error is not None
    assert (decoder.error.code, decoder.error.message, decoder.error.http_status) == ("not_found", "no such process", 404)


def test_an_error_frame_with_an_unknown_code_is_unknown_not_a_crash() -> None:
    decoder = StreamDecoder()
    list(decoder.feed(envelope(b'{"error":{"code":"bogus","message":"m"}}', FLAG_END_STREAM)))
    assert decoder.error is not None and decoder.error.code == "unknown" and decoder.error.message == "m"


def test_a_truncated_stream_is_data_loss() -> None:
    wire = message_envelope({"a": 1}) + end_stream_envelope()
    for cut in (3, 8, len(wire) - 1):
        decoder = StreamDecoder()
        list(decoder.feed(wire[:cut]))
        with pytest.raises(ConnectError) as e:
            decoder.finish()
        assert e.value.code == "data_loss"


def test_a_stream_without_its_end_frame_is_data_loss() -> None:
    decoder = StreamDecoder()
    assert list(decoder.feed(message_envelope({"a": 1}))) == [{"a": 1}]
    with pytest.raises(ConnectError, match="end-of-stream"):
        decoder.finish()


def test_a_message_after_the_end_frame_is_refused() -> None:
    decoder = StreamDecoder()
    with pytest.raises(ConnectError):
        list(decoder.feed(end_stream_envelope() + message_envelope({"late": True})))


def test_oversized_envelopes_are_refused_before_their_body_arrives() -> None:
    reader = EnvelopeReader(max_message=10)
    with pytest.raises(ConnectError) as e:
        list(reader.feed(struct.pack(">BI", 0, 11)))   # only the header: nothing buffered for it
    assert e.value.code == "resource_exhausted"
    assert list(EnvelopeReader(max_message=10).feed(envelope(b"0123456789"))) == [(0, b"0123456789")]


def test_compressed_envelopes_are_refused() -> None:
    with pytest.raises(ConnectError) as e:
        list(EnvelopeReader().feed(envelope(b"{}", FLAG_COMPRESSED)))
    assert e.value.code == "internal"


def test_a_payload_that_is_not_an_object_is_invalid() -> None:
    for payload in (b"[1]", b"nope", b"\xff"):
        with pytest.raises(ConnectError) as e:
            list(StreamDecoder().feed(envelope(payload)))
        assert e.value.code == "invalid_argument"


def test_connect_error_is_a_corral_error_carrying_its_http_status() -> None:
    for code, status in HTTP_STATUS.items():
        err = ConnectError(code, "m")
        assert isinstance(err, CorralError)
        assert err.status == status == err.http_status
        assert err.to_json() == {"code": code, "message": "m"}
    with pytest.raises(ValueError):
        ConnectError("not-a-code", "m")
