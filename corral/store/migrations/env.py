"""Alembic environment for corral's store.

corral runs migrations itself (`corral.store.migrate.upgrade`, on every start) and hands the
connection in through `config.attributes`, so the same lock and URL handling apply as at run
time. For writing a new revision by hand, `alembic -c corral/store/migrations/alembic.ini
revision --autogenerate -m "..."` connects to `CORRAL_DATABASE_URL` (default: a scratch SQLite
file) instead.
"""

from __future__ import annotations

import os

from alembic import context

from corral.store.engine import make_engine
from corral.store.models import Base

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(os.environ.get("CORRAL_DATABASE_URL") or "sqlite:///alembic-scratch.db")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
