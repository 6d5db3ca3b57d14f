"""E2B's volume content API, `/volumecontent/{volumeID}/{file|dir|path}?path=…`, which the SDK's
`Volume` instances call with the volume's token (`Authorization: Bearer <token>`, from
`VolumeAndToken`) instead of an API key: the token is the volume's and opens only that volume.

    GET file (bytes), PUT file (body; 201 entry; `force` overwrites, else 409 if it exists)
    GET dir (entries; `depth`), POST dir (201 entry; `force` makes parents, accepts an existing dir)
    GET path (entry), PATCH path (`{uid, gid, mode}`: entry), DELETE path (204, recursive)

Paths are the volume's own ("/" is its root), normalised here; the helper resolves them chrooted
in the volume (lifecycle/volume_content.py).
"""

from __future__ import annotations

import hmac
import posixpath

from pydantic import Field, StrictInt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from corral.api.schemas import _Req
from corral.api.sandboxes import _body, _service
from corral.errors import InvalidRequest, NotFound, Unauthorized
from corral.lifecycle import volume_content
from corral.store import VolumeRecord
from corral.volumes import check_volume_id

PREFIX = "/volumecontent/"


def _volume(request: Request) -> VolumeRecord:
    raw = request.path_params["volume_id"]
    auth = request.headers.get("authorization", "")
    token = auth[7:] if auth[:7].lower() == "bearer " else ""
    try:
        rec = _service(request).volumes.get(check_volume_id(raw))
    except (InvalidRequest, NotFound):
        rec = None
    if rec is None or not token or not hmac.compare_digest(token.encode(), rec.token.encode()):
        raise Unauthorized("invalid volume token")   # the same answer whether or not the id exists
    return rec


def _path(request: Request) -> str:
    raw = request.query_params.get("path", "")
    if "\x00" in raw or len(raw) > 4096:
        raise InvalidRequest("invalid path")
    return posixpath.normpath("/" + raw.strip().lstrip("/")) if raw.strip() else "/"


def _int(request: Request, name: str, lo: int, hi: int) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        n = int(value, 10)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer") from None
    if not lo <= n <= hi:
        raise InvalidRequest(f"{name} must be {lo}..{hi}")
    return n


def _meta(request: Request) -> dict[str, object]:
    return {"uid": _int(request, "uid", 0, 2**32 - 2), "gid": _int(request, "gid", 0, 2**32 - 2),
            "mode": _int(request, "mode", 0, 0o7777),
            "force": request.query_params.get("force", "").lower() == "true"}


def _image(request: Request, rec: VolumeRecord):  # type: ignore[no-untyped-def]
    return _service(request).volumes.storage.image(rec.volume_id)


async def _call(request: Request, op: dict[str, object], status: int = 200, body: bool = False) -> Response:
    rec = _volume(request)
    try:
        result = await volume_content.call(_image(request, rec), op, request.stream() if body else None)
    except volume_content.VolumeContentError as exc:
        return JSONResponse({"code": exc.status, "message": str(exc)}, status_code=exc.status)
    if result is None:
        return Response(status_code=204)
    return JSONResponse(result, status_code=status)


async def file_get(request: Request) -> Response:
    rec = _volume(request)
    try:
        size, stream = await volume_content.read(_image(request, rec), _path(request))
    except volume_content.VolumeContentError as exc:
        return JSONResponse({"code": exc.status, "message": str(exc)}, status_code=exc.status)
    return StreamingResponse(stream, media_type="application/octet-stream", headers={"Content-Length": str(size)})


async def file_put(request: Request) -> Response:
    return await _call(request, {"op": "write", "path": _path(request), **_meta(request)}, 201, body=True)


async def dir_get(request: Request) -> Response:
    depth = _int(request, "depth", 1, 64) or 1
    return await _call(request, {"op": "list", "path": _path(request), "depth": depth})


async def dir_post(request: Request) -> Response:
    return await _call(request, {"op": "mkdir", "path": _path(request), **_meta(request)}, 201)


async def path_get(request: Request) -> Response:
    return await _call(request, {"op": "stat", "path": _path(request)})


class MetadataBody(_Req):
    uid: StrictInt | None = Field(default=None, ge=0, le=2**32 - 2)
    gid: StrictInt | None = Field(default=None, ge=0, le=2**32 - 2)
    mode: StrictInt | None = Field(default=None, ge=0, le=0o7777)


async def path_patch(request: Request) -> Response:
    body: MetadataBody = await _body(request, MetadataBody, empty_ok=True)
    return await _call(request, {"op": "chmeta", "path": _path(request), "uid": body.uid, "gid": body.gid,
                                 "mode": body.mode})


async def path_delete(request: Request) -> Response:
    if _path(request) == "/":
        raise InvalidRequest("the volume's root cannot be removed")
    return await _call(request, {"op": "remove", "path": _path(request)})


routes = [
    Route(PREFIX + "{volume_id}/file", file_get, methods=["GET"]),
    Route(PREFIX + "{volume_id}/file", file_put, methods=["PUT"]),
    Route(PREFIX + "{volume_id}/dir", dir_get, methods=["GET"]),
    Route(PREFIX + "{volume_id}/dir", dir_post, methods=["POST"]),
    Route(PREFIX + "{volume_id}/path", path_get, methods=["GET"]),
    Route(PREFIX + "{volume_id}/path", path_patch, methods=["PATCH"]),
    Route(PREFIX + "{volume_id}/path", path_delete, methods=["DELETE"]),
]
