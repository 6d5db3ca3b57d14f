"""The names both sides share, and the one sandbox id format."""

from __future__ import annotations

import pytest

from corral import ENVD_VERSION as top_level_version
from corral import ids
from corral.runtime.namespace import request
from corral.wire import constants


def test_ports_sockets_and_paths_are_the_e2b_and_corral_ones() -> None:
    assert (constants.ENVD_PORT, constants.INTERPRETER_PORT) == (49983, 49999)
    assert (constants.ENVD_SOCKET, constants.PORTS_SOCKET) == ("envd.sock", "ports.sock")
    assert constants.INIT_PATH == "/.corral/init" and constants.INIT_PATH.startswith(constants.SERVER_ONLY_PREFIX)
    assert top_level_version == constants.ENVD_VERSION


@pytest.mark.parametrize("value", ["a", "abc123", "z" * 63, "0" * 20])
def test_valid_ids(value: str) -> None:
    assert constants.is_sandbox_id(value)
    assert ids.is_sandbox_id(value)


@pytest.mark.parametrize("value", ["", "A", "a-b", "a.b", "a_b", "../etc", "a\n", "a" * 65, " a", 5, None])
def test_invalid_ids_are_refused_everywhere(value: object) -> None:
    assert not constants.is_sandbox_id(value)
    if isinstance(value, str):
        req = request.SpawnRequest(value, "/r", "/w", 200000, 1, 64, 64, 64, "/g")
        with pytest.raises(request.RequestError):
            req.validate()


def test_the_runtime_also_keeps_an_id_within_one_dns_label() -> None:
    assert constants.is_sandbox_id("z" * 64)
    with pytest.raises(request.RequestError):
        request.SpawnRequest("z" * 64, "/r", "/w", 200000, 1, 64, 64, 64, "/g").validate()


def test_new_ids_are_valid() -> None:
    for _ in range(50):
        assert constants.is_sandbox_id(ids.new_sandbox_id())
