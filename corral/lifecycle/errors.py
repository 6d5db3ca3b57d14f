"""The lifecycle's failures, as `CorralError`s so the API and CLI map them without knowing them."""

from __future__ import annotations

from corral.errors import CorralError, InvalidRequest, NotFound


class SandboxNotFound(NotFound):
    def __init__(self, sandbox_id: str) -> None:
        super().__init__(f"sandbox {sandbox_id} not found")
        self.sandbox_id = sandbox_id


class StartFailed(CorralError):
    """The tier, or the template's start/ready commands, could not bring a sandbox up (500)."""

    status = 500


class TierFailed(CorralError):
    """A tier operation on a live sandbox (pause, resume) failed (500)."""

    status = 500


class ModeUnsupported(InvalidRequest):
    """A pause, snapshot or fork mode this sandbox's tier cannot do; the message names the one
    that works (400, which the SDK raises as InvalidArgumentException)."""
