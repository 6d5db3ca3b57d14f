"""Host uid ranges reserved per sandbox.

Each live sandbox owns 65536 consecutive host uids (and gids), far above the ranges distributions
hand out in /etc/subuid (100000+), so a sandbox's root is an unprivileged, otherwise unused host uid
and two sandboxes never share one.
"""

UID_RANGE = 65536
UID_FLOOR = 1 << 30  # 1073741824
MAX_SLOTS = ((1 << 32) - 2 - UID_FLOOR) // UID_RANGE


def uid_base_for_slot(slot: int) -> int:
    if not 0 <= slot < MAX_SLOTS:
        raise ValueError(f"uid slot {slot} out of range")
    return UID_FLOOR + slot * UID_RANGE
