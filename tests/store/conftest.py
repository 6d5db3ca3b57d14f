"""Every store test runs twice: on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.postgres import Cluster, start_cluster

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """A database no other test uses: a path (SQLite) or a plain postgresql:// URL."""
    if request.param == "sqlite":
        return tmp_path / "corral.db"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"t{next(_names)}")
