"""One exception base for the product, so every edge maps errors the same way.

The API registers a single handler for `CorralError` that answers `{"code": status, "message": ...}`
(the shape the E2B SDKs parse); the CLI prints `error: <message>` and exits 1. A subclass says what
kind of failure it is by its HTTP status, so a handler never needs to know the subclass by name.
Messages must be safe to show to an API client: no host paths, no secrets.

This module imports nothing from corral: every layer, down to the wire, may raise these.
"""

from __future__ import annotations


class CorralError(Exception):
    """A failure with a client-safe message and the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class InvalidRequest(CorralError, ValueError):
    """The caller asked for something malformed or not allowed (400)."""

    status = 400


class Unauthorized(CorralError):
    """Missing or wrong credentials (401)."""

    status = 401


class Forbidden(CorralError):
    """Valid credentials, but not for this (403)."""

    status = 403


class NotFound(CorralError, LookupError):
    """No such sandbox, template, snapshot or volume (404)."""

    status = 404


class Conflict(CorralError):
    """The object is in a state that does not allow this (409)."""

    status = 409


class TooLarge(CorralError):
    """A body or file over its size limit (413)."""

    status = 413


class Unavailable(CorralError):
    """The server or a tier cannot do this right now; retrying later may work (503)."""

    status = 503
