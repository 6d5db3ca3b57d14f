"""A template's CPU and memory, read from the service's template listing (`GET /templates`)
through the SDK's own API client, so the manager can ask for `min(config, template)`: corral
refuses a create that asks for more than the template gives, and the config is a maximum.

The listing is read as JSON rather than through the SDK's generated models, which require fields
(`names`) that not every E2B-compatible service sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from e2b.api.client_async import get_api_client
from e2b.connection_config import ConnectionConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateLimits:
    cpu_count: int
    memory_mb: int


def _matches(doc: dict[str, Any], template: str) -> bool:
    names = [doc.get("templateID"), *(doc.get("aliases") or []), *(doc.get("names") or [])]
    return template in names


async def list_template_limits(sdk_options: dict[str, Any]) -> dict[str, TemplateLimits]:
    """Every listed template's limits by each of its names; empty when the listing is unavailable."""
    try:
        client = get_api_client(ConnectionConfig(**sdk_options))
        response = await client.get_async_httpx_client().get("/templates")
        if response.status_code >= 300:
            log.info("template listing answered %s; limits unknown", response.status_code)
            return {}
        docs = response.json()
    except Exception as exc:  # the listing is an optimisation; the post-create check still holds
        log.info("template listing failed (%s); limits unknown", exc)
        return {}
    out: dict[str, TemplateLimits] = {}
    for doc in docs if isinstance(docs, list) else []:
        try:
            limits = TemplateLimits(int(doc["cpuCount"]), int(doc["memoryMB"]))
        except (KeyError, TypeError, ValueError):
            continue
        for name in [doc.get("templateID"), *(doc.get("aliases") or []), *(doc.get("names") or [])]:
            if isinstance(name, str):
                out[name] = limits
    return out
