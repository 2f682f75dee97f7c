"""The Kubernetes runtime's manifests: one pod and one NodePort service per ETL and target
(reference §6.2), built as `kubernetes` client objects.

The pod is named `<etl-name>-<lowercase target ID>`, pinned to the target's Kubernetes node,
runs the ETL's image (and command) with the container port 8000 named `default`, a readiness
probe on `GET /health`, the environment `AIS_TARGET_URL` / `DIRECT_PUT` plus the user's, and
the target's mountpaths mounted read-only (so the transformer can read objects by path).
`validate()` round-trips a manifest through the client's models, which check every required
field and enum against the API schema, and checks the names Kubernetes would reject.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from kubernetes import client as k8s

from ais.etl import TRANSFORMER_PORT, InitMsg

PORT_NAME = "default"
LABEL_APP = "ais-etl"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def pod_name(etl: str, target_id: str) -> str:
    """`<etl>-<target id>`, lower-cased and cut to a DNS label (63 characters)."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{etl}-{target_id}".lower())
    return name[:63].rstrip("-")


def labels(etl: str, target_id: str) -> dict[str, str]:
    return {"app": LABEL_APP, "ais.etl/name": etl, "ais.etl/target": pod_name("t", target_id)[2:]}


def pod_manifest(init: InitMsg, target_id: str, target_url: str, node_name: str,
                 mountpaths: Sequence[str] = (), resources: Mapping[str, Any] | None = None) -> k8s.V1Pod:
    env = [k8s.V1EnvVar(name="AIS_TARGET_URL", value=target_url),
           k8s.V1EnvVar(name="DIRECT_PUT", value="true" if init.direct_put else "false")]
    env += [k8s.V1EnvVar(name=k, value=v) for k, v in init.env]
    mounts = [k8s.V1VolumeMount(name=f"mp{i}", mount_path=mp, read_only=True) for i, mp in enumerate(mountpaths)]
    volumes = [k8s.V1Volume(name=f"mp{i}", host_path=k8s.V1HostPathVolumeSource(path=mp, type="Directory"))
               for i, mp in enumerate(mountpaths)]
    container = k8s.V1Container(
        name="server", image=init.image, image_pull_policy="Always",
        command=list(init.command) or None, env=env, volume_mounts=mounts or None,
        ports=[k8s.V1ContainerPort(name=PORT_NAME, container_port=TRANSFORMER_PORT, protocol="TCP")],
        readiness_probe=k8s.V1Probe(http_get=k8s.V1HTTPGetAction(path="/health", port=PORT_NAME),
                                    timeout_seconds=5, period_seconds=10),
        resources=k8s.V1ResourceRequirements(limits=(resources or {}).get("limits"),
                                             requests=(resources or {}).get("requests")) if resources else None)
    affinity = k8s.V1Affinity(node_affinity=k8s.V1NodeAffinity(
        required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(node_selector_terms=[
            k8s.V1NodeSelectorTerm(match_expressions=[k8s.V1NodeSelectorRequirement(
                key="kubernetes.io/hostname", operator="In", values=[node_name])])])))
    return k8s.V1Pod(
        api_version="v1", kind="Pod",
        metadata=k8s.V1ObjectMeta(name=pod_name(init.name, target_id), labels=labels(init.name, target_id),
                                  annotations={"communication_type": init.comm,
                                               "support_direct_put": str(init.direct_put).lower()}),
        spec=k8s.V1PodSpec(containers=[container], volumes=volumes or None, affinity=affinity,
                           restart_policy="Always"))


def service_manifest(init: InitMsg, target_id: str) -> k8s.V1Service:
    return k8s.V1Service(
        api_version="v1", kind="Service",
        metadata=k8s.V1ObjectMeta(name=pod_name(init.name, target_id), labels=labels(init.name, target_id)),
        spec=k8s.V1ServiceSpec(type="NodePort", selector=labels(init.name, target_id), ports=[
            k8s.V1ServicePort(name=PORT_NAME, port=TRANSFORMER_PORT, target_port=PORT_NAME, protocol="TCP")]))


def to_dict(obj: Any) -> dict[str, Any]:
    """The manifest as the API server receives it (camelCase keys, no nulls)."""
    out: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(obj)
    return out


class _Raw:
    def __init__(self, data: str) -> None:
        self.data = data


def validate(obj: k8s.V1Pod | k8s.V1Service) -> dict[str, Any]:
    """Round-trip through the client's models (required fields, enums, types) and check names;
    the manifest as a dict. ValueError when Kubernetes would reject it."""
    import json
    doc = to_dict(obj)
    kind = type(obj).__name__
    api = k8s.ApiClient()
    api.configuration.client_side_validation = True
    back = api.deserialize(_Raw(json.dumps(doc)), kind)
    if to_dict(back) != doc:
        raise ValueError(f"{kind} does not survive a round trip through the API schema")
    name = doc["metadata"]["name"]
    if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} is not a DNS-1123 label")
    for key, value in (doc["metadata"].get("labels") or {}).items():
        if len(value) > 63 or (value and not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)):
            raise ValueError(f"label {key}={value!r} is not a valid label value")
    return doc
