"""REST handlers for `/sandboxes` and `/v2/sandboxes`, with E2B's status codes.

The SDK special-cases a few statuses (404 on kill means False, 409 on pause means False, 201 vs 200
on connect tells whether a resume happened), so each handler answers exactly those. Failures are
`CorralError`s, mapped to E2B's error shape by the one handler the app registers (api/errors.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.api.pagination import page_limit, paginate
from corral.api.template_tags import resolve_template_ref
from corral.api.schemas import (ConnectBody, NewSandbox, RefreshBody, TimeoutBody, detail_doc, listed_doc,
                                network_update, sandbox_doc)
from corral.errors import Conflict, InvalidRequest
from corral.lifecycle import SandboxNotFound, SandboxService
from corral.lifecycle import timing as server_timing
from corral.lifecycle.idempotency import body_hash, caller_scope, check_key
from corral.store import SandboxRecord



def _service(request: Request) -> SandboxService:
    return request.app.state.service


def _domain(request: Request) -> str | None:
    return request.app.state.settings.domain


async def _body(request: Request, model: type[BaseModel], *, empty_ok: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if empty_ok:
            raw = b"{}"
        else:
            raise InvalidRequest("request body is required")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"invalid {where}: {first['msg']}") from None


async def create(request: Request) -> Response:
    body: NewSandbox = await _body(request, NewSandbox)
    params = body.to_request()
    template = resolve_template_ref(request, params.template)   # "name:tag"
    if template != params.template:
        params = replace(params, template=template)
    service = _service(request)
    key = request.headers.get("idempotency-key")
    t0 = time.perf_counter()
    if key is None:
        rec = await service.create(params)
    else:
        # A retried create (same key, same body) answers with the sandbox the first one made.
        scope = caller_scope(request.headers.get("x-api-key") or request.headers.get("authorization"))
        rec, replayed = await service.idempotent.create(scope, check_key(key), body_hash(json.loads(await request.body())),
                                                        params)
        if replayed:
            server_timing.note("create", "idempotent replay")
            return JSONResponse(sandbox_doc(rec, _domain(request)), status_code=201,
                                headers={"Idempotent-Replayed": "true"})
    request.app.state.telemetry.created(time.perf_counter() - t0, rec.template_id)
    return JSONResponse(sandbox_doc(rec, _domain(request)), status_code=201)


async def get_one(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    rec = _service(request).get(sid)
    doc = detail_doc(rec, _domain(request))
    if (paused := _service(request).pause_state(sid)) is not None:
        doc["corralPause"] = paused     # how it is paused and what the pause survives
    if mounts := _service(request).volumes.names_of(sid):
        doc["volumeMounts"] = mounts
    return JSONResponse(doc)


async def kill(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    if not await _service(request).kill(sid):
        raise SandboxNotFound(sid)
    request.app.state.telemetry.killed()
    return Response(status_code=204)


async def set_timeout(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    body: TimeoutBody = await _body(request, TimeoutBody)
    await _service(request).set_timeout(sid, body.timeout)
    return Response(status_code=204)


async def refresh(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    body: RefreshBody = await _body(request, RefreshBody, empty_ok=True)
    await _service(request).refresh(sid, body.duration)
    return Response(status_code=204)


async def connect(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    body: ConnectBody = await _body(request, ConnectBody, empty_ok=True)
    rec, resumed = await _service(request).connect(sid, body.timeout)
    return JSONResponse(sandbox_doc(rec, _domain(request)), status_code=201 if resumed else 200)


async def resume(request: Request) -> Response:
    """Legacy v1 resume: 409 when the sandbox is already running."""
    sid = request.path_params["sandbox_id"]
    body: ConnectBody = await _body(request, ConnectBody, empty_ok=True)
    rec = _service(request).get(sid)
    if rec.state != "paused":
        raise Conflict(f"sandbox {sid} is already running")
    rec, _ = await _service(request).connect(sid, body.timeout)
    return JSONResponse(sandbox_doc(rec, _domain(request)), status_code=201)


def _metadata_filter(raw: str | None) -> dict[str, str]:
    """The SDK quotes each key and value, joins them like a query string, and sends that string
    as one query value; Starlette undoes the outer encoding, we undo the rest."""
    if not raw:
        return {}
    try:
        return {unquote(k): unquote(v) for k, v in parse_qsl(raw, keep_blank_values=True, strict_parsing=True)}
    except ValueError:
        raise InvalidRequest("invalid metadata filter: expected key=value pairs joined by '&'") from None


def _filter(records: list[SandboxRecord], request: Request, default_states: set[str]) -> list[SandboxRecord]:
    q = request.query_params
    meta = _metadata_filter(q.get("metadata"))
    states = {s.strip() for s in q.get("state", "").split(",") if s.strip()} or default_states
    bad = states - {"running", "paused"}
    if bad:
        raise InvalidRequest(f"invalid state filter: {', '.join(sorted(bad))} (expected running, paused)")
    out = [r for r in records if r.state in states and all((r.metadata_ or {}).get(k) == v for k, v in meta.items())]
    if template := q.get("template"):
        out = [r for r in out if template in (r.template_id, r.alias)]
    if after := q.get("startedAfter"):
        try:
            cutoff = datetime.fromisoformat(after.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest("invalid startedAfter: expected an RFC 3339 timestamp") from None
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=timezone.utc)
        out = [r for r in out if r.started_at >= cutoff]   # "started at or after", as E2B's API
    return sorted(out, key=lambda r: r.started_at)


async def list_v1(request: Request) -> Response:
    recs = _filter(_service(request).list(), request, {"running", "paused"})
    return JSONResponse([listed_doc(r) for r in recs])


async def list_v2(request: Request) -> Response:
    q = request.query_params
    page_limit(q)  # a bad limit is refused before anything else is looked at
    order = q.get("order", "desc")   # E2B's default: newest first
    if order not in ("asc", "desc"):
        raise InvalidRequest("invalid order: expected asc or desc")
    recs = _filter(_service(request).list(), request, {"running", "paused"})
    if order == "desc":
        recs.reverse()
    page, headers = paginate(recs, q, "o:")
    return JSONResponse([listed_doc(r) for r in page], headers=headers)


async def update_network(request: Request) -> Response:
    """E2B's `PUT /sandboxes/{id}/network`: replace the sandbox's egress rules at runtime."""
    sid = request.path_params["sandbox_id"]
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    _service(request).get(sid)  # an unknown sandbox is a 404 whatever the body says
    await _service(request).update_network(sid, network_update(body))
    return Response(status_code=204)


async def network_audit(request: Request) -> Response:
    """Per-sandbox egress audit: hosts contacted, bytes each way, denied attempts, names asked."""
    sid = request.path_params["sandbox_id"]
    return JSONResponse(await _service(request).network_audit(sid))


routes = [
    Route("/sandboxes", create, methods=["POST"]),
    Route("/v2/sandboxes", create, methods=["POST"]),
    Route("/sandboxes", list_v1, methods=["GET"]),
    Route("/v2/sandboxes", list_v2, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}", get_one, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}", kill, methods=["DELETE"]),
    Route("/sandboxes/{sandbox_id}/timeout", set_timeout, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/refreshes", refresh, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/resume", resume, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/connect", connect, methods=["POST"]),
    Route("/v2/sandboxes/{sandbox_id}/connect", connect, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/network", update_network, methods=["PUT"]),
    Route("/sandboxes/{sandbox_id}/network/audit", network_audit, methods=["GET"]),
]
