"""Runtime cluster config: `set-config` and `reset-config` (reference §1.5).

`PUT /v1/cluster` with `{"action": "set-config", "value": {"load": {"max_inflight": 2048}}}` (nested
or dotted keys), or `PUT /v1/cluster/set-config?load.max_inflight=2048`; `reset-config` drops every
runtime change. The primary validates the change against the config schema (known key, a value
of the right type, a key a running node can take), then metasyncs a new `ConfigMD` version; every
node persists it and applies it over its own config file and environment, under its own per-node
changes (ais.nodeconfig.NodeConfig.follow).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from aiohttp import web

from ais import apc
from ais.config import ConfigMD, runtime_changes
from ais.errors import BadMessage, UnknownAction
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.context import CTX

ACTIONS = (apc.ACT_SET_CONFIG, apc.ACT_RESET_CONFIG)


async def change_config(request: web.Request, action: str, value: Any) -> web.StreamResponse:
    """The set-config / reset-config action of `PUT /v1/cluster`, at any proxy."""
    ctx = request.app[CTX]
    if action == apc.ACT_SET_CONFIG and not isinstance(value, Mapping):
        raise BadMessage("set-config needs the settings as a JSON object in 'value', e.g. "
                         "{\"action\": \"set-config\", \"value\": {\"load.max_inflight\": 2048}}")
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps({"action": action, "value": value}).encode())
    changes = runtime_changes(ctx.cfg, value) if action == apc.ACT_SET_CONFIG else {}

    def change(md: ConfigMD) -> ConfigMD | None:
        if action == apc.ACT_RESET_CONFIG:
            return ConfigMD(md.version + 1, {}) if md.changes else None
        merged = {**md.changes, **changes}
        return ConfigMD(md.version + 1, merged) if merged != md.changes else None
    await request.app[PRIMARY].update_doc("config", change)
    return web.Response(status=200)


async def put_cluster_action(request: web.Request) -> web.StreamResponse:
    """`PUT /v1/cluster/set-config?section.key=value&...` and `PUT /v1/cluster/reset-config`."""
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise UnknownAction(f"unknown cluster action {action!r}")
    return await change_config(request, action, {k: v for k, v in request.query.items() if k != "transient"})
