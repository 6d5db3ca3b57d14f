"""Routing of signed `/files` URLs that name no sandbox.

`sbx.download_url()` / `upload_url()` build `<envd url>/files?path=..&signature=v1_..`. With
`E2B_DOMAIN` that URL's host names the sandbox; with `E2B_SANDBOX_URL` (every SDK version) it is
the server's own URL, and a browser or `curl` fetching it sends no routing header. The signature
is a hash over the path, the operation, the user, the expiry and the sandbox's access token, so
exactly one running sandbox's token reproduces it: that is the sandbox the URL is for.

Finding it proves nothing by itself: the request is then forwarded like any other, and that
sandbox's envd checks the signature and the expiry again. A signature that matches no sandbox is
answered here with envd's 401, so a made-up URL learns nothing about which sandboxes exist.
"""

from __future__ import annotations

import hmac
import urllib.parse

from corral.lifecycle import SandboxService
from corral.wire.signing import compute_signature, parse_expiration

FILES_PATH = "/files"


def is_signed_files_request(path: str, query_string: bytes) -> bool:
    return path == FILES_PATH and b"signature=" in query_string


def find_signed_sandbox(service: SandboxService, method: str, query_string: bytes) -> str | None:
    """The running sandbox whose access token made this URL's signature, or None."""
    query = urllib.parse.parse_qs(query_string.decode("latin-1"), keep_blank_values=True)

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    signature = one("signature")
    if not signature or not signature.startswith("v1_"):
        return None
    try:
        expiration = parse_expiration(one("signature_expiration"))
    except ValueError:
        return None
    operation = "read" if method in ("GET", "HEAD") else "write"
    path, username = one("path") or "", one("username") or None
    found = None
    for rec in service.list():
        token = rec.envd_access_token
        if rec.state != "running" or not token:
            continue
        expected = compute_signature(path, operation, username, token, expiration)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            found = rec.sandbox_id
    return found
