"""Sandbox lifecycle: create, kill, timeouts, pause, recovery after a restart."""

from corral.lifecycle.service import CreateParams, NotFound, SandboxService, Conflict

__all__ = ["Conflict", "CreateParams", "NotFound", "SandboxService"]
