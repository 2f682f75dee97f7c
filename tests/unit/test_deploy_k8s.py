"""deploy/k8s offline: the renderer's kustomize semantics, every object of every overlay valid
against the Kubernetes 1.30 API schema (kubernetes-validate, strict), and what the manifests
must say for the cluster to work (config keys that exist, probes, volumes per mountpath, RBAC
equal to what the ETL runtime calls)."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from ais import config as config_mod
from deploy.k8s import render

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "k8s")
OVERLAYS = ["dev", "production"]
K8S_VERSION = "1.30"


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render.render(os.path.join(K8S, "overlays", request.param))


def _get(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def _workloads(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]


# --- every rendered object is valid for Kubernetes 1.30 ------------------------------------------

def test_every_object_of_every_overlay_is_valid_for_kubernetes_1_30(overlay) -> None:  # type: ignore[no-untyped-def]
    name, objs = overlay
    render.validate(objs, K8S_VERSION)
    kinds = sorted({o["kind"] for o in objs})
    assert {"ConfigMap", "Deployment", "StatefulSet", "Service", "Role", "RoleBinding", "ServiceAccount",
            "PersistentVolumeClaim", "PodDisruptionBudget"} <= set(kinds)
    ns = "ais-dev" if name == "dev" else "ais"
    assert all(o["metadata"].get("namespace") == ns for o in objs if o["kind"] != "Namespace")


def test_validation_catches_what_the_api_server_would_reject() -> None:
    objs = render.render(os.path.join(K8S, "overlays", "dev"))
    sts = _get(objs, "StatefulSet", "ais-target")
    sts["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"   # unknown field
    with pytest.raises(render.RenderError, match="imagePullPolicyy"):
        render.validate([sts], K8S_VERSION)
    svc = _get(objs, "Service", "ais-proxy")
    svc["spec"]["ports"][0]["port"] = "fifty"
    with pytest.raises(render.RenderError, match="ais-proxy"):
        render.validate([svc], K8S_VERSION)


def test_render_cli_prints_yaml_and_validates(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "prod.yaml"
    assert render.main([os.path.join(K8S, "overlays", "production"), "-o", str(out), "--validate", K8S_VERSION]) == 0
    import yaml
    docs = list(yaml.safe_load_all(out.read_text()))
    assert docs == render.render(os.path.join(K8S, "overlays", "production"))
    assert render.main([os.path.join(K8S, "overlays", "nope")]) == 1
    assert "no kustomization" in capsys.readouterr().err


# --- what the manifests must say -----------------------------------------------------------------

def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_config_and_environment_name_real_settings(overlay) -> None:  # type: ignore[no-untyped-def]
    _, objs = overlay
    doc = json.loads(_get(objs, "ConfigMap", "ais-config")["data"]["ais.json"])
    base = config_mod.from_dict(doc)   # unknown keys or bad values raise
    services = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
    assert base.proxy.primary_url == "http://ais-proxy-intra:51081" and "ais-proxy-intra" in services
    assert base.etl.runtime == "k8s" and not base.etl.pass_fqn
    for w in _workloads(objs):
        for c in _containers(w):
            env = _env(c)
            for var in env:
                if var.startswith("AIS_"):
                    assert config_mod.env_overrides({var: ""}), f"{w['metadata']['name']}: {var} is no config setting"
            assert env["AIS_NET_HOSTNAME"] == {"fieldRef": {"fieldPath": "status.podIP"}}
            assert env["AIS_CLUSTER_SECRET"] == {"secretKeyRef": {"name": "ais-secrets", "key": "cluster-secret"}}
            # the values a node gets load as a config (the pod IP and secret stand in)
            literal = {k: v if isinstance(v, str) else "10.1.2.3" for k, v in env.items()}
            cfg = base.updated(config_mod.env_overrides(literal))
            assert cfg.net.public_port == 51080 and cfg.net.intra_port == 51081
            assert c["args"] == ["target" if w["kind"] == "StatefulSet" else "proxy"]   # the entrypoint's role
    primaries = [w for w in _workloads(objs) if _env(_containers(w)[0]).get("AIS_PROXY_IS_PRIMARY") == "true"]
    assert [p["metadata"]["name"] for p in primaries] == ["ais-proxy-primary"]
    assert primaries[0]["spec"]["replicas"] == 1 and primaries[0]["spec"]["strategy"]["type"] == "Recreate"


def test_probes_metrics_annotations_and_security(overlay) -> None:  # type: ignore[no-untyped-def]
    _, objs = overlay
    for w in _workloads(objs):
        pod = w["spec"]["template"]
        assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "51080",
                                                  "prometheus.io/path": "/metrics"}
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] != 0
        for c in _containers(w):
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert ports == {"public": 51080, "intra": 51081}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"] == {"path": "/v1/health", "port": "public"}, probe
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
            mounts = {m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
            claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= volumes | claims, mounts - volumes - claims
    # Services select the pods they front
    for svc in (o for o in objs if o["kind"] == "Service"):
        sel = svc["spec"]["selector"]
        hits = [w for w in _workloads(objs) if sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert hits, f"Service {svc['metadata']['name']} selects no pods"
        for port in svc["spec"]["ports"]:
            assert all(port["targetPort"] in {p["name"] for c in _containers(w) for p in c["ports"]} for w in hits)


def test_targets_get_a_claim_per_mountpath_and_their_own_node(overlay) -> None:  # type: ignore[no-untyped-def]
    name, objs = overlay
    sts = _get(objs, "StatefulSet", "ais-target")
    (c,) = _containers(sts)
    mountpaths = _env(c)["AIS_TARGET_MOUNTPATHS"].split(",")
    by_path = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    claims = {t["metadata"]["name"]: t for t in sts["spec"]["volumeClaimTemplates"]}
    assert [by_path[mp] in claims for mp in mountpaths] == [True] * len(mountpaths) and len(mountpaths) >= 2
    assert len({by_path[mp] for mp in mountpaths}) == len(mountpaths)    # one claim each
    assert by_path["/var/lib/ais/conf"] in claims                          # node ID survives rescheduling
    size = "1Ti" if name == "production" else "1Gi"
    assert {claims[by_path[mp]]["spec"]["resources"]["requests"]["storage"] for mp in mountpaths} == {size}
    anti = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    kind = "required" if name == "production" else "preferred"
    assert list(anti) == [f"{kind}DuringSchedulingIgnoredDuringExecution"]
    term = anti[list(anti)[0]][0]
    term = term.get("podAffinityTerm", term)
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert sts["spec"]["serviceName"] == "ais-target" and _get(objs, "Service", "ais-target")["spec"]["clusterIP"] == "None"
    assert _get(objs, "PodDisruptionBudget", "ais-target")["spec"]["maxUnavailable"] == 1


def _etl_api_calls() -> set[tuple[str, str]]:
    """(resource, verb) of every CoreV1Api call the Kubernetes ETL runtime makes."""
    with open(os.path.join(ROOT, "target", "etl", "k8s.py"), encoding="utf-8") as f:
        code = f.read()
    verbs = {"create": "create", "read": "get", "delete": "delete", "list": "list", "patch": "patch",
             "replace": "update", "watch": "watch"}
    calls = set()
    for method in set(re.findall(r"api\.(\w+_namespaced_\w+)", code)):
        action, _, resource = method.partition("_namespaced_")
        resource = {"pod": "pods", "service": "services", "pod_log": "pods/log"}[resource]
        calls.add((resource, verbs[action]))
    return calls


def test_rbac_grants_exactly_what_the_etl_runtime_calls(overlay) -> None:  # type: ignore[no-untyped-def]
    _, objs = overlay
    role = _get(objs, "Role", "ais-etl")
    granted = {(res, verb) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]}
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    calls = _etl_api_calls()
    assert calls >= {("pods", "create"), ("services", "create"), ("pods/log", "get")}
    assert granted == calls
    binding = _get(objs, "RoleBinding", "ais-etl")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ais-etl"}
    (subject,) = binding["subjects"]
    assert subject["kind"] == "ServiceAccount" and subject.get("namespace") in (None, binding["metadata"]["namespace"])
    sts = _get(objs, "StatefulSet", "ais-target")["spec"]["template"]["spec"]
    assert sts["serviceAccountName"] == subject["name"]
    assert [_env(c).get("AIS_ETL_K8S_NAMESPACE") for c in sts["containers"]] == \
        [{"fieldRef": {"fieldPath": "metadata.namespace"}}]   # ETL pods go where the Role applies
    for name in ("ais-proxy", "ais-proxy-primary"):
        spec = _get(objs, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False    # proxies need no API access


# --- the renderer's kustomize semantics ----------------------------------------------------------

def _write(path: Any, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree(tmp_path: Any, overlay: str) -> list[dict[str, Any]]:
    _write(tmp_path / "base" / "kustomization.yaml", "resources: [app.yaml]\n")
    _write(tmp_path / "base" / "app.yaml", """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      initContainers: [{name: init, image: "registry:5000/tools/app:1.0"}]
      containers: [{name: app, image: "registry:5000/tools/app"}, {name: side, image: busybox@sha256:abc}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: default}, {kind: ServiceAccount, name: other}]
""")
    _write(tmp_path / "over" / "kustomization.yaml", overlay)
    return render.render(str(tmp_path / "over"))


def test_renderer_namespace_replicas_images_and_patches(tmp_path) -> None:  # type: ignore[no-untyped-def]
    objs = _tree(tmp_path, """\
namespace: team
resources: [../base]
replicas: [{name: app, count: 3}]
images:
  - {name: "registry:5000/tools/app", newName: other/app, newTag: "2.0"}
  - {name: busybox, digest: "sha256:def"}
patches:
  - target: {kind: Deployment, name: app}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/-, value: {name: extra, image: busybox:1}}
      - {op: replace, path: /spec/template/metadata/labels/a, value: c}
      - {op: test, path: /spec/replicas, value: 1}
      - {op: remove, path: /spec/selector/matchLabels/a}
      - {op: add, path: /metadata/labels, value: {x~1y: "1"}}
""")
    crb, dep = objs     # ClusterRoleBinding sorts before Deployment
    assert "namespace" not in crb["metadata"]                           # cluster-scoped
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": "team"},
                               {"kind": "ServiceAccount", "name": "other"}]   # kustomize: only "default"
    assert dep["metadata"]["namespace"] == "team" and dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["initContainers"] + pod["containers"]] == \
        ["other/app:2.0", "other/app:2.0", "busybox@sha256:def", "busybox@sha256:def"]   # images run after patches
    assert dep["spec"]["template"]["metadata"]["labels"] == {"a": "c"} and dep["spec"]["selector"]["matchLabels"] == {}
    assert dep["metadata"]["labels"] == {"x~1y": "1"}


@pytest.mark.parametrize("overlay, error", [
    ("resources: [../base]\nnamePrefix: x-\n", "unsupported kustomization fields"),
    ("resources: [../base, ../base/app.yaml]\n", "duplicate objects"),
    ("resources: [../base]\nreplicas: [{name: nope, count: 2}]\n", "match no Deployment"),
    ("resources: [../base]\npatches: [{target: {kind: Deployment, name: nope}, patch: '[]'}]\n", "matches no object"),
    ("resources: [../base]\npatches: [{target: {kind: Deployment, name: app}, "
     "patch: '[{op: replace, path: /spec/nope, value: 1}]'}]\n", "does not exist"),
    ("resources: [../base]\npatches: [{target: {kind: Deployment, name: app}, "
     "patch: '[{op: test, path: /spec/replicas, value: 2}]'}]\n", "test failed"),
    ("resources: [../base]\npatches: [{path: p.yaml}]\n", "JSON 6902"),
])
def test_renderer_refuses_what_it_cannot_render_faithfully(tmp_path, overlay: str, error: str) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "over" / "p.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    with pytest.raises(render.RenderError, match=error):
        _tree(tmp_path, overlay)
