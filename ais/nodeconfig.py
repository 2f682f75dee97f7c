"""One node's effective config: its own file and environment, then the cluster's runtime changes
(`ConfigMD`, metasynced), then this node's own runtime changes (`ais config node NODE set k=v`,
`PUT /v1/daemon` set-config at the node), persisted in its conf dir as `node_config.json`.

A node's own change wins over the cluster's for that key on that node only; `reset-config` at the
node drops them all. Both kinds are validated the same way (ais.config.runtime_changes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Callable, Mapping

from ais.config import Config, ConfigMD, runtime_changes
from ais.membership import MetaStore, write_atomic

log = logging.getLogger(__name__)

NODE_CONFIG_FILE = "node_config.json"


class NodeConfig:
    def __init__(self, conf_dir: str, base: Config, on_change: Callable[[Config], None]) -> None:
        self.path = os.path.join(conf_dir, NODE_CONFIG_FILE)
        self.base = base
        self.on_change = on_change
        self.cluster: ConfigMD | None = None
        self.local: dict[str, Any] = {}   # dotted key -> value

    def load(self) -> None:
        """Blocking, start-up only: this node's persisted changes."""
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            self.local = dict(doc.get("changes") or {}) if isinstance(doc, dict) else {}

    def effective(self) -> Config:
        cfg = self.cluster.applied_to(self.base) if self.cluster is not None else self.base
        return ConfigMD(0, self.local).applied_to(cfg) if self.local else cfg

    def follow(self, store: MetaStore) -> Config:
        """Track the cluster's changes in `store`; the effective config now."""
        async def changed(md: ConfigMD) -> None:
            self.cluster = md
            self._apply()
            log.info("cluster config v%d: %s", md.version, dict(md.changes) or "no changes")
        store.subscribe_doc("config", changed)
        self.cluster = store.config
        return self.effective()

    async def set(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and persist this node's changes; the changes as applied (dotted keys)."""
        changes = runtime_changes(self.effective(), value)
        await self._save({**self.local, **changes})
        log.info("node config changed: %s", changes)
        return changes

    async def reset(self) -> None:
        await self._save({})
        log.info("node config reset: the cluster's config applies")

    async def _save(self, local: dict[str, Any]) -> None:
        data = json.dumps({"changes": local}).encode()
        await asyncio.get_running_loop().run_in_executor(None, write_atomic, self.path, data)
        self.local = local
        self._apply()

    def _apply(self) -> None:
        cfg = self.effective()
        logging.getLogger().setLevel(cfg.log.level.upper())
        self.on_change(cfg)
