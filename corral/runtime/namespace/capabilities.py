"""Cut a process's capabilities down to the policy's set.

Order matters: the bounding set is trimmed first (needs CAP_SETPCAP, still held), ambient
capabilities are cleared, and only then are effective/permitted narrowed. Inheritable is left
empty (as moby does since CVE-2022-24769) so that no capability survives an exec into a
non-root program; root programs get the bounding set back on exec, which is the policy's set.
"""

from __future__ import annotations

import errno

from corral.runtime.namespace import policy
from corral.runtime.namespace import syscalls as sc

LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"


def last_cap() -> int:
    try:
        with open(LAST_CAP_FILE) as f:
            return int(f.read())
    except OSError:
        return max(policy.CAPABILITY_NUMBERS.values())


def drop_to_policy(top: int | None = None) -> None:
    keep = policy.capability_mask()
    for cap in range((top if top is not None else last_cap()) + 1):
        if keep & (1 << cap):
            continue
        try:
            sc.prctl(sc.PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: capability unknown to this kernel
                raise
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    sc.capset(effective=keep, permitted=keep, inheritable=0)


def parse_status_mask(status_text: str, field: str) -> int:
    """Read e.g. ``CapBnd`` from /proc/<pid>/status text (used by usage checks and tests)."""
    for line in status_text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise KeyError(field)
