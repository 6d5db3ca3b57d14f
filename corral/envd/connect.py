"""Connect protocol machinery (JSON codec over HTTP/1.1), kept apart from the services.

The official SDK speaks Connect with protobuf-JSON.  This module owns the parts of that
contract that are independent of any one RPC: error codes and their HTTP statuses, the 5-byte
envelopes of streaming calls, and lenient decoding of protobuf-JSON scalars (the SDK may send
int64 as strings, enums as names or numbers, bytes with or without base64 padding).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any, Iterator, Mapping

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

# A single request message larger than this is refused: requests are small control messages
# (a command line, a path, a chunk of stdin) and the daemon must not buffer arbitrary input.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ConnectError(Exception):
    """An RPC failure that is reported to the client with a Connect code."""

    def __init__(self, code: str, message: str) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown connect code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def from_os_error(err: OSError, what: str = "") -> ConnectError:
    """Map an errno to the Connect code the SDK turns into the matching exception."""
    import errno as _errno

    detail = f"{what}: {err.strerror or err}" if what else str(err.strerror or err)
    code = {
        _errno.ENOENT: "not_found",
        _errno.ENOTDIR: "invalid_argument",
        _errno.EISDIR: "invalid_argument",
        _errno.EEXIST: "already_exists",
        _errno.ENOTEMPTY: "failed_precondition",
        _errno.EACCES: "permission_denied",
        _errno.EPERM: "permission_denied",
        _errno.EROFS: "permission_denied",
        _errno.ENOSPC: "resource_exhausted",
        _errno.EDQUOT: "resource_exhausted",
        _errno.ENAMETOOLONG: "invalid_argument",
        _errno.ELOOP: "invalid_argument",
        _errno.EINVAL: "invalid_argument",
        _errno.EXDEV: "failed_precondition",
    }.get(err.errno or 0, "internal")
    return ConnectError(code, detail)


# ---------------------------------------------------------------- envelopes

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
    envelope is present.  Oversized or compressed envelopes are rejected: we never negotiate
    compression, and a length prefix must not make us buffer unbounded input.
    """

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_message

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while len(self._buf) >= 5:
            flags, length = struct.unpack_from(">BI", self._buf)
            if length > self._max:
                raise ConnectError("resource_exhausted", f"message of {length} bytes exceeds {self._max}")
            if flags & FLAG_COMPRESSED:
                raise ConnectError("internal", "compressed envelopes are not supported")
            if len(self._buf) < 5 + length:
                return
            payload = bytes(self._buf[5 : 5 + length])
            del self._buf[: 5 + length]
            yield flags, payload

    @property
    def pending(self) -> int:
        return len(self._buf)


# ---------------------------------------------------------------- protobuf-JSON

def dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def loads_message(payload: bytes) -> dict[str, Any]:
    """Decode one request message; it must be a JSON object (empty body means `{}`)."""
    if not payload.strip():
        return {}
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConnectError("invalid_argument", f"invalid JSON message: {exc}") from None
    if not isinstance(value, dict):
        raise ConnectError("invalid_argument", "message must be a JSON object")
    return value


def field(msg: Mapping[str, Any], camel: str, snake: str | None = None) -> Any:
    """Protobuf-JSON parsers accept both the lowerCamelCase and the original field name."""
    if camel in msg:
        return msg[camel]
    if snake is not None and snake in msg:
        return msg[snake]
    return None


def get_str(msg: Mapping[str, Any], camel: str, snake: str | None = None, default: str = "") -> str:
    value = field(msg, camel, snake)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConnectError("invalid_argument", f"field {camel} must be a string")
    return value


def get_bool(msg: Mapping[str, Any], camel: str, snake: str | None = None) -> bool | None:
    value = field(msg, camel, snake)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ConnectError("invalid_argument", f"field {camel} must be a boolean")
    return value


def get_int(msg: Mapping[str, Any], camel: str, snake: str | None = None, *,
            default: int = 0, minimum: int | None = None, maximum: int | None = None) -> int:
    """Integers may arrive as JSON numbers or (int64 style) as decimal strings."""
    value = field(msg, camel, snake)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ConnectError("invalid_argument", f"field {camel} must be an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip(), 10)
        except ValueError:
            raise ConnectError("invalid_argument", f"field {camel} must be an integer") from None
    if not isinstance(value, int):
        raise ConnectError("invalid_argument", f"field {camel} must be an integer")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConnectError("invalid_argument", f"field {camel} is out of range")
    return value


def get_enum(msg: Mapping[str, Any], camel: str, values: Mapping[str, int], snake: str | None = None) -> int:
    """Enums arrive as their name or their number; unknown names are an error."""
    value = field(msg, camel, snake)
    if value is None:
        return 0
    if isinstance(value, str):
        if value in values:
            return values[value]
        try:
            value = int(value)
        except ValueError:
            raise ConnectError("invalid_argument", f"unknown value {value!r} for {camel}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConnectError("invalid_argument", f"field {camel} must be an enum")
    return value


def get_obj(msg: Mapping[str, Any], camel: str, snake: str | None = None) -> dict[str, Any] | None:
    value = field(msg, camel, snake)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConnectError("invalid_argument", f"field {camel} must be an object")
    return value


def get_str_map(msg: Mapping[str, Any], camel: str, snake: str | None = None) -> dict[str, str]:
    value = field(msg, camel, snake)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConnectError("invalid_argument", f"field {camel} must be a map of strings")
    return dict(value)


def get_str_list(msg: Mapping[str, Any], camel: str, snake: str | None = None) -> list[str]:
    value = field(msg, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConnectError("invalid_argument", f"field {camel} must be a list of strings")
    return list(value)


def decode_bytes(value: Any, name: str) -> bytes:
    """protobuf-JSON bytes: standard or URL-safe base64, padding optional."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ConnectError("invalid_argument", f"field {name} must be base64 text")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConnectError("invalid_argument", f"field {name} is not valid base64") from None


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_timeout_ms(value: str | None) -> float | None:
    """`Connect-Timeout-Ms` -> seconds; absent means no deadline, garbage is a client error."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 10:
        raise ConnectError("invalid_argument", f"invalid Connect-Timeout-Ms {value!r}")
    ms = int(value)
    return ms / 1000.0 if ms > 0 else None
