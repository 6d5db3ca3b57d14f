"""HTTP surface: the E2B REST control plane and the proxy to in-sandbox services, on one port."""

from corral.api.app import create_app

__all__ = ["create_app"]
