"""The operator's dashboard: one page served by `corral serve` at `/dashboard`.

The page and its script are public and hold no data; everything they show comes from the
control-plane API with the API key, which the login form keeps in sessionStorage (gone when the
tab closes, never in a URL: the form never submits, and the CSP forbids form submission). A strict
Content-Security-Policy allows only this page's own script and style, and the script builds every
node with textContent, so sandbox metadata (user input) can never become markup.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

ASSETS = Path(__file__).with_name("dashboard_assets")
_FILES = {"/dashboard": ("index.html", "text/html; charset=utf-8"),
          "/dashboard/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/dashboard/app.css": ("app.css", "text/css; charset=utf-8")}
PUBLIC_PATHS = frozenset(_FILES)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


async def asset(request: Request) -> Response:
    name, media_type = _FILES[request.url.path]
    return FileResponse(ASSETS / name, media_type=media_type, headers=SECURITY_HEADERS)


async def live(request: Request) -> Response:
    """What the dashboard's table shows: every running or paused sandbox with its tier, age,
    reservation and newest CPU and memory sample."""
    service = request.app.state.service
    latest = request.app.state.metrics_history.latest
    now = datetime.now(timezone.utc)
    out = []
    for rec in service.list():
        sample = latest.get(rec.sandbox_id)
        if sample is None and rec.state == "running":
            try:
                sample = await request.app.state.meter.sample(rec.sandbox_id)
            except LookupError:
                continue
        out.append({
            "sandboxID": rec.sandbox_id, "template": rec.alias or rec.template_id, "tier": rec.tier,
            "state": rec.state, "startedAt": rec.started_at.isoformat(),
            "ageSeconds": round((now - rec.started_at).total_seconds(), 1), "endAt": rec.end_at.isoformat(),
            "cpuCount": rec.cpu_count, "memoryMB": rec.memory_mb, "metadata": rec.metadata_ or {},
            "cpuUsedPct": sample["cpuUsedPct"] if sample else None,
            "memUsed": sample["memUsed"] if sample else None,
        })
    return JSONResponse(out, headers={"Cache-Control": "no-store"})


routes = [
    *(Route(path, asset, methods=["GET"]) for path in _FILES),
    Route("/dashboard/api/sandboxes", live, methods=["GET"]),
]
