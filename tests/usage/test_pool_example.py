"""The shipped pool configuration is the spec's (§7.1) and parses as the server reads it."""

from __future__ import annotations

from corral.config import parse_pool
from tests.conftest import REPO


def _pool_line() -> str:
    lines = [ln for ln in (REPO / "examples/pools/media-gateway.env").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("CORRAL_POOL=")
    return lines[0].removeprefix("CORRAL_POOL=")


def test_media_gateway_pools_are_the_specs():
    assert parse_pool(_pool_line()) == {"media-gateway-agent": 10, "media-gateway-analysis": 5, "media-gateway-search": 5}


def test_pooled_templates_exist_in_the_repository():
    for name in parse_pool(_pool_line()):
        assert (REPO / "templates" / name).is_dir(), name
