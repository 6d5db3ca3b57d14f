"""Identifiers and secrets.

Sandbox ids follow E2B's shape (`[a-z0-9]{20}`) because the SDK and host-based routing
(`{port}-{id}.{domain}`) depend on it: no `-` or `.` may ever appear in one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
SANDBOX_ID_RE = re.compile(r"^[a-z0-9]{1,64}$")
API_KEY_RE = re.compile(r"^e2b_[0-9a-f]{40}$")


def new_sandbox_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(20))


def new_api_key() -> str:
    return "e2b_" + secrets.token_hex(20)


def new_access_token() -> str:
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Keys are stored as SHA-256 digests: a leaked database does not leak usable keys."""
    return hashlib.sha256(key.encode()).hexdigest()


def is_sandbox_id(value: str) -> bool:
    return bool(SANDBOX_ID_RE.match(value))
