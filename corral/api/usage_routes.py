"""REST routes for metering: the usage report (`GET /usage`, what `corral usage` and the
dashboard's charts read), a sandbox's logs as the SDK's API client reads them (v1 and v2), and its
metric history (`get_metrics(start, end)`), plus the bulk latest-metrics call.

Logs are the server's log of a sandbox's life (start or pool claim, pauses, resumes, the end and
its reason); they stay readable after the sandbox is gone, like usage.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.api.metrics_history import MetricsHistory, sample_doc
from corral.errors import CorralError, InvalidRequest
from corral.lifecycle import SandboxNotFound, SandboxService
from corral.store import SandboxEvent
from corral.usage import PriceFileError, load_prices

DEFAULT_PERIOD = timedelta(days=30)
MAX_LOGS = 1000
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_BY = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def _service(request: Request) -> SandboxService:
    return request.app.state.service


def parse_when(raw: str, now: datetime, what: str) -> datetime:
    """An RFC 3339 time, a date (midnight UTC), or a span back from now (`90m`, `24h`, `7d`)."""
    raw = raw.strip()
    m = _RELATIVE.match(raw)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"invalid {what}: expected a date, an RFC 3339 time or a span like 24h or 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


async def usage(request: Request) -> Response:
    q = request.query_params
    now = datetime.now(timezone.utc)
    until = parse_when(q["until"], now, "until") if q.get("until") else now
    since = parse_when(q["since"], now, "since") if q.get("since") else until - DEFAULT_PERIOD
    if until <= since:
        raise InvalidRequest("invalid period: until must be after since")
    by = q.get("by", "template")
    if not _BY.match(by):
        raise InvalidRequest("invalid by: expected template, tier or a metadata key")
    try:
        prices = load_prices(request.app.state.settings.prices)
    except PriceFileError as exc:
        raise CorralError(f"the server's price file: {exc.message}") from None
    return JSONResponse(_service(request).metering.report(since=since, until=until, by=by, prices=prices))


def _known(request: Request, sid: str) -> None:
    """Logs and history exist for any sandbox ever handed to a client, live or not."""
    if not _service(request).metering.was_handed_out(sid):
        raise SandboxNotFound(sid)


def _int_param(request: Request, name: str, default: int | None, lo: int = 0, hi: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"invalid {name}: expected an integer") from None
    if value < lo or (hi is not None and value > hi):
        raise InvalidRequest(f"invalid {name}: must be between {lo} and {hi}" if hi else f"invalid {name}: must be >= {lo}")
    return value


def _ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, timezone.utc)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry(e: SandboxEvent) -> dict[str, Any]:
    return {"timestamp": _stamp(e.at), "message": e.message, "level": e.level, "fields": e.fields or {}}


async def logs_v1(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    _known(request, sid)
    start = _ms(_int_param(request, "start", None))
    limit = _int_param(request, "limit", MAX_LOGS, 0, MAX_LOGS)
    rows = _service(request).metering.db.logs(sid, start=start, limit=limit or 0)
    return JSONResponse({"logs": [{"timestamp": _stamp(e.at), "line": e.message} for e in rows],
                         "logEntries": [_entry(e) for e in rows]})


async def logs_v2(request: Request) -> Response:
    sid = request.path_params["sandbox_id"]
    _known(request, sid)
    q = request.query_params
    direction = q.get("direction", "forward")
    if direction not in ("forward", "backward"):
        raise InvalidRequest("invalid direction: expected forward or backward")
    level = q.get("level") or None
    if level not in (None, "debug", "info", "warn", "error"):
        raise InvalidRequest("invalid level: expected debug, info, warn or error")
    rows = _service(request).metering.db.logs(
        sid, start=_ms(_int_param(request, "cursor", None)), limit=_int_param(request, "limit", MAX_LOGS, 0, MAX_LOGS) or 0,
        backward=direction == "backward", level=level, search=q.get("search") or None)
    return JSONResponse({"logs": [_entry(e) for e in rows]})


async def metrics(request: Request) -> Response:
    """`get_metrics(start, end)`: the stored samples in [start, end] (unix seconds); a running
    sandbox not sampled yet answers one sample taken now."""
    sid = request.path_params["sandbox_id"]
    start = _int_param(request, "start", None)
    end = _int_param(request, "end", None)
    service = _service(request)
    try:
        rec = service.get(sid)
    except SandboxNotFound:
        rec = None
        _known(request, sid)
    to_dt = (lambda v: None if v is None else datetime.fromtimestamp(v, timezone.utc))
    rows = service.metering.db.samples(sid, to_dt(start), to_dt(end + 1 if end is not None else None))
    docs = [sample_doc(r) for r in rows]
    if not docs and rec is not None and end is None:
        try:
            docs = [await request.app.state.meter.sample(sid)]
        except SandboxNotFound:
            pass
    return JSONResponse(docs)


async def metrics_bulk(request: Request) -> Response:
    """`GET /sandboxes/metrics?sandbox_ids=a,b`: the newest sample of each running sandbox."""
    ids = [s for s in request.query_params.get("sandbox_ids", "").split(",") if s]
    if not ids:
        raise InvalidRequest("sandbox_ids is required")
    if len(ids) > 100:
        raise InvalidRequest("at most 100 sandbox_ids")
    history: MetricsHistory = request.app.state.metrics_history
    out = {}
    for sid in ids:
        doc = history.latest.get(sid)
        if doc is None:
            try:
                doc = await request.app.state.meter.sample(sid)
            except SandboxNotFound:
                continue
        out[sid] = doc
    return JSONResponse({"sandboxes": out})


routes = [
    Route("/usage", usage, methods=["GET"]),
    Route("/sandboxes/metrics", metrics_bulk, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/logs", logs_v1, methods=["GET"]),
    Route("/v2/sandboxes/{sandbox_id}/logs", logs_v2, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/metrics", metrics, methods=["GET"]),
]
