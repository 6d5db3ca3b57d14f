"""The server under test, as the official `e2b` SDK sees it.

The benchmark drives the unmodified SDK because that is the latency users get: its transport, its
retries, its envd protocol. Connection settings are passed per call instead of through `E2B_*`
environment variables, so a benchmark never changes the environment of the process it runs in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from e2b import Sandbox


@dataclass(frozen=True)
class Target:
    url: str            # REST and envd share one base URL (E2B_API_URL = E2B_SANDBOX_URL)
    api_key: str
    template: str = "base"
    request_timeout_s: float = 60.0
    isolation: str | None = None   # ask for this tier per sandbox (the `corral.isolation` metadata key)
    memory_mb: int | None = None   # ask for this much memory (`corral.memory_mb`): no pooled sandbox fits

    def metadata(self) -> dict[str, str]:
        out = {"corral.isolation": self.isolation} if self.isolation else {}
        if self.memory_mb is not None:
            out["corral.memory_mb"] = str(self.memory_mb)
        return out

    def pool_ready(self, pool: str) -> int:
        """How many sandboxes the server's warm pool ``pool`` holds ready now (`GET /metrics`)."""
        return self._pool_gauge("corral_pool_ready", pool)

    def pool_target(self, pool: str) -> int:
        """How many sandboxes the server keeps in warm pool ``pool`` (0: no such pool)."""
        return self._pool_gauge("corral_pool_target", pool)

    def _pool_gauge(self, metric: str, pool: str) -> int:
        import httpx

        text = httpx.get(self.url + "/metrics", timeout=self.request_timeout_s).text
        needle = f'{metric}{{template="{pool}"}} '
        for line in text.splitlines():
            if line.startswith(needle):
                return int(float(line[len(needle):]))
        return 0

    def wait_pool(self, pool: str, timeout_s: float = 60.0) -> bool:
        """Wait (untimed by the caller) until ``pool`` has a sandbox ready; False if it never does."""
        import time

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.pool_ready(pool) > 0:
                return True
            time.sleep(0.05)
        return False

    def opts(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "api_url": self.url,
            "sandbox_url": self.url,
            "debug": False,
            "request_timeout": self.request_timeout_s,
        }

    def create(self, timeout_s: int = 300) -> Sandbox:
        with warnings.catch_warnings():  # api_url/sandbox_url are documented as deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return Sandbox.create(template=self.template, timeout=timeout_s, metadata=self.metadata(),
                                  **self.opts())

    def kill(self, sandbox_id: str) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return bool(Sandbox.kill(sandbox_id, **self.opts()))

    def list_ids(self) -> list[str]:
        """Ids of every running or paused sandbox the key can see (for leftover checks)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            paginator = Sandbox.list(**self.opts())
            ids: list[str] = []
            while paginator.has_next:
                ids.extend(info.sandbox_id for info in paginator.next_items())
            return ids


def run_true(sandbox: Sandbox) -> None:
    """One `true` through commands.run; a non-zero exit is a failed benchmark, not a sample."""
    result = sandbox.commands.run("true")
    if result.exit_code != 0:
        raise RuntimeError(f"`true` exited with {result.exit_code} in sandbox {sandbox.sandbox_id}: {result.stderr!r}")


def host_sandbox_id(sdk_sandbox_id: str) -> str:
    """The id the server's tier uses on the host. The SDK may append `-<client id>`."""
    return sdk_sandbox_id.split("-", 1)[0]
