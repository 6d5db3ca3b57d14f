"""Turning a database location into an engine, and a bad one into one clear error.

A location is either a path (one machine: a SQLite file, created 0600 inside a 0700 directory
because it holds sandbox access tokens) or a URL from `CORRAL_DATABASE_URL`. A plain
`postgresql://user@host:port/db` URL uses psycopg 3, the driver corral ships with, so operators
write the URL their PostgreSQL tools already accept; `postgres://` (the short form some hosting
services print) means the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from corral.errors import Unavailable

SUPPORTED = ("sqlite", "postgresql")


class StoreError(Unavailable):
    """The database is misconfigured or out of reach (a 503: retrying later may work)."""


def describe(url: URL) -> str:
    """The URL as it may be shown to a person: never with its password, nor the driver corral
    added to what the operator wrote."""
    return url.render_as_string(hide_password=True).replace("postgresql+psycopg://", "postgresql://", 1)


def parse_url(location: str | Path) -> URL:
    if isinstance(location, Path):
        return URL.create("sqlite", database=str(location))
    raw = location.strip()
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(
            f"invalid database URL {_redact(raw)!r}: expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DB "
            "or sqlite:///PATH") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend not in SUPPORTED:
        raise StoreError(f"unsupported database {backend!r} in {describe(url)!r}: corral stores state in "
                         "PostgreSQL (postgresql://...) or SQLite (sqlite:///PATH)")
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise StoreError(f"database driver {driver!r} is not installed: use postgresql://... (psycopg 3)")
        if not url.database:
            raise StoreError(f"database URL {describe(url)!r} names no database: add /DBNAME")
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite" and not url.database:
        raise StoreError("sqlite URL names no file: use sqlite:////absolute/path/corral.db")
    return url


def _redact(raw: str) -> str:
    """Hide what looks like a password in a URL that did not even parse."""
    scheme, sep, rest = raw.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else raw
    return raw


def prepare_sqlite_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        path.touch(mode=0o600)


def make_engine(location: str | Path) -> Engine:
    url = parse_url(location)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            prepare_sqlite_file(Path(url.database))
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        # pre_ping: a connection the database closed (restart, failover, idle timeout) is
        # replaced before use instead of failing the request that drew it from the pool.
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                             connect_args={"connect_timeout": 10})
    except NoSuchModuleError as exc:  # pragma: no cover - psycopg is a pinned dependency
        raise StoreError(f"database driver missing: {exc}") from None


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
