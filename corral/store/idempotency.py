"""Rows of `idempotent_creates`: which sandbox a create under an `Idempotency-Key` made.

`remember` inserts and relies on the primary key (scope, key): when two creates with the same
key race (two API replicas), exactly one insert wins and the loser learns the winner's sandbox.
Expired rows are ignored by `lookup` and removed as new ones are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from corral.store.models import IdempotentCreate

KEEP = timedelta(hours=24)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Remembered:
    body_hash: str
    sandbox_id: str
    expires_at: datetime


class IdempotencyKeys:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._session = sessions

    def lookup(self, scope: str, key: str, now: datetime | None = None) -> Remembered | None:
        return self._find(scope, key, now)

    def _find(self, scope: str, key: str, now: datetime | None = None) -> Remembered | None:
        current = now or _utcnow()
        with self._session() as s:
            row = s.get(IdempotentCreate, (scope, key))
            if row is None or _aware(row.expires_at) <= current:
                return None
            return Remembered(row.body_hash, row.sandbox_id, _aware(row.expires_at))

    def remember(self, scope: str, key: str, body_hash: str, sandbox_id: str,
                 now: datetime | None = None) -> Remembered:
        """Record the create; if a live row for the key exists already, return it instead."""
        current = now or _utcnow()
        with self._session() as s, s.begin():
            s.execute(delete(IdempotentCreate).where(IdempotentCreate.expires_at <= current))
        try:
            with self._session() as s, s.begin():
                s.add(IdempotentCreate(scope=scope, key=key, body_hash=body_hash, sandbox_id=sandbox_id,
                                       created_at=current, expires_at=current + KEEP))
        except IntegrityError:
            existing = self._find(scope, key, current)
            if existing is not None:
                return existing
            raise
        return Remembered(body_hash, sandbox_id, current + KEEP)

    def count(self) -> int:
        with self._session() as s:
            return len(list(s.scalars(select(IdempotentCreate.key))))
