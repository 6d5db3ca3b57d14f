"""The SDK's `v1_` signature of a `/files` URL, shared by both sides of the seam.

envd checks it against its own access token; the server uses it only to find which sandbox an
unrouted signed URL is for (with `E2B_SANDBOX_URL` the SDK's URL names no sandbox), then leaves
the real check to that sandbox's envd.
"""

from __future__ import annotations

import base64
import hashlib


def compute_signature(path: str, operation: str, username: str | None, token: str,
                      expiration: int | None = None) -> str:
    """sha256 over `path:operation:user:token[:expiration]`, base64 without padding."""
    raw = f"{path}:{operation}:{username or ''}:{token}"
    if expiration is not None:
        raw += f":{expiration}"
    digest = hashlib.sha256(raw.encode()).digest()
    return "v1_" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_expiration(value: str | None) -> int | None:
    """The `signature_expiration` query value; ValueError when it is not a plain number."""
    if not value:
        return None
    if not value.lstrip("-").isdigit() or len(value) > 12:
        raise ValueError("invalid signature expiration")
    return int(value)
