"""Running `ip` and `nft` as subprocesses, with errors that say which command failed.

A batch is always fed on stdin (`ip -batch -`, `nft -f -`): one process per change keeps a
sandbox's setup to a handful of forks, and `nft -f` applies a whole file atomically, so a
half-written rule set is never live.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .netns import netns_prefix


class CommandError(RuntimeError):
    """A failed `ip`/`nft` run. Deliberately not a CorralError: its message holds argv, namespace
    paths and stderr, which an API client must not see; an edge answers it as a plain 500."""

    def __init__(self, argv: list[str], code: int, stderr: str, stdin: str | None = None) -> None:
        self.argv, self.code, self.stderr, self.stdin = argv, code, stderr, stdin
        super().__init__(f"{' '.join(argv)} exited {code}: {stderr.strip()}")


async def run(argv: list[str], *, netns: str | None = None, stdin: str | None = None,
              check: bool = True) -> tuple[int, str, str]:
    full = netns_prefix(netns) + argv
    proc = await asyncio.create_subprocess_exec(
        *full, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    code = proc.returncode or 0
    if check and code != 0:
        raise CommandError(full, code, err.decode(errors="replace"), stdin)
    return code, out.decode(errors="replace"), err.decode(errors="replace")


async def ip_batch(lines: list[str], *, netns: str | None = None) -> None:
    await run(["ip", "-batch", "-"], netns=netns, stdin="\n".join(lines) + "\n")


async def nft_apply(script: str, *, netns: str | None = None) -> None:
    await run(["nft", "-f", "-"], netns=netns, stdin=script)


async def nft_json(args: list[str], *, netns: str | None = None) -> list[dict[str, Any]]:
    """`nft -j <args>` parsed to its list of objects; [] when the object does not exist."""
    code, out, err = await run(["nft", "-j", *args], netns=netns, check=False)
    if code != 0:
        if "No such file or directory" in err:
            return []
        raise CommandError(["nft", "-j", *args], code, err)
    return json.loads(out).get("nftables", []) if out.strip() else []


async def link_names(*, netns: str | None = None) -> list[str]:
    _, out, _ = await run(["ip", "-o", "link", "show"], netns=netns)
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names
