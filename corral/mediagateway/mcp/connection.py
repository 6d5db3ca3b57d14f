"""The SDK connection options the MCP server passes to every call.

The SDK reads `E2B_API_KEY`, `E2B_DOMAIN`, `E2B_API_URL` and `E2B_SANDBOX_URL` itself; on top of
those the layer accepts `E2B_BASE_URL`, the one URL of a corral server's API and sandboxes.
"""

from __future__ import annotations

import os
from typing import Any


def sdk_params() -> dict[str, Any]:
    params: dict[str, Any] = {}
    base = os.environ.get("E2B_BASE_URL", "").strip().rstrip("/")
    if base:
        params.setdefault("api_url", os.environ.get("E2B_API_URL") or base)
        params.setdefault("sandbox_url", os.environ.get("E2B_SANDBOX_URL") or base)
    return params
