"""corral's own create options, carried where the official SDKs let a client put them.

`Sandbox.create` in the official SDKs has no field for corral's options, but it sends metadata
untouched, so a client sets them as metadata keys `corral.<option>` (string values, as all E2B
metadata); a raw HTTP client may instead send a body object `corral: {<camelCaseOption>: value}`.
Both are parsed here, once, into typed values; an option given both ways must agree.

To add an option, add one `Extension` to `EXTENSIONS` and a field to the typed request it feeds.
Bounds that need the template or the server's ceiling (for example "at most the template's
CPUs") are checked by the lifecycle, which knows them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corral.errors import InvalidRequest
from corral.lifecycle import ResourceRequest

METADATA_PREFIX = "corral."


def _whole_number_text(where: str, value: str) -> int:
    """A metadata value (always a string): decimal digits only."""
    text = value.strip()
    if not text.isdecimal() or int(text) <= 0:
        raise InvalidRequest(f"{where}: expected a positive whole number, got {value!r}")
    return int(text)


def _whole_number_json(where: str, value: Any) -> int:
    """A JSON value in the body's `corral` object: a number, not a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequest(f"{where}: expected a positive whole number, got {value!r}")
    return value


@dataclass(frozen=True)
class Extension:
    name: str                                   # metadata key suffix: corral.<name>
    body_key: str                               # key in the body's `corral` object
    from_text: Callable[[str, str], Any]        # (where, metadata string) -> typed value
    from_json: Callable[[str, Any], Any]        # (where, JSON value) -> typed value


EXTENSIONS = (
    Extension("cpu_count", "cpuCount", _whole_number_text, _whole_number_json),
    Extension("memory_mb", "memoryMB", _whole_number_text, _whole_number_json),
)


def parse_extensions(metadata: dict[str, str], body: Any) -> dict[str, Any]:
    """The typed values of every extension the request sets, keyed by extension name."""
    if body is not None and not isinstance(body, dict):
        raise InvalidRequest("corral: expected an object")
    body = body or {}
    known = {e.body_key for e in EXTENSIONS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"corral: unknown field {unknown[0]!r} (expected {', '.join(sorted(known))})")
    out: dict[str, Any] = {}
    for ext in EXTENSIONS:
        key = METADATA_PREFIX + ext.name
        from_meta = ext.from_text(f"metadata.{key}", metadata[key]) if key in metadata else None
        from_body = ext.from_json(f"corral.{ext.body_key}", body[ext.body_key]) if ext.body_key in body else None
        if from_meta is not None and from_body is not None and from_meta != from_body:
            raise InvalidRequest(f"{key}: metadata says {from_meta}, corral.{ext.body_key} says {from_body}")
        value = from_meta if from_meta is not None else from_body
        if value is not None:
            out[ext.name] = value
    return out


def resource_request(values: dict[str, Any]) -> ResourceRequest:
    return ResourceRequest(cpu_count=values.get("cpu_count"), memory_mb=values.get("memory_mb"))
