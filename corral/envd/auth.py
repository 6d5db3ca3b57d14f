"""Who is calling: the sandbox access token, URL signatures, and the requested username.

The access token proves the caller came through the corral server; the username (HTTP Basic
with an empty password, or `username=` on /files) only selects which sandbox account the
operation runs as.  Comparisons are constant-time so the token cannot be guessed byte by byte.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from corral.wire.signing import compute_signature, parse_expiration

__all__ = ["UNAUTHORIZED_MESSAGE", "basic_username", "compute_signature", "signature_valid", "token_matches"]

UNAUTHORIZED_MESSAGE = (
    "unauthorized access, please provide a valid access token or method signing if supported"
)


def token_matches(expected: str, given: str | None) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def signature_valid(*, signature: str, expiration: str | None, path: str, operation: str,
                    username: str | None, token: str, now: float | None = None) -> tuple[bool, str]:
    """Check a /files signature; returns (ok, reason) so the 401 can say what was wrong."""
    try:
        exp = parse_expiration(expiration)
    except ValueError:
        return False, "invalid signature expiration"
    expected = compute_signature(path, operation, username, token, exp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return False, "invalid signature"
    # Expiry is judged only for a signature that is genuine (the expiry is part of what it signs).
    if exp is not None and exp < (time.time() if now is None else now):
        return False, "signature is already expired"
    return True, ""


def basic_username(authorization: str | None) -> str | None:
    """`Authorization: Basic base64("<user>:")` -> user; anything else is ignored (None)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None
