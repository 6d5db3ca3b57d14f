"""REST handlers for snapshots and forks (E2B's `POST /sandboxes/{id}/snapshots`, `GET /snapshots`,
`DELETE /templates/{snapshotID}`, `POST /sandboxes/{id}/fork`), and the pause body's mode.

E2B expresses the mode as a `memory` flag (true: full, false: filesystem, absent: the default).
Forks answer 201 with one result per requested fork, each a sandbox or an error, so one failed
fork never fails its siblings; corral adds `mode` to each result (what the fork got).
"""

from __future__ import annotations


from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.api.pagination import page_limit, paginate
from corral.api.schemas import _Req, sandbox_doc
from corral.api.sandboxes import _body, _domain, _service
from corral.errors import Conflict
from corral.lifecycle.snapshots import SNAPSHOT_PREFIX, Snapshot, SnapshotNotFound



class PauseBody(_Req):
    memory: bool | None = None
    require_healthy_guest: bool = Field(default=False, alias="requireHealthyGuest")


class SnapshotBody(_Req):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    memory: bool | None = None


class ForkBody(_Req):
    timeout: int | None = Field(default=None, ge=0)
    count: int = Field(default=1)
    mode: str | None = None          # corral's: ask for "filesystem" or "full" explicitly


def memory_mode(memory: bool | None) -> str | None:
    return None if memory is None else ("full" if memory else "filesystem")


def snapshot_doc(s: Snapshot) -> dict[str, object]:
    return {"snapshotID": s.snapshot_id, "names": s.names, "sandboxID": s.sandbox_id, "templateID": s.template,
            "mode": s.mode, "sizeBytes": s.size_bytes, "createdAt": s.created_at}


async def pause(request: Request) -> Response:
    """E2B's pause: `memory` false is a filesystem-mode pause; 409 when already paused."""
    sid = request.path_params["sandbox_id"]
    body: PauseBody = await _body(request, PauseBody, empty_ok=True)
    if not await _service(request).pause(sid, memory_mode(body.memory) or "full"):
        raise Conflict(f"sandbox {sid} is already paused")
    return Response(status_code=204)


async def create_snapshot(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    body: SnapshotBody = await _body(request, SnapshotBody, empty_ok=True)
    snap = await _service(request).snapshot(sid, body.name, memory_mode(body.memory))
    return JSONResponse(snapshot_doc(snap), status_code=201)


async def list_snapshots(request: Request) -> Response:
    q = request.query_params
    page_limit(q)  # a bad limit is refused before the snapshots are listed
    snaps = _service(request).snapshots.list(sandbox_id=q.get("sandboxID") or None, name=q.get("name") or None)
    page, headers = paginate(snaps, q, "s:")
    return JSONResponse([snapshot_doc(s) for s in page], headers=headers)


async def delete_snapshot(request: Request) -> Response:
    """`Sandbox.delete_snapshot` sends DELETE /templates/{id}; the route matches only ids with the
    snapshot prefix, every other id stays the template API's (api/template_builds.py)."""
    snapshot_id = SNAPSHOT_PREFIX + request.path_params["rest"]
    if not _service(request).snapshots.delete(snapshot_id):
        raise SnapshotNotFound(snapshot_id)
    return Response(status_code=204)


async def fork(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    body: ForkBody = await _body(request, ForkBody, empty_ok=True)
    results = await _service(request).fork(sid, body.count, body.timeout, body.mode)
    out = []
    for r in results:
        if r.record is not None:
            out.append({"sandbox": sandbox_doc(r.record, _domain(request)), "mode": r.mode})
        else:
            assert r.error is not None
            out.append({"error": {"code": r.error.status, "message": str(r.error)}, "mode": r.mode})
    return JSONResponse(out, status_code=201)


routes = [
    Route("/sandboxes/{sandbox_id}/pause", pause, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/snapshots", create_snapshot, methods=["POST"]),
    Route("/snapshots", list_snapshots, methods=["GET"]),
    Route("/templates/" + SNAPSHOT_PREFIX + "{rest}", delete_snapshot, methods=["DELETE"]),
    Route("/sandboxes/{sandbox_id}/fork", fork, methods=["POST"]),
]
