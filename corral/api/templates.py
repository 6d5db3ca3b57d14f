"""`GET /templates`: the built templates, in the shape of E2B's template listing."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral import ENVD_VERSION


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else "1970-01-01T00:00:00Z"


async def list_templates(request: Request) -> Response:
    out = []
    for t in request.app.state.templates.list():
        created = _iso(getattr(t, "created_at", None))
        out.append({
            "templateID": t.name,
            "buildID": getattr(t, "recipe_hash", None) or t.name,
            "aliases": [t.name, *getattr(t, "aliases", ())],
            "cpuCount": getattr(t, "cpu_count", None) or 2,
            "memoryMB": getattr(t, "memory_mb", None) or 1024,
            "diskSizeMB": getattr(t, "disk_mb", None) or 2048,
            "public": False,
            "buildStatus": "ready",
            "envdVersion": ENVD_VERSION,
            "createdAt": created,
            "updatedAt": created,
            "buildCount": 1,
            "spawnCount": 0,
            "lastSpawnedAt": None,
            "createdBy": None,
        })
    return JSONResponse(out)


routes = [Route("/templates", list_templates, methods=["GET"])]
