"""Connect protocol framing (JSON codec over HTTP/1.1), shared by envd and its host-side client.

The official SDK speaks Connect with protobuf-JSON. This module owns the parts of that contract
that are independent of any one RPC: error codes and their HTTP statuses, and the 5-byte
envelopes of streaming calls (flags byte, big-endian length, payload).
"""

from __future__ import annotations

import json
import struct
from typing import Any, Iterator, Mapping

from corral.errors import CorralError

# Connect error code -> HTTP status (Connect protocol specification).
HTTP_STATUS: dict[str, int] = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

FLAG_MESSAGE = 0x00
FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02

UNARY_CONTENT_TYPE = "application/json"
STREAM_CONTENT_TYPE = "application/connect+json"

HEADER_SIZE = 5

# A single message larger than this is refused: requests are small control messages (a command
# line, a path, a chunk of stdin) and neither side may buffer arbitrary input.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ConnectError(CorralError):
    """An RPC failure reported with a Connect code; its HTTP status follows from the code."""

    def __init__(self, code: str, message: str) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown connect code {code!r}")
        super().__init__(message, status=HTTP_STATUS[code])
        self.code = code

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, value: Any) -> "ConnectError":
        """The error object of an end-of-stream frame or a unary error body."""
        if not isinstance(value, Mapping):
            return cls("unknown", str(value))
        code = value.get("code")
        message = str(value.get("message", ""))
        return cls(code if isinstance(code, str) and code in HTTP_STATUS else "unknown", message)


def dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def loads_message(payload: bytes) -> dict[str, Any]:
    """Decode one message; it must be a JSON object (an empty payload means `{}`)."""
    if not payload.strip():
        return {}
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConnectError("invalid_argument", f"invalid JSON message: {exc}") from None
    if not isinstance(value, dict):
        raise ConnectError("invalid_argument", "message must be a JSON object")
    return value


def envelope(payload: bytes, flags: int = FLAG_MESSAGE) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def message_envelope(message: Mapping[str, Any]) -> bytes:
    return envelope(dumps(message))


def end_stream_envelope(error: ConnectError | None = None) -> bytes:
    body: dict[str, Any] = {} if error is None else {"error": error.to_json()}
    return envelope(dumps(body), FLAG_END_STREAM)


class EnvelopeReader:
    """Incrementally splits a byte stream into (flags, payload) envelopes.

    Chunk boundaries of the HTTP body carry no meaning, so bytes are buffered until a whole
    envelope is present. Oversized or compressed envelopes are rejected: we never negotiate
    compression, and a length prefix must not make us buffer unbounded input.
    """

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_message

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while len(self._buf) >= HEADER_SIZE:
            flags, length = struct.unpack_from(">BI", self._buf)
            if length > self._max:
                raise ConnectError("resource_exhausted", f"message of {length} bytes exceeds {self._max}")
            if flags & FLAG_COMPRESSED:
                raise ConnectError("internal", "compressed envelopes are not supported")
            if len(self._buf) < HEADER_SIZE + length:
                return
            payload = bytes(self._buf[HEADER_SIZE:HEADER_SIZE + length])
            del self._buf[:HEADER_SIZE + length]
            yield flags, payload

    @property
    def pending(self) -> int:
        """Bytes of an envelope not yet complete (non-zero at the end of a body: truncated)."""
        return len(self._buf)


class StreamDecoder:
    """The receiving side of a server stream: messages out, the end-of-stream frame kept.

    `feed` yields each message as a dict; after the end-of-stream frame `ended` is true and
    `error` holds the stream's ConnectError, if it carried one.
    """

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES) -> None:
        self._reader = EnvelopeReader(max_message)
        self.ended = False
        self.error: ConnectError | None = None

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        for flags, payload in self._reader.feed(data):
            if self.ended:
                raise ConnectError("internal", "a message after the end of the stream")
            msg = loads_message(payload)
            if flags & FLAG_END_STREAM:
                self.ended = True
                if "error" in msg:
                    self.error = ConnectError.from_json(msg["error"])
                continue
            yield msg

    def finish(self) -> None:
        """The body ended: a half envelope or a missing end-of-stream frame is a broken stream."""
        if self._reader.pending:
            raise ConnectError("data_loss", "the stream ended inside an envelope")
        if not self.ended:
            raise ConnectError("data_loss", "the stream ended without an end-of-stream frame")
