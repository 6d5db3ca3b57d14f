"""Errors in the shape the E2B SDK parses: `{"code": <int>, "message": "..."}`.

One handler for the product's `CorralError` (whose subclasses carry their HTTP status) and one
for Starlette's own HTTP errors (unknown route, wrong method), registered once in the app.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from corral.errors import CorralError


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


async def corral_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CorralError)
    return error_response(exc.status, exc.message)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


EXCEPTION_HANDLERS = {CorralError: corral_error_handler, HTTPException: http_error_handler}
