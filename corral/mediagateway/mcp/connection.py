"""The SDK connection options the MCP server passes to every call: the layer's configuration
(`Settings`: E2B_API_KEY, E2B_BASE_URL, and the SDK's own E2B_DOMAIN / E2B_API_URL /
E2B_SANDBOX_URL), so `corral mcp` reaches the same sandbox service as the agents do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.mediagateway.settings import Settings


def sdk_params(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Raises `ConfigError` naming the variable when one is malformed."""
    return Settings.from_env(env).sdk_options()
