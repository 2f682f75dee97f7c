#!/usr/bin/env python3
"""Render a kustomization to YAML offline: what `kubectl kustomize DIR` prints for deploy/k8s.

    python deploy/k8s/render.py deploy/k8s/overlays/dev [-o ais.yaml] [--validate 1.30]

It implements the part of kustomize these manifests use, with kustomize's semantics:
`resources` (YAML files, and directories holding their own kustomization.yaml), `namespace`
(metadata.namespace of every namespaced object; RoleBinding subjects named "default"),
`patches` (JSON 6902 operation lists, from `path` or inline `patch`, chosen by `target`),
`replicas` and `images`, applied in kustomize's order (patches, namespace, replicas, images).
Any other field is an error, so a kustomization that renders here renders the same with
`kubectl apply -k`. `--validate` checks every object against the Kubernetes API schema of that
version (strict: unknown fields are errors) with the kubernetes-validate package.

Needs PyYAML only (and kubernetes-validate for --validate).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any, Iterable

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "patches", "replicas", "images"}

# kustomize's "legacy" output order: kinds others depend on come first
KIND_ORDER = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
              "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
              "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
              "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"]
KIND_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass", "PodSecurityPolicy", "APIService",
                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CSIDriver", "Node"}

SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


class RenderError(Exception):
    """The kustomization cannot be rendered (a bad file, an unsupported field, a failed patch)."""


def render(path: str) -> list[dict[str, Any]]:
    """The objects of the kustomization in directory `path`, transformed and in output order."""
    return sorted(_build(os.path.abspath(path), ()), key=_order)


def to_yaml(objects: Iterable[dict[str, Any]]) -> str:
    return str(yaml.safe_dump_all(list(objects), sort_keys=False, default_flow_style=False, width=120))


def validate(objects: Iterable[dict[str, Any]], version: str) -> None:
    """Every object against the Kubernetes `version` schema (strict); RenderError on the first failure."""
    import kubernetes_validate
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise RenderError(f"{_id(obj)}: {exc.message} at {'/'.join(map(str, exc.path))}") from exc
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError,
                kubernetes_validate.utils.VersionNotSupportedError) as exc:
            raise RenderError(f"{_id(obj)}: no Kubernetes {version} schema: {getattr(exc, 'message', exc)}") from exc


# --- building ------------------------------------------------------------------------------------

def _build(directory: str, seen: tuple[str, ...]) -> list[dict[str, Any]]:
    if directory in seen:
        raise RenderError(f"kustomization cycle through {directory}")
    kfile = os.path.join(directory, "kustomization.yaml")
    try:
        with open(kfile, encoding="utf-8") as f:
            kust = yaml.safe_load(f) or {}
    except OSError as exc:
        raise RenderError(f"no kustomization in {directory}: {exc}") from exc
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise RenderError(f"{kfile}: unsupported kustomization fields {sorted(unknown)} (render.py knows {sorted(SUPPORTED)})")
    if kust.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{kfile}: kind must be Kustomization")

    objects: list[dict[str, Any]] = []
    for res in kust.get("resources") or []:
        full = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(full):
            objects += _build(full, seen + (directory,))
        else:
            objects += _load_file(full)
    _check_unique(objects, kfile)

    for patch in kust.get("patches") or []:
        _apply_patch(objects, patch, directory, kfile)
    if kust.get("namespace"):
        _set_namespace(objects, str(kust["namespace"]))
    for rep in kust.get("replicas") or []:
        _set_replicas(objects, rep, kfile)
    for image in kust.get("images") or []:
        _set_image(objects, image)
    _check_unique(objects, kfile)
    return objects


def _load_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise RenderError(f"cannot read {path}: {exc}") from exc
    for d in docs:
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") \
                or not (d.get("metadata") or {}).get("name"):
            raise RenderError(f"{path}: every document needs apiVersion, kind and metadata.name")
    return docs


def _id(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def _check_unique(objects: list[dict[str, Any]], where: str) -> None:
    ids = [(o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "", _id(o)) for o in objects]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RenderError(f"{where}: duplicate objects {sorted(d[1] for d in dup)}")


def _order(obj: dict[str, Any]) -> tuple[int, str]:
    kind = obj["kind"]
    if kind in KIND_ORDER:
        rank = KIND_ORDER.index(kind)
    elif kind in KIND_LAST:
        rank = len(KIND_ORDER) + 1 + KIND_LAST.index(kind)
    else:
        rank = len(KIND_ORDER)
    return rank, _id(obj)


# --- transformers ---------------------------------------------------------------------------------

def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    api = obj["apiVersion"]
    group, _, version = api.rpartition("/")
    want = {"kind": obj["kind"], "name": obj["metadata"]["name"], "group": group, "version": version,
            "namespace": obj["metadata"].get("namespace", "")}
    for key, value in target.items():
        if key not in want:
            raise RenderError(f"patch target field {key!r} is not supported (kind, name, group, version, namespace)")
        if want[key] != value:
            return False
    return True


def _apply_patch(objects: list[dict[str, Any]], patch: dict[str, Any], directory: str, kfile: str) -> None:
    if set(patch) - {"path", "patch", "target"}:
        raise RenderError(f"{kfile}: patch fields {sorted(set(patch) - {'path', 'patch', 'target'})} not supported")
    if "path" in patch:
        with open(os.path.join(directory, patch["path"]), encoding="utf-8") as f:
            ops = yaml.safe_load(f)
    else:
        ops = yaml.safe_load(patch.get("patch") or "")
    if not isinstance(ops, list) or not patch.get("target"):
        raise RenderError(f"{kfile}: only JSON 6902 patches (a list of operations with a target) are supported")
    hits = [o for o in objects if _matches(o, patch["target"])]
    if not hits:
        raise RenderError(f"{kfile}: patch target {patch['target']} matches no object")
    for obj in hits:
        for op in ops:
            try:
                _json_patch_op(obj, op)
            except (KeyError, IndexError, ValueError, TypeError) as exc:
                raise RenderError(f"{kfile}: patch {op} failed on {_id(obj)}: {exc}") from exc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def _json_patch_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    """One RFC 6902 operation, in place."""
    kind = op["op"]
    parts = _pointer(op["path"])
    if not parts:
        raise ValueError("patching the whole document is not supported")
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    if kind == "test":
        if _walk(doc, parts) != op["value"]:
            raise ValueError(f"test failed: {op['path']} is not {op['value']!r}")
        return
    if kind in ("move", "copy"):
        source = _pointer(op["from"])
        value = copy.deepcopy(_walk(doc, source))
        if kind == "move":
            _json_patch_op(doc, {"op": "remove", "path": op["from"]})
        _json_patch_op(doc, {"op": "add", "path": op["path"], "value": value})
        return
    if kind == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
        return
    value = copy.deepcopy(op["value"])
    if kind == "add":
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if not 0 <= index <= len(parent):
                raise IndexError(f"index {index} out of range")
            parent.insert(index, value)
        else:
            parent[last] = value
    elif kind == "replace":
        if isinstance(parent, list):
            parent[int(last)] = value
        else:
            if last not in parent:
                raise KeyError(f"{op['path']} does not exist")
            parent[last] = value
    else:
        raise ValueError(f"unknown operation {kind!r}")


def _set_namespace(objects: list[dict[str, Any]], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects") or []:
                if subject.get("name") == "default":   # kustomize's default subject mode
                    subject["namespace"] = namespace


def _set_replicas(objects: list[dict[str, Any]], rep: dict[str, Any], kfile: str) -> None:
    hits = [o for o in objects if o["kind"] in SCALABLE and o["metadata"]["name"] == rep["name"]]
    if not hits:
        raise RenderError(f"{kfile}: replicas for {rep['name']!r} match no Deployment or StatefulSet")
    for obj in hits:
        obj.setdefault("spec", {})["replicas"] = int(rep["count"])


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        return [spec]
    if obj["kind"] == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    return [spec["template"]["spec"]] if "template" in spec else []


def _set_image(objects: list[dict[str, Any]], image: dict[str, Any]) -> None:
    for obj in objects:
        for pod in _pod_specs(obj):
            for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                ref = c.get("image", "")
                name, tag = _split_image(ref)
                if name != image["name"]:
                    continue
                name = image.get("newName", name)
                if "digest" in image:
                    tag = "@" + image["digest"]
                elif "newTag" in image:
                    tag = ":" + str(image["newTag"])
                c["image"] = name + tag


def _split_image(ref: str) -> tuple[str, str]:
    """`registry:5000/repo:tag` -> (`registry:5000/repo`, `:tag`); a digest stays with its `@`."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, "@" + digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon:]
    return ref, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="a directory with a kustomization.yaml (e.g. deploy/k8s/overlays/dev)")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    ap.add_argument("--validate", metavar="K8S_VERSION", help="check every object against this Kubernetes "
                    "version's schema (e.g. 1.30; needs kubernetes-validate)")
    args = ap.parse_args(argv)
    try:
        objects = render(args.dir)
        if args.validate:
            validate(objects, args.validate)
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    text = to_yaml(objects)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
