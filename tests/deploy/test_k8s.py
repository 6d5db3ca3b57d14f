"""The Kubernetes manifests: valid against the Kubernetes schemas (offline, kubernetes-validate),
and consistent with each other and with corral (every reference resolves, every path that the
NetworkPolicies open is one the design needs, the API runs restricted, the node's privileges are
the ones docs/DEPLOY.md states)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
# GKE's oldest supported minor at the time of writing and the newest the validator knows.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
# Flags the manifests use that `corral serve` does not have yet. The test below fails as soon as
# one of them lands, so this list shrinks with the code rather than going stale (issue 13's
# --role and --advertise have landed: it is empty).
PENDING_FLAGS: set[str] = set()


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for rel in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / rel).read_text()):
            if doc:
                out.append((rel, doc))
    return out


DOCS = _docs()


def _find(kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    for _, d in DOCS:
        if d["kind"] == kind and d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace:
            return d
    return None


def _workloads() -> list[dict[str, Any]]:
    return [d for _, d in DOCS if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet")]


def _pod_labels(namespace: str) -> list[dict[str, str]]:
    return [w["spec"]["template"]["metadata"]["labels"] for w in _workloads() if w["metadata"]["namespace"] == namespace]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_kustomization_lists_every_manifest_and_nothing_missing():
    listed = set(_kustomization()["resources"])
    on_disk = {str(p.relative_to(K8S)) for p in K8S.rglob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("rel", "doc"), DOCS, ids=[f"{r}:{d['kind']}/{d['metadata']['name']}" for r, d in DOCS])
def test_manifest_is_valid_against_the_kubernetes_schema(rel, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_broken_manifest():
    """So that the test above cannot pass by validating nothing."""
    bad = yaml.safe_load((K8S / "corral" / "api.yaml").read_text().split("---")[1])
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)
    bad = yaml.safe_load((K8S / "corral" / "api.yaml").read_text().split("---")[1])
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)


def test_spec_configmap_points_the_sdk_at_corrals_api_service():
    cm = _find("ConfigMap", "e2b-config", "media-gateway")
    assert cm is not None
    data = cm["data"]
    assert {"E2B_BASE_URL", "E2B_DEFAULT_TIMEOUT", "E2B_DEFAULT_MEMORY", "E2B_TEMPLATES"} <= set(data)
    svc = _find("Service", "corral-api", "corral")
    port = svc["spec"]["ports"][0]["port"]
    expected = f"http://corral-api.corral.svc.cluster.local:{port}"
    assert data["E2B_BASE_URL"] == data["E2B_API_URL"] == data["E2B_SANDBOX_URL"] == expected
    templates = yaml.safe_load(data["E2B_TEMPLATES"])
    assert templates == {"discovery": "media-gateway-agent", "analysis": "media-gateway-analysis",
                         "search": "media-gateway-search", "browser": "e2b/desktop"}
    for name in ("media-gateway-agent", "media-gateway-analysis", "media-gateway-search"):
        assert (REPO / "templates" / name).is_dir(), f"E2B_TEMPLATES names {name}, which templates/ does not build"
    secret = _find("Secret", "e2b-credentials", "media-gateway")
    assert secret is not None and "E2B_API_KEY" in secret["stringData"]


def test_orchestrator_is_the_specs_deployment_wired_to_corral():
    dep = _find("Deployment", "agent-orchestrator", "media-gateway")
    assert dep["spec"]["replicas"] == 3
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["envFrom"] == [{"configMapRef": {"name": "e2b-config"}}, {"secretRef": {"name": "e2b-credentials"}}]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


def test_every_reference_resolves():
    for w in _workloads():
        ns = w["metadata"]["namespace"]
        spec = w["spec"]["template"]["spec"]
        assert _matches(w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
        if "serviceAccountName" in spec:
            assert _find("ServiceAccount", spec["serviceAccountName"], ns), spec["serviceAccountName"]
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                kind, ref = ("ConfigMap", src["configMapRef"]) if "configMapRef" in src else ("Secret", src["secretRef"])
                assert _find(kind, ref["name"], ns), f"{w['metadata']['name']}: no {kind} {ns}/{ref['name']}"
    for _, d in DOCS:
        ns = d["metadata"].get("namespace")
        if ns is not None:
            assert _find("Namespace", ns), f"{d['kind']}/{d['metadata']['name']} in undeclared namespace {ns}"
        if d["kind"] == "Service":
            assert any(_matches(d["spec"]["selector"], lab) for lab in _pod_labels(ns)), d["metadata"]["name"]
        if d["kind"] in ("PodDisruptionBudget",):
            assert any(_matches(d["spec"]["selector"]["matchLabels"], lab) for lab in _pod_labels(ns))
        if d["kind"] == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            assert _find(ref["kind"], ref["name"], ns)
        if d["kind"] == "NetworkPolicy":
            sel = d["spec"]["podSelector"].get("matchLabels", {})
            assert any(_matches(sel, lab) for lab in _pod_labels(ns)), f"policy {ns}/{d['metadata']['name']} selects nothing"


def test_database_url_secrets_point_at_the_postgres_service():
    svc = _find("Service", "corral-postgres", "corral")
    host = f"corral-postgres.corral.svc.cluster.local:{svc['spec']['ports'][0]['port']}"
    for ns in ("corral", "corral-nodes"):
        url = _find("Secret", "corral-database", ns)["stringData"]["CORRAL_DATABASE_URL"]
        assert url.startswith("postgresql://") and host in url and url.endswith("/corral")


def _containers(namespace: str | None = None):  # type: ignore[no-untyped-def]
    for w in _workloads():
        if namespace is None or w["metadata"]["namespace"] == namespace:
            pod = w["spec"]["template"]["spec"]
            for c in pod["containers"]:
                yield w, pod, c


def test_every_container_has_requests_and_limits_and_no_token():
    for w, pod, c in _containers():
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], w["metadata"]["name"]
        assert c["resources"]["limits"]["memory"], w["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False, w["metadata"]["name"]


def test_pods_in_the_corral_namespace_meet_pod_security_restricted():
    ns = _find("Namespace", "corral")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for w, pod, c in _containers("corral"):
        sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
        name = w["metadata"]["name"]
        assert psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert sc.get("allowPrivilegeEscalation") is False and sc["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in sc["capabilities"] and not sc.get("privileged"), name
        assert not any("hostPath" in v for v in pod.get("volumes", [])), name


def test_node_agent_privileges_are_exactly_the_stated_ones():
    ds = _find("DaemonSet", "corral-node", "corral-nodes")
    pod = ds["spec"]["template"]["spec"]
    for host_ns in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host_ns), host_ns
    (c,) = pod["containers"]
    assert c["securityContext"] == {"privileged": True, "runAsUser": 0, "readOnlyRootFilesystem": True}
    assert not any("hostPort" in p for p in c["ports"])
    host_paths = [v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v]
    assert host_paths == ["/var/lib/corral"]
    assert _find("Namespace", "corral-nodes")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    text = (K8S / "corral" / "node-daemonset.yaml").read_text()
    for reason in ("loop devices", "cgroups", "namespaces and mounts", "runAsUser: 0", "hostPath"):
        assert reason in text, f"the DaemonSet no longer says why it needs {reason}"
    assert pod["tolerations"][0]["key"] == "corral.dev/sandbox" and pod["nodeSelector"] == {"corral.dev/sandbox-node": "true"}


def _policy(ns: str, name: str) -> dict[str, Any]:
    pol = _find("NetworkPolicy", name, ns)
    assert pol is not None
    return pol["spec"]


def test_corral_namespaces_deny_by_default():
    for ns in ("corral", "corral-nodes"):
        spec = _policy(ns, "default-deny")
        assert spec["podSelector"] == {} and set(spec["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in spec and "egress" not in spec


def test_only_api_replicas_reach_node_agents():
    rules = _policy("corral-nodes", "corral-node")["ingress"]
    assert len(rules) == 1 and len(rules[0]["from"]) == 1
    peer = rules[0]["from"][0]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "corral"}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    ingress_policies = [d for _, d in DOCS if d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == "corral-nodes"
                        and d["spec"].get("ingress")]
    assert [p["metadata"]["name"] for p in ingress_policies] == ["corral-node"]


def test_sandbox_egress_never_reaches_internal_or_metadata_addresses():
    (rule,) = _policy("corral-nodes", "corral-node-egress")["egress"]
    (peer,) = rule["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    for blocked in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"):
        assert blocked in peer["ipBlock"]["except"]
    # The database is reachable from the nodes only on its own port, through its own rule.
    db_rule = _policy("corral-nodes", "corral-node")["egress"][0]
    assert db_rule["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_postgres_admits_only_corral_and_sends_nothing():
    spec = _policy("corral", "corral-postgres")
    assert spec["egress"] == []
    components = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in spec["ingress"][0]["from"]}
    assert components == {"api", "node"}


def _serve_flags() -> set[str]:
    out = subprocess.run([sys.executable, "-m", "corral.cli.main", "serve", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=REPO, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}).stdout
    return set(re.findall(r"(--[a-z][a-z-]*)", out))


def test_manifest_args_are_flags_corral_serve_accepts():
    have = _serve_flags()
    assert "--data-dir" in have, "could not read `corral serve --help`"
    for w, _, c in _containers():
        if c["image"].startswith("corral:"):
            assert c["args"][0] == "serve"
            used = {a for a in c["args"] if a.startswith("--")}
            unknown = used - have - PENDING_FLAGS
            assert not unknown, f"{w['metadata']['name']} passes {unknown}, which `corral serve` does not accept"
    landed = PENDING_FLAGS & have
    assert not landed, f"{landed} exist now: remove them from PENDING_FLAGS"
