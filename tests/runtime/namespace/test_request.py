from __future__ import annotations

import pytest

from corral.runtime.namespace.request import RequestError, SpawnRequest


def good(**kw: object) -> SpawnRequest:
    base = dict(sandbox_id="abc123", rootfs="/srv/r", workdir="/var/w", uid_base=200000,
                cpu_count=2, memory_mb=1024, disk_mb=2048, pids_max=512, golden_image="/g.img")
    base.update(kw)
    return SpawnRequest(**base)  # type: ignore[arg-type]


def test_valid_request_round_trips() -> None:
    req = good()
    req.validate()
    assert SpawnRequest.from_json(req.to_json()) == req


@pytest.mark.parametrize("kw", [
    {"sandbox_id": "../x"}, {"sandbox_id": "A"}, {"sandbox_id": "a/b"}, {"sandbox_id": ""},
    {"sandbox_id": "x" * 64}, {"uid_base": 0}, {"uid_base": 1000}, {"uid_base": 65535},
    {"uid_base": 2**32 - 100}, {"rootfs": "relative"}, {"workdir": "/a\x00b"},
    {"memory_mb": 1}, {"disk_mb": 0}, {"pids_max": 1}, {"cpu_count": 0},
    {"init_argv": ["/bin/sh", "a\x00b"]},
])
def test_bad_requests_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(RequestError):
        good(**kw).validate()


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(RequestError):
        SpawnRequest.from_json({**good().to_json(), "evil": 1})
