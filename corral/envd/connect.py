"""The receiving side of Connect calls in envd: lenient protobuf-JSON decoding, errno mapping.

Framing (envelopes, error codes, `ConnectError`) is shared with the host's client and lives in
`corral.wire.framing`. What stays here is what only a
server of these RPCs needs: decoding protobuf-JSON scalars leniently (the SDK may send int64 as
strings, enums as names or numbers, bytes with or without base64 padding), mapping an errno to
a Connect code, and the `Connect-Timeout-Ms` header.
"""

from __future__ import annotations

import base64
import binascii
import errno as _errno
from typing import Any, Mapping

from corral.wire.framing import ConnectError


def from_os_error(err: OSError, what: str = "") -> ConnectError:
    """Map an errno to the Connect code the SDK turns into the matching exception."""
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


# ---------------------------------------------------------------- protobuf-JSON

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
