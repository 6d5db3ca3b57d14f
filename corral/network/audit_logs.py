"""The audit's memory: each attached sandbox's DNS and name-check records, saved while it runs.

The counters live in the kernel and survive a server restart by themselves; the names asked and
the proxy's SNI/Host decisions exist only in this process, so they are written into the
sandbox's state file, when they changed, every few seconds and on close. A crash loses at most
the last interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from .audit import DnsLog, ProxyLog
from .state import AttachedSandbox, StateDir

log = logging.getLogger("corral.network")

FLUSH_SECONDS = 2.0


class AuditLogs:
    def __init__(self, state: StateDir, attached: Mapping[str, AttachedSandbox]) -> None:
        """`attached`: the manager's live table of attached sandboxes (read, never changed here)."""
        self.state = state
        self.attached = attached
        self._dns: dict[str, DnsLog] = {}
        self._proxy: dict[str, ProxyLog] = {}
        self._flusher: asyncio.Task[None] | None = None

    def dns(self, sandbox_id: str) -> DnsLog:
        return self._dns.setdefault(sandbox_id, DnsLog())

    def proxy(self, sandbox_id: str) -> ProxyLog:
        return self._proxy.setdefault(sandbox_id, ProxyLog())

    def adopt(self, sandbox: AttachedSandbox) -> None:
        """Continue the records saved in a re-adopted sandbox's state file."""
        self._dns[sandbox.sandbox_id] = DnsLog(sandbox.dns)
        self._proxy[sandbox.sandbox_id] = ProxyLog(sandbox.checked)

    def forget(self, sandbox_id: str) -> None:
        self._dns.pop(sandbox_id, None)
        self._proxy.pop(sandbox_id, None)

    def flush(self) -> None:
        """Save the records that changed into their sandboxes' state files."""
        for sid in set(self._dns) | set(self._proxy):
            sandbox = self.attached.get(sid)
            dlog, plog = self._dns.get(sid), self._proxy.get(sid)
            if sandbox is None or not ((dlog and dlog.dirty) or (plog and plog.dirty)):
                continue
            if dlog is not None:
                sandbox.dns, dlog.dirty = dlog.to_json(), False
            if plog is not None:
                sandbox.checked, plog.dirty = plog.to_json(), False
            self.state.save(sandbox)

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    def stop(self) -> None:
        """Stop the periodic flush and flush once more."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except OSError:
                log.exception("network: cannot save DNS audit")
