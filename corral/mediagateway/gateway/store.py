"""The traces of past requests, kept so a person (or a script) can look one up by its id.

In memory and bounded: the gateway is a window onto the orchestrator, not a database, so it keeps
the last `capacity` traces and forgets the oldest. A restart forgets them all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class TraceStore:
    def __init__(self, capacity: int = 200) -> None:
        self.capacity = capacity
        self._traces: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def put(self, request_id: str, trace: dict[str, Any]) -> None:
        self._traces[request_id] = trace
        self._traces.move_to_end(request_id)
        while len(self._traces) > self.capacity:
            self._traces.popitem(last=False)

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self._traces.get(request_id)

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The newest `n` requests, newest first: id, query, user, when, how long."""
        items = list(self._traces.values())[-n:]
        keys = ("request_id", "query", "user_id", "started_at", "duration_s")
        return [{k: t.get(k) for k in keys} for t in reversed(items)]

    def __len__(self) -> int:
        return len(self._traces)
