"""Terraform, checked by parsing the HCL (python-hcl2): no provider can be downloaded here, so
`terraform validate` cannot run; the test checks that every file parses and that the modules
declare what the product spec §7.3 lists, wired the way it shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "terraform"
OPTS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def _load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return hcl2.load(f, serialization_options=OPTS)


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def _blocks(module: Path, kind: str) -> dict[str, Any]:
    """`resource`/`module`/`variable`/`output` blocks of every .tf file in a module, by name."""
    out: dict[str, Any] = {}
    for tf in sorted(module.glob("*.tf")):
        for block in _load(tf).get(kind, []):
            for name, body in block.items():
                if kind == "resource":
                    for res_name, res_body in body.items():
                        out[f"{_unquote(name)}.{_unquote(res_name)}"] = res_body
                else:
                    out[_unquote(name)] = body
    return out


@pytest.mark.parametrize("path", sorted(TF.rglob("*.tf")), ids=lambda p: str(p.relative_to(TF)))
def test_every_file_parses(path):
    assert isinstance(_load(path), dict)


def test_the_parser_rejects_broken_hcl():
    with pytest.raises(Exception):
        hcl2.loads('resource "x" "y" {\n  a = \n')


def test_e2b_module_declares_the_specs_secret_version_and_iam_binding():
    res = _blocks(TF / "modules" / "e2b", "resource")
    assert set(res) >= {"google_secret_manager_secret.e2b_api_key",
                        "google_secret_manager_secret_version.e2b_api_key_version",
                        "google_secret_manager_secret_iam_member.e2b_key_accessor"}
    secret = res["google_secret_manager_secret.e2b_api_key"]
    assert secret["project"] == "${var.project_id}" and secret["secret_id"] == "e2b-api-key"
    assert "auto" in secret["replication"][0]
    version = res["google_secret_manager_secret_version.e2b_api_key_version"]
    assert version["secret"] == "${google_secret_manager_secret.e2b_api_key.id}"
    assert version["secret_data"] == "${var.e2b_api_key}"
    iam = res["google_secret_manager_secret_iam_member.e2b_key_accessor"]
    assert iam["secret_id"] == "${google_secret_manager_secret.e2b_api_key.secret_id}"
    assert iam["role"] == "roles/secretmanager.secretAccessor"
    assert iam["member"] == "serviceAccount:${var.gke_service_account}"


def test_e2b_module_declares_the_variables_it_uses_and_hides_the_key():
    variables = _blocks(TF / "modules" / "e2b", "variable")
    assert set(variables) == {"project_id", "e2b_api_key", "gke_service_account"}
    assert variables["e2b_api_key"]["sensitive"] is True


def test_node_pool_module_matches_the_daemonset():
    pool = _blocks(TF / "modules" / "corral-node-pool", "resource")["google_container_node_pool.corral"]
    node = pool["node_config"][0]
    assert node["labels"] == {"corral.dev/sandbox-node": "true"}
    taint = node["taint"][0]
    assert (taint["key"], taint["value"], taint["effect"]) == ("corral.dev/sandbox", "true", "NO_SCHEDULE")
    assert node["workload_metadata_config"][0]["mode"] == "GKE_METADATA"
    assert pool["upgrade_settings"][0]["max_unavailable"] == 0
    # The same label and taint as k8s/corral/node-daemonset.yaml selects and tolerates.
    ds = (REPO / "k8s" / "corral" / "node-daemonset.yaml").read_text()
    assert 'corral.dev/sandbox-node: "true"' in ds and "key: corral.dev/sandbox" in ds


def test_root_module_passes_every_required_variable():
    mods = _blocks(TF, "module")
    for name, body in mods.items():
        src = TF / body["source"]
        required = {v for v, spec in _blocks(src, "variable").items() if "default" not in spec}
        missing = required - set(body)
        assert not missing, f"module {name} does not set {missing}"
        unknown = set(body) - {"source"} - set(_blocks(src, "variable"))
        assert not unknown, f"module {name} sets undeclared {unknown}"
    used = {v for body in mods.values() for v in body.values() if isinstance(v, str) and v.startswith("${var.")}
    declared = {f"${{var.{v}}}" for v in _blocks(TF, "variable")}
    assert used <= declared
