"""The template build API that E2B's SDK `Template.build` and the CLI's `template create` call.

Routes and status codes follow E2B's OpenAPI spec as the SDKs parse it:
`POST /v3/templates` (202), `GET /templates/{id}/files/{hash}` (201, with an upload link),
`PUT` of the archive to that link, `POST /v2/templates/{id}/builds/{buildID}` (202),
`GET /templates/{id}/builds/{buildID}/status` (200, log entries from `logsOffset`, at most
`limit`), `GET /templates/aliases/{alias}`, `GET`/`DELETE /templates/{id}`, and the tag routes
`POST`/`DELETE /templates/tags` and `GET /templates/{id}/tags`. The work is in
`corral.builder.remote`; this module only parses requests and shapes answers.

The upload link is the one route without an API key (the SDK sends none there): it is under
`UPLOAD_PREFIX`, which the app lets through, and carries its own signature instead.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.errors import InvalidRequest, NotFound
from corral.templates import TemplateResources
from corral.builder.remote.records import TemplateRecord
from corral.builder.remote.service import Limits, TemplateBuilds
from corral.wire import ENVD_VERSION

UPLOAD_PREFIX = "/templates/uploads/"
MAX_JSON_BODY = 4 * 1024 * 1024
_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}

def make_service(state: Any) -> TemplateBuilds:
    settings = state.settings
    defaults = TemplateResources()      # what a template gets unless the build asks for more or less
    limits = Limits(max_cpu=settings.ceilings.cpu_count, max_memory_mb=settings.ceilings.memory_mb,
                    default_cpu=defaults.cpu_count, default_memory_mb=defaults.memory_mb)
    return TemplateBuilds(state.templates, settings.data_dir, limits, network=bool(settings.egress))


def builds_service(request: Request) -> TemplateBuilds:
    """The build service of this app (made on first use)."""
    state = request.app.state
    service = getattr(state, "template_builds", None)
    if service is None:
        service = state.template_builds = make_service(state)
    return service


async def _json(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise InvalidRequest("request body is larger than 4 MiB")
    try:
        data = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def _int_param(request: Request, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer")
    return min(int(raw), top)


def _template_doc(service: TemplateBuilds, template_id: str, rec: TemplateRecord | None) -> dict[str, Any]:
    info = service.store.get(template_id) if service.store.exists(template_id) else None
    last = rec.builds[-1] if rec and rec.builds else None
    created = rec.created_at if rec else (info.created_at if info else "1970-01-01T00:00:00Z")
    status = ("ready" if info else "building") if last is None else (
        last.status if last.status != "ready" or info else "error")
    builds = []
    for b in (rec.builds if rec else []):
        doc = {"buildID": b.build_id, "status": b.status, "createdAt": b.created_at, "updatedAt": b.updated_at,
               "cpuCount": b.cpu_count, "memoryMB": b.memory_mb, "envdVersion": ENVD_VERSION}
        if b.finished_at:
            doc["finishedAt"] = b.finished_at
        builds.append(doc)
    return {
        "templateID": template_id,
        "buildID": last.build_id if last else (info.recipe_hash if info else template_id),
        "cpuCount": rec.cpu_count if rec else (info.cpu_count if info else 2),
        "memoryMB": rec.memory_mb if rec else (info.memory_mb if info else 1024),
        "diskSizeMB": info.resources.disk_mb if info else 2048,
        "public": False,
        "aliases": [template_id, *(info.aliases if info else ())],
        "names": [template_id],
        "createdAt": created,
        "updatedAt": rec.updated_at if rec else created,
        "createdBy": None,
        "lastSpawnedAt": None,
        "spawnCount": 0,
        "buildCount": len(builds) or 1,
        "envdVersion": ENVD_VERSION,
        "buildStatus": status,
        "builds": builds,
    }


async def request_build(request: Request) -> Response:
    service = builds_service(request)
    rec, build_id, tags = service.request(await _json(request))
    return JSONResponse({"templateID": rec.name, "buildID": build_id, "public": False, "names": [rec.name],
                         "tags": tags, "aliases": [rec.name]}, status_code=202)


async def file_link(request: Request) -> Response:
    p = request.path_params
    doc = builds_service(request).file_link(p["template_id"], p["files_hash"], str(request.base_url))
    return JSONResponse(doc, status_code=201)


async def upload(request: Request) -> Response:
    p = request.path_params
    service = builds_service(request)
    q = request.query_params
    service.uploads.verify(p["template_id"], p["files_hash"], q.get("expires", ""), q.get("signature", ""))
    length = request.headers.get("content-length")
    stored = await service.uploads.receive(p["template_id"], p["files_hash"], request.stream(),
                                           int(length) if length and length.isdigit() else None)
    return JSONResponse({"stored": stored}, status_code=200)


async def start_build(request: Request) -> Response:
    p = request.path_params
    builds_service(request).start(p["template_id"], p["build_id"], await _json(request))
    return Response(status_code=202)


async def build_status(request: Request) -> Response:
    p = request.path_params
    offset = _int_param(request, "logsOffset", 0, 10**9)
    limit = _int_param(request, "limit", 100, 100)
    doc = builds_service(request).status(p["template_id"], p["build_id"], offset, limit)
    level = request.query_params.get("level")
    if level in _LEVELS:
        doc["logEntries"] = [e for e in doc["logEntries"] if _LEVELS.get(e["level"], 1) >= _LEVELS[level]]
    return JSONResponse(doc)


async def alias(request: Request) -> Response:
    name = request.path_params["alias"]
    service = builds_service(request)
    if service.records.get(name) is None and not service.store.exists(name):
        raise NotFound(f"template {name!r} not found")
    return JSONResponse({"templateID": name, "public": False})


async def get_template(request: Request) -> Response:
    template_id = request.path_params["template_id"]
    service = builds_service(request)
    rec = service.records.get(template_id)
    if rec is None and not service.store.exists(template_id):
        raise NotFound(f"template {template_id!r} not found")
    return JSONResponse(_template_doc(service, template_id, rec))


async def delete_template(request: Request) -> Response:
    builds_service(request).delete(request.path_params["template_id"])
    return Response(status_code=204)


async def assign_tags(request: Request) -> Response:
    body = await _json(request)
    build_id, tags = builds_service(request).assign_tags(body.get("target"), body.get("tags"))
    return JSONResponse({"tags": tags, "buildID": build_id}, status_code=201)


async def remove_tags(request: Request) -> Response:
    body = await _json(request)
    builds_service(request).remove_tags(body.get("name"), body.get("tags"))
    return Response(status_code=204)


async def list_tags(request: Request) -> Response:
    rec = builds_service(request).record(request.path_params["template_id"])
    return JSONResponse([{"tag": tag, "buildID": v["build_id"], "createdAt": v["created_at"]}
                         for tag, v in sorted(rec.tags.items())])


def close(state: Any) -> None:
    service = getattr(state, "template_builds", None)
    if service is not None:
        service.close()


# Literal paths first: `/templates/tags` must not be taken for a template called "tags".
routes = [
    Route("/v3/templates", request_build, methods=["POST"]),
    Route("/templates/tags", assign_tags, methods=["POST"]),
    Route("/templates/tags", remove_tags, methods=["DELETE"]),
    Route("/templates/aliases/{alias}", alias, methods=["GET"]),
    Route(UPLOAD_PREFIX + "{template_id}/{files_hash}", upload, methods=["PUT"]),
    Route("/templates/{template_id}/files/{files_hash}", file_link, methods=["GET"]),
    Route("/v2/templates/{template_id}/builds/{build_id}", start_build, methods=["POST"]),
    Route("/templates/{template_id}/builds/{build_id}/status", build_status, methods=["GET"]),
    Route("/templates/{template_id}/tags", list_tags, methods=["GET"]),
    Route("/templates/{template_id}", get_template, methods=["GET"]),
    Route("/templates/{template_id}", delete_template, methods=["DELETE"]),
]
