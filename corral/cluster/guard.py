"""One database, one kind of owner: two all-in-one servers must never share a database.

At start an all-in-one server re-adopts or cleans up every live row no node owns, so a second
one on the same database would destroy the first one's sandboxes (and nodes would see an
all-in-one server's rows as nobody's). So for its whole life a server holds a lock on its
database: an all-in-one server an exclusive one, a node a shared one (nodes coexist). On
PostgreSQL that is a session-level advisory lock on a connection kept open for the purpose (it
goes away with the process, however the process ends); on SQLite an `flock` on a file beside the
database. API replicas run no sandbox and take none.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from corral.errors import Conflict
from corral.store.engine import make_engine, parse_url

# A constant of corral's own, "corral-s" in ASCII: not the migrations' key ("corral"), which
# every process takes (exclusively, for one transaction) when it opens the store.
_LOCK_KEY = 0x636F7272616C2D73


class GuardError(Conflict):
    """Another server already owns this database in a way this one cannot share."""


class DatabaseGuard:
    def __init__(self, location: str | Path, role: str) -> None:
        if role not in ("all", "node"):
            raise ValueError(f"role {role!r} takes no database lock")
        self.location, self.role = location, role
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._fd: int | None = None

    def acquire(self) -> "DatabaseGuard":
        url = parse_url(self.location)
        if url.get_backend_name() == "sqlite":
            self._flock(Path(url.database or "corral.db"))
        else:
            self._advisory(str(self.location))
        return self

    def _refused(self) -> GuardError:
        if self.role == "all":
            return GuardError("another corral server (all-in-one or a cluster node) already uses this database: "
                              "two all-in-one servers must not share one database (give each its own, or run "
                              "a cluster: --role api and --role node)")
        return GuardError("an all-in-one corral server uses this database: a node cannot join it "
                          "(stop that server, or give the cluster its own database)")

    def _advisory(self, url: str) -> None:
        self._engine = make_engine(url)
        self._conn = self._engine.connect()
        fn = "pg_try_advisory_lock" if self.role == "all" else "pg_try_advisory_lock_shared"
        got = self._conn.exec_driver_sql(f"SELECT {fn}({_LOCK_KEY})").scalar()
        self._conn.commit()   # the lock is the session's, not the transaction's
        if not got:
            self.release()
            raise self._refused()

    def _flock(self, db: Path) -> None:
        db.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(str(db) + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if self.role == "all" else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise self._refused() from None

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
