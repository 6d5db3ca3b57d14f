"""A small REST client for CLI commands that talk to a running server."""

from __future__ import annotations

import os
from typing import Any

import httpx

from corral.cli.errors import CliError


def server_url() -> str:
    return os.environ.get("CORRAL_URL") or os.environ.get("E2B_API_URL") or "http://127.0.0.1:3000"


def api_key() -> str:
    key = os.environ.get("E2B_API_KEY") or os.environ.get("CORRAL_API_KEY", "").split(",")[0]
    if not key:
        raise CliError("no API key: set E2B_API_KEY (see `corral keys create` and `corral env`)")
    return key


def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    url = server_url()
    try:
        resp = httpx.request(method, url + path, headers={"X-API-Key": api_key()}, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the corral server at {url}: {exc}") from None
    if resp.status_code >= 400 and resp.status_code != 404:
        try:
            message = resp.json().get("message", resp.text)
        except ValueError:
            message = resp.text
        raise CliError(f"server answered {resp.status_code}: {message}")
    return resp
