"""Sandbox lifecycle: the start pipeline, warm pools, kill, timeouts, pause, restart recovery.

The API uses the façade (`SandboxService`), the typed requests it takes, and `make_tier`.
"""

from corral.lifecycle.errors import SandboxNotFound, StartFailed, TierFailed
from corral.lifecycle.requests import CreateRequest, NetworkRequest, NetworkUpdate, ResourceRequest
from corral.lifecycle.service import SandboxService
from corral.lifecycle.tiers import make_tier

__all__ = ["CreateRequest", "NetworkRequest", "NetworkUpdate", "ResourceRequest", "SandboxNotFound",
           "SandboxService", "StartFailed", "TierFailed", "make_tier"]
