"""Identifiers and secrets the server makes.

Sandbox ids follow E2B's shape (`[a-z0-9]{20}`); the format every side checks is defined once,
in `corral.wire.constants` (`SANDBOX_ID_RE`, `is_sandbox_id`), and re-exported here.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from corral.wire.constants import SANDBOX_ID_RE, is_sandbox_id

__all__ = ["API_KEY_RE", "SANDBOX_ID_RE", "hash_key", "is_sandbox_id", "new_access_token", "new_api_key",
           "new_sandbox_id"]

_ALPHABET = string.ascii_lowercase + string.digits
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
