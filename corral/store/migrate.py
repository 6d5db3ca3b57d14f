"""Schema migrations (Alembic), applied by every process that opens the store.

Every `corral serve` (and every CLI command that opens the store) brings the schema to the
newest revision this build knows before doing anything else, so an upgrade is: install the new
corral, restart. On PostgreSQL several API replicas may start at once; a transaction-scoped
advisory lock makes one of them migrate while the others wait and then find nothing to do.
A database that a newer corral already migrated is refused with a clear message rather than
used with a schema this build does not understand.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from corral.store.engine import StoreError, describe

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions (a test keeps the two equal). Knowing it without
# loading Alembic keeps the common case, a schema already current, to one SELECT and no import.
HEAD = "0005"
# Any constant works as long as nothing else in the same database uses it: "corral" in ASCII.
_LOCK_KEY = 0x636F7272616C


def _config(connection: Connection | None = None) -> "Config":
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def revisions() -> list[str]:
    """Every revision Alembic finds in migrations/versions, newest first."""
    from alembic.script import ScriptDirectory

    return [s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()]


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to HEAD; a no-op (one SELECT) when it is there already."""
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            current = current_revision(conn)
            if current == HEAD:
                return
            _apply(engine, conn, current)
    except DBAPIError as exc:
        raise StoreError(f"cannot reach the database at {describe(engine.url)}: {first_line(exc)}") from None


def _apply(engine: Engine, conn: Connection, current: str | None) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    if current is not None and current not in revisions():
        raise StoreError(f"the database at {describe(engine.url)} has schema revision {current}, "
                         f"newer than this corral knows (it has up to {HEAD}): upgrade corral")
    try:
        command.upgrade(_config(conn), "head")
    except CommandError as exc:
        raise StoreError(f"migrating the database at {describe(engine.url)} failed: {exc}") from None


def first_line(exc: DBAPIError) -> str:
    """psycopg's and sqlite's own message, without SQLAlchemy's SQL dump and link."""
    msg = str(exc.orig) if exc.orig is not None else str(exc)
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    return lines[0] if lines else exc.__class__.__name__
