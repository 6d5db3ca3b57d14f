"""The layer contracts in pyproject.toml stay a statement of the architecture, not a list of excuses.

`make test` runs `lint-imports`, which checks the code against the contracts; this checks the
contracts themselves, so that making a broken contract pass by weakening it fails a test too.
"""

from __future__ import annotations

import tomllib
from typing import Any

from tests.conftest import REPO

REQUIRED = {"server-layers", "sandbox-layers", "runtime-no-payload", "server-not-sandbox", "mediagateway-sealed",
            "network-inside", "no-cycles"}


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert config["root_packages"] == ["corral"]
    return {c["id"]: c for c in config["contracts"]}


def test_every_contract_is_there_and_none_ignores_an_import() -> None:
    contracts = _contracts()
    assert REQUIRED <= set(contracts)
    for cid, contract in contracts.items():
        assert "ignore_imports" not in contract, f"{cid}: fix the import instead of ignoring it"
        assert contract.get("unmatched_ignore_imports_alerting", "error") == "error", cid


def test_the_server_layers_are_the_architecture() -> None:
    server = _contracts()["server-layers"]
    assert server["containers"] == ["corral"] and server["exhaustive"] is True
    assert set(server["exhaustive_ignores"]) == {"envd", "interpreter", "guest"}
    layers = [layer.replace(" ", "") for layer in server["layers"]]
    assert layers.index("cli") < layers.index("api|(mediagateway)|bench") < layers.index("lifecycle|builder")
    # the five building blocks are independent siblings, above the wire and the exception base
    assert layers.index("lifecycle|builder") < layers.index("templates|network|runtime|store|volumes") < layers.index("(wire)")
    assert layers[-1] == "errors"


def test_the_sandbox_side_cannot_reach_the_server_side() -> None:
    contracts = _contracts()
    sandbox = [layer.replace(" ", "") for layer in contracts["sandbox-layers"]["layers"]]
    server_side = set(sandbox[0].replace("(", "").replace(")", "").split(":"))
    assert {"cli", "api", "lifecycle", "store", "network", "templates", "runtime"} <= server_side
    assert sandbox[1] == "envd|interpreter"
    assert contracts["runtime-no-payload"]["forbidden_modules"] == ["corral.envd", "corral.interpreter"]
    sealed = [layer.replace(" ", "") for layer in contracts["mediagateway-sealed"]["layers"]]
    assert sealed[-1] == "(mediagateway)" and "mediagateway" not in sealed[0]
