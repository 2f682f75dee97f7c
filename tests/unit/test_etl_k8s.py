"""The Kubernetes runtime's manifests, offline: built with the `kubernetes` client's models and
validated by round-tripping through them (no cluster needed)."""

from __future__ import annotations

import pytest

from ais.etl import InitMsg
from etl import k8s

pytestmark = pytest.mark.timeout(60)


def _init(**kw: object) -> InitMsg:
    msg = {"name": "resize-images", "communication": "hpush://", "support_direct_put": True,
           "runtime": {"image": "aistorage/transformer_image:latest", "command": ["python", "srv.py"],
                       "env": [{"name": "IMAGE_ARGS", "value": "fit=224"}]}, **kw}
    return InitMsg.parse(msg)


def test_pod_manifest() -> None:
    init = _init()
    pod = k8s.pod_manifest(init, "AbCdEfGh", "http://10.0.0.5:51081/v1/etl/_object/resize-images/s", "node-7",
                           ["/ais/mp1", "/ais/mp2"], {"limits": {"cpu": "2", "memory": "1Gi"}})
    doc = k8s.validate(pod)
    assert doc["kind"] == "Pod" and doc["metadata"]["name"] == "resize-images-abcdefgh"
    (c,) = doc["spec"]["containers"]
    assert c["image"] == "aistorage/transformer_image:latest" and c["imagePullPolicy"] == "Always"
    assert c["command"] == ["python", "srv.py"]
    assert c["ports"] == [{"containerPort": 8000, "name": "default", "protocol": "TCP"}]
    assert c["readinessProbe"] == {"httpGet": {"path": "/health", "port": "default"}, "periodSeconds": 10,
                                   "timeoutSeconds": 5}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env == {"AIS_TARGET_URL": "http://10.0.0.5:51081/v1/etl/_object/resize-images/s", "DIRECT_PUT": "true",
                   "IMAGE_ARGS": "fit=224"}
    assert all(m["readOnly"] for m in c["volumeMounts"]) and [m["mountPath"] for m in c["volumeMounts"]] == \
        ["/ais/mp1", "/ais/mp2"]
    assert [v["hostPath"]["path"] for v in doc["spec"]["volumes"]] == ["/ais/mp1", "/ais/mp2"]
    assert c["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}}
    term = doc["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-7"]}]
    assert doc["metadata"]["annotations"]["communication_type"] == "hpush://"


def test_service_manifest_selects_the_pod() -> None:
    init = _init()
    pod = k8s.validate(k8s.pod_manifest(init, "T1", "http://t", "n"))
    svc = k8s.validate(k8s.service_manifest(init, "T1"))
    assert svc["kind"] == "Service" and svc["spec"]["type"] == "NodePort"
    assert svc["metadata"]["name"] == pod["metadata"]["name"]
    assert svc["spec"]["selector"] == pod["metadata"]["labels"]
    assert svc["spec"]["ports"] == [{"name": "default", "port": 8000, "protocol": "TCP", "targetPort": "default"}]


def test_long_names_are_cut_to_a_dns_label() -> None:
    init = _init(name="x" * 32)
    doc = k8s.validate(k8s.pod_manifest(init, "Z" * 40, "http://t", "n"))
    assert len(doc["metadata"]["name"]) <= 63


def test_validation_rejects_what_kubernetes_would() -> None:
    from kubernetes import client
    pod = k8s.pod_manifest(_init(), "T1", "http://t", "n")
    pod.metadata.name = "Not_A_Label"
    with pytest.raises(ValueError, match="DNS-1123"):
        k8s.validate(pod)
    with pytest.raises(ValueError):   # the client's models refuse a container without a name
        client.V1Container(name=None, image="x")
    bad = k8s.pod_manifest(_init(), "T1", "http://t", "n")
    bad.metadata.labels["ais.etl/name"] = "bad value!"
    with pytest.raises(ValueError, match="label"):
        k8s.validate(bad)
