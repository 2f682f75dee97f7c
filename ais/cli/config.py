"""`ais config cluster|node show|set`, `ais config cli show|set` and `ais show config`.

Cluster config: `GET /v1/cluster?what=cluster_config`, changed by `PUT /v1/cluster`
`{"action": "set-config", "value": {"section.key": value}}`. A node's: `GET /v1/daemon?what=config`
at the node, changed by `PUT /v1/daemon` there with the same message.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ais.cli import render
from ais.cli.common import CommandError, client, config_path, load_config, nest, parse_kv, unsupported
from ais.client import Client, StatusError
from ais.cmap import Node


def _node(c: Client, node_id: str) -> Node:
    smap = c.cluster_map(refresh=True)
    nid = node_id.removeprefix("p[").removeprefix("t[").rstrip("]")
    node = smap.get(nid)
    if node is None:
        raise CommandError(f"no node {node_id!r} in the cluster map (see 'ais show cluster')")
    return node


def _fetch(a: argparse.Namespace, c: Client) -> tuple[dict[str, Any], str]:
    if a.scope == "cluster":
        doc = c.request("GET", "/v1/cluster", params=[("what", "cluster_config")]).json()
        return doc or {}, "cluster"
    node = _node(c, a.node)
    doc = c.request("GET", "/v1/daemon", params=[("what", "config")], node_url=node.public_url).json()
    return doc or {}, node.display


def _show(a: argparse.Namespace, doc: dict[str, Any], section: str) -> int:
    rows = [(k, v) for k, v in render.flatten(doc) if not section or k == section or k.startswith(section + ".")]
    if section and not rows:
        raise CommandError(f"no config {section!r} (sections: {', '.join(sorted(doc))})")
    if a.json:
        render.print_json(doc if not section else dict(rows))
    else:
        print(render.table(["PROPERTY", "VALUE"], rows, no_headers=a.no_headers))
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    doc, _ = _fetch(a, client(a))
    return _show(a, doc, a.section or "")


def cmd_set(a: argparse.Namespace) -> int:
    c = client(a)
    change = parse_kv(a.pairs)
    body = {"action": "set-config", "name": "", "value": change}
    node_url = "" if a.scope == "cluster" else _node(c, a.node).public_url
    path = "/v1/cluster" if a.scope == "cluster" else "/v1/daemon"
    try:
        c.request("PUT", path, body=body, node_url=node_url, idempotent=False)
    except StatusError as exc:
        raise unsupported("config set", exc) from None
    doc, who = _fetch(a, c)
    after = dict(render.flatten(doc))
    print(render.table(["PROPERTY", "VALUE"], ((k, after.get(k, "-")) for k, _ in render.flatten(nest(change)))))
    print(f"{who} config updated")
    return 0


def cmd_show_config(a: argparse.Namespace) -> int:
    """`ais show config cluster [SECTION]` | `ais show config NODE_ID [SECTION]` | `ais show config cli`."""
    if a.target == "cli":
        return cmd_cli_show(a)
    a.scope = "cluster" if a.target == "cluster" else "node"
    a.node = a.target
    return cmd_show(a)


# --- the CLI's own config file ------------------------------------------------------------------

def cmd_cli_show(a: argparse.Namespace) -> int:
    doc = load_config()
    if a.json:
        render.print_json(doc)
    else:
        print(f"# {config_path()}" + ("" if doc else " (none yet: defaults apply)"))
        if doc:
            print(render.table(["PROPERTY", "VALUE"], render.flatten(doc)))
    return 0


def cmd_cli_set(a: argparse.Namespace) -> int:
    doc = load_config()
    for key, value in parse_kv(a.pairs).items():
        node = doc
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise CommandError(f"{key!r} conflicts with {p!r} in {config_path()}")
        node[parts[-1]] = value
    path = config_path()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print(f"updated {path}")
    return 0
