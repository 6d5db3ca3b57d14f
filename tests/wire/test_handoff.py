"""The host→sandbox hand-off: one serialisation, and bad bytes are refused with a clear error."""

from __future__ import annotations

import json

import pytest

from corral.errors import CorralError
from corral.wire import ENVD_VERSION
from corral.wire.handoff import EnvdConfig, HandoffError


def test_round_trip_keeps_every_field() -> None:
    config = EnvdConfig(sandbox_id="abc123", access_token="tok", env_vars={"A": "1", "B": "ü"},
                        default_user="root", default_workdir="/work", max_upload_bytes=5,
                        start_kernels=["python"])
    assert EnvdConfig.from_bytes(config.to_bytes()) == config


def test_defaults_round_trip_and_carry_the_one_envd_version() -> None:
    config = EnvdConfig(sandbox_id="abc")
    assert config.envd_version == ENVD_VERSION
    assert EnvdConfig.from_bytes(config.to_bytes()) == config
    assert EnvdConfig.from_bytes(b'{"sandbox_id": "abc"}') == config


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"[]", b"{}", b'{"sandbox_id": 5}',
    b'{"sandbox_id": "a", "surprise": 1}',
    b'{"sandbox_id": "a", "env_vars": {"A": 1}}',
    b'{"sandbox_id": "a", "env_vars": []}',
    b'{"sandbox_id": "a", "access_token": 7}',
    b'{"sandbox_id": "a", "default_user": null}',
    b'{"sandbox_id": "a", "max_upload_bytes": -1}',
    b'{"sandbox_id": "a", "max_upload_bytes": true}',
    b'{"sandbox_id": "a", "start_kernels": "python"}',
    b'{"sandbox_id": "a", "hosted_apps": {"http": "m:f"}}',
    b'{"sandbox_id": "a", "hosted_apps": {"49999": 5}}',
])
def test_malformed_hand_offs_are_refused(raw: bytes) -> None:
    with pytest.raises(HandoffError) as e:
        EnvdConfig.from_bytes(raw)
    assert isinstance(e.value, CorralError) and e.value.status == 400


def test_the_bytes_are_plain_json_a_person_can_read() -> None:
    data = EnvdConfig(sandbox_id="abc", env_vars={"K": "V"}).to_bytes()
    assert json.loads(data)["env_vars"] == {"K": "V"}
