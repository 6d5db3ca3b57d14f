"""User-defined file metadata, kept as `user.e2b.<key>` extended attributes (E2B's layout).

The SDK sends metadata on upload as `X-Metadata-<key>: <value>` headers; envd lowercases the key,
stores it on the file and reports the map in every EntryInfo (Stat, ListDir, Move, watch
entries) and in the upload result. Attributes set inside the sandbox under the same prefix (for
example with `os.setxattr`) show up the same way, because reading is the only source of truth.

Limits follow E2B's envd: keys and values are printable US-ASCII, a key is at most 246 bytes (the
kernel's 255-byte attribute name minus the prefix) and all of a file's metadata, counting the
prefix once per key, at most 4096 bytes. Reading applies the same caps, so a file whose
attributes were set out of band cannot make a listing huge.
"""

from __future__ import annotations

import errno
import os
import re

PREFIX = "user.e2b."
HEADER_PREFIX = "x-metadata-"
MAX_KEY_BYTES = 255 - len(PREFIX)
MAX_TOTAL_BYTES = 4096

_PRINTABLE = re.compile(r"[\x20-\x7e]*")
# Errors that mean "this file cannot carry user attributes": symlinks, /proc, some filesystems.
_UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.ENODATA, errno.ENOENT,
                errno.E2BIG, errno.ERANGE, errno.EINVAL}


class MetadataError(ValueError):
    """Metadata the SDK sent that envd refuses (answered with a 400 naming the key)."""


def from_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The upload's metadata from its `X-Metadata-*` headers; the first of repeated keys wins."""
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if not lower.startswith(HEADER_PREFIX):
            continue
        key = lower[len(HEADER_PREFIX):]
        if key not in out:
            out[key] = value
    validate(out)
    return out


def validate(metadata: dict[str, str]) -> None:
    total = 0
    for key, value in metadata.items():
        if not key:
            raise MetadataError("a metadata key must not be empty")
        if _PRINTABLE.fullmatch(key) is None or _PRINTABLE.fullmatch(value) is None:
            raise MetadataError(f"metadata key {key[:64]!r}: keys and values must be printable US-ASCII")
        if len(key) > MAX_KEY_BYTES:
            raise MetadataError(f"metadata key {key[:64]!r}... is longer than {MAX_KEY_BYTES} bytes")
        total += len(PREFIX) + len(key) + len(value)
        if total > MAX_TOTAL_BYTES:
            raise MetadataError(f"metadata is larger than {MAX_TOTAL_BYTES} bytes in total")


def read(target: str | int) -> dict[str, str] | None:
    """The `user.e2b.*` attributes of a path (not following a final symlink) or an open fd."""
    follow = isinstance(target, int)
    try:
        names = os.listxattr(target, follow_symlinks=follow) if not follow else os.listxattr(target)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return None
        raise
    out: dict[str, str] = {}
    total = 0
    for name in names:
        if not name.startswith(PREFIX):
            continue
        try:
            raw = os.getxattr(target, name) if follow else os.getxattr(target, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                continue
            raise
        key, value = name[len(PREFIX):], raw.decode("ascii", errors="replace")
        total += len(name) + len(raw)
        if not key or total > MAX_TOTAL_BYTES:
            break
        out[key] = value
    return out or None


def replace(fd: int, metadata: dict[str, str]) -> None:
    """Make `metadata` the file's whole metadata: stale `user.e2b.*` keys go, new ones are set."""
    try:
        existing = [n for n in os.listxattr(fd) if n.startswith(PREFIX)]
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP) or metadata:
            raise
        return
    wanted = {PREFIX + k: v.encode("ascii") for k, v in metadata.items()}
    for name in existing:
        if name not in wanted:
            os.removexattr(fd, name)
    for name, value in wanted.items():
        os.setxattr(fd, name, value)
