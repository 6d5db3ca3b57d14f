"""REST handlers for E2B's team volumes: `POST /volumes` (201 VolumeAndToken), `GET /volumes`
([Volume]), `GET /volumes/{volumeID}` (VolumeAndToken), `DELETE /volumes/{volumeID}` (204; 409
while a sandbox mounts it). corral adds `sizeMB` (the quota) and `usedBytes` to what it returns,
and takes the size on create from its extension object, `{"name": ..., "corral": {"sizeMB": N}}`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.api.schemas import _Req
from corral.api.sandboxes import _body, _service
from corral.errors import InvalidRequest
from corral.lifecycle.volumes import VolumeNotFound
from corral.store import VolumeRecord
from corral.volumes import check_volume_id


class NewVolume(_Req):
    name: str = Field(min_length=1, max_length=64)
    corral: dict[str, Any] | None = None


def _size(extensions: dict[str, Any] | None) -> int | None:
    if not extensions or extensions.get("sizeMB") is None:
        return None
    size = extensions["sizeMB"]
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidRequest("corral.sizeMB must be an integer")
    return size


def volume_doc(rec: VolumeRecord, used_bytes: int | None = None, *, token: bool) -> dict[str, object]:
    doc: dict[str, object] = {"volumeID": rec.volume_id, "name": rec.name, "sizeMB": rec.size_mb}
    if token:
        doc["token"] = rec.token
    if used_bytes is not None:
        doc["usedBytes"] = used_bytes
    return doc


def _volume_id(request: Request) -> str:
    raw = request.path_params["volume_id"]
    try:
        return check_volume_id(raw)
    except InvalidRequest:
        raise VolumeNotFound(raw) from None    # no id of ours looks like that


async def create(request: Request) -> Response:
    body: NewVolume = await _body(request, NewVolume)
    rec = await _service(request).volumes.create(body.name, _size(body.corral))
    return JSONResponse(volume_doc(rec, token=True), status_code=201)


async def list_all(request: Request) -> Response:
    return JSONResponse([volume_doc(r, token=False) for r in _service(request).volumes.list()])


async def get_one(request: Request) -> Response:
    volumes = _service(request).volumes
    rec = volumes.get(_volume_id(request))
    return JSONResponse(volume_doc(rec, volumes.used_bytes(rec), token=True))


async def delete(request: Request) -> Response:
    await _service(request).volumes.delete(_volume_id(request))
    return Response(status_code=204)


routes = [
    Route("/volumes", create, methods=["POST"]),
    Route("/volumes", list_all, methods=["GET"]),
    Route("/volumes/{volume_id}", get_one, methods=["GET"]),
    Route("/volumes/{volume_id}", delete, methods=["DELETE"]),
]
