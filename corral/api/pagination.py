"""E2B's list pagination, once for every list route: `limit` (1..100) and an opaque `nextToken`
answered in the `X-Next-Token` header while more items follow.

A token is the next offset, base64url-encoded with a per-route prefix, so a token from one list
is refused by another instead of silently paging it from the wrong place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import TypeVar

from corral.errors import InvalidRequest

MAX_PAGE = 100
T = TypeVar("T")


def page_limit(query: Mapping[str, str]) -> int:
    try:
        limit = int(query.get("limit", MAX_PAGE))
    except ValueError:
        raise InvalidRequest("invalid limit: expected an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"invalid limit: must be between 1 and {MAX_PAGE}")
    return limit


def _offset(raw: str | None, prefix: str) -> int:
    if not raw:
        return 0
    try:
        value = base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)).decode()
        offset = int(value.removeprefix(prefix)) if value.startswith(prefix) else -1
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise InvalidRequest("invalid nextToken")
    return offset


def paginate(items: Sequence[T], query: Mapping[str, str], prefix: str) -> tuple[Sequence[T], dict[str, str]]:
    """The page the query asks for, and the headers to answer with it."""
    limit = page_limit(query)
    offset = _offset(query.get("nextToken"), prefix)
    headers: dict[str, str] = {}
    if offset + limit < len(items):
        token = base64.urlsafe_b64encode(f"{prefix}{offset + limit}".encode()).decode().rstrip("=")
        headers["X-Next-Token"] = token
    return items[offset:offset + limit], headers
