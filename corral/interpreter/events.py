"""The NDJSON events of an `/execute` stream, and the MIME bundle -> result mapping.

One function per event kind keeps the wire shape in one place. Results follow the SDK's model:
known MIME types become named fields, anything else goes under `extra`, and absent fields are
left out rather than sent as null.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

Event = dict[str, Any]

# MIME type -> result field, as the SDK's Result model names them.
MIME_FIELDS: dict[str, str] = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def stream(name: str, text: str, timestamp: str | None = None) -> Event:
    return {"type": name, "text": text, "timestamp": timestamp or now_iso()}


def number_of_executions(count: int) -> Event:
    return {"type": "number_of_executions", "execution_count": count}


def error(name: str, value: str, traceback: str = "") -> Event:
    return {"type": "error", "name": name, "value": value, "traceback": traceback}


def end_of_execution() -> Event:
    return {"type": "end_of_execution"}


def keepalive() -> Event:
    return {"type": "keepalive"}


def _strip_quotes(text: str) -> str:
    # A Python str result reprs as 'abc'; clients want the text, as E2B sends it.
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def result(bundle: dict[str, Any], is_main_result: bool) -> Event:
    """A result event from a MIME bundle (Jupyter `data`)."""
    out: Event = {"type": "result"}
    extra: dict[str, Any] = {}
    for mime, value in bundle.items():
        field = MIME_FIELDS.get(mime)
        if field is None:
            extra[mime] = value
            continue
        if value is None:
            continue
        if field == "text" and isinstance(value, str):
            value = _strip_quotes(value)
        out[field] = value
    out["extra"] = extra
    out["is_main_result"] = is_main_result
    return out


def encode(event: Event) -> bytes:
    """One NDJSON line. json.dumps never emits a raw newline, so a line is never split or blank."""
    return json.dumps(event, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
