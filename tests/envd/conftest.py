from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.envd.helpers import Daemon, start_daemon, stop_daemon


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """One daemon per test module (token set, 8 MiB upload limit)."""
    d = start_daemon(max_upload_bytes=8 * 1024 * 1024)
    yield d
    stop_daemon(d)


@pytest.fixture
def home(daemon: Daemon) -> Path:
    return daemon.sandbox.user_home
