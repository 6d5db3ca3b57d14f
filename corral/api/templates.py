"""`GET /templates`: the built templates, in the shape of E2B's template listing."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.builder.remote.kept import is_kept_name
from corral.templates import TemplateInfo, TemplateStore
from corral.wire import ENVD_VERSION


def _iso(value: str) -> str:
    """A template's ISO 8601 creation time, normalised to E2B's second-precision UTC form."""
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "1970-01-01T00:00:00Z"
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_doc(t: TemplateInfo) -> dict[str, Any]:
    created = _iso(t.created_at)
    return {
        "templateID": t.name,
        "buildID": t.recipe_hash or t.name,
        "aliases": [t.name, *t.aliases],
        "names": [t.name, *t.aliases],   # the SDK model requires it (namespace/alias when namespaced)
        "cpuCount": t.resources.cpu_count,
        "memoryMB": t.resources.memory_mb,
        "diskSizeMB": t.resources.disk_mb,
        "public": False,
        "buildStatus": "ready",
        "envdVersion": ENVD_VERSION,
        "createdAt": created,
        "updatedAt": created,
        "buildCount": 1,
        "spawnCount": 0,
        "lastSpawnedAt": None,
        "createdBy": None,
    }


async def list_templates(request: Request) -> Response:
    store: TemplateStore = request.app.state.templates
    # The builds kept for their tags (`<name>.build-<id>`) are parts of their template, not templates.
    return JSONResponse([template_doc(t) for t in store.list() if not is_kept_name(t.name)])


routes = [Route("/templates", list_templates, methods=["GET"])]
