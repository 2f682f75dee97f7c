"""A node's side of its lifecycle (reference §1.5; AIStore's docs/lifecycle_node.md), alike for
proxies and targets.

The primary decides; the node is told on its intra listener (`PUT /v1/daemon`, with the cluster
secret) once its part is due:
- `shutdown-node`: the node stays in the cluster map, in maintenance; its process exits cleanly
  and keeps its data and metadata, so restarting it rejoins (still in maintenance until
  `stop-maintenance`).
- `decommission-node`: the node is leaving the cluster map; on the way out it erases its cluster
  metadata (and, with `rm_user_data`, everything on its mountpaths), leaves a `decommissioned`
  marker in its conf dir and exits. Restarted, it does not join by itself: it waits in standby.
- `rm-unsafe`: the node is dropped from the cluster map, data and metadata as they are; it exits.
- with `no_shutdown` (targets only), a removed node does not exit: it stops its keepalives and
  waits in standby.
A node in standby serves its listeners but is no member: it rejoins only when an administrator
adds it (`ais cluster add URL`: the primary's `POST /v1/cluster/join-by-admin` puts it in the
cluster map and metasyncs to it). Its node ID is kept throughout.

The node's own config changes arrive on both listeners (`PUT /v1/daemon` set-config/reset-config,
also `PUT /v1/daemon/set-config?k=v`) and live in ais.nodeconfig.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import shutil
from typing import Any, Awaitable, Callable, Sequence

from aiohttp import web

from ais import apc
from ais.cmap import BucketMD, ClusterMap, Node
from ais.errors import BadMessage, Forbidden, UnknownAction
from ais.membership import BMD_FILE, DOCS, SMAP_FILE, ClusterAgent, MetaStore
from ais.nodeconfig import NODE_CONFIG_FILE, NodeConfig
from ais.web import action_msg, read_json, until_stopped

log = logging.getLogger(__name__)

ACT_SHUTDOWN_NODE = "shutdown-node"
ACT_DECOMMISSION_NODE = "decommission-node"
ACT_RM_UNSAFE = "rm-unsafe"
DECOMMISSIONED_FILE = "decommissioned"   # in the conf dir: do not self-join, wait for an admin join


class Lifecycle:
    def __init__(self, conf_dir: str, me: Node, store: MetaStore, node_cfg: NodeConfig, stop: asyncio.Event,
                 secret: Callable[[], str], user_dirs: Callable[[], Sequence[str]] = lambda: ()) -> None:
        self.conf_dir, self.me, self.store, self.node_cfg = conf_dir, me, store, node_cfg
        self.stop = stop
        self.secret = secret
        self.user_dirs = user_dirs             # a target's mountpaths (as they are when cleaning up)
        self.standby = False
        self._removed = asyncio.Event()        # dropped from the cluster map while running
        self._added = asyncio.Event()          # a newer cluster map lists this node again
        self._decommission: tuple[bool, bool] | None = None   # (rm_user_data, keep_initial_config) at exit
        self._cleaning: asyncio.Future[None] | None = None   # a decommission's cleanup without shutdown
        store.subscribe(self._on_metadata)

    def load(self) -> None:
        """Blocking, start-up only: a decommissioned node starts in standby."""
        self.standby = os.path.exists(os.path.join(self.conf_dir, DECOMMISSIONED_FILE))

    async def _on_metadata(self, smap: ClusterMap | None, bmd: BucketMD | None) -> None:
        if smap is not None and smap.get(self.me.id) is not None:
            self._added.set()

    # --- membership -------------------------------------------------------------------------

    async def wait_if_standby(self) -> bool:
        """In standby: until an admin join lists this node in a new cluster map (False: stopped first)."""
        if not self.standby:
            return True
        log.info("%s in standby: not joining until added (ais cluster add %s)", self.me.display, self.me.public_url)
        self._added.clear()
        if not await until_stopped(_wait(self._added), self.stop):
            return False
        await asyncio.get_running_loop().run_in_executor(None, self._leave_standby)
        return True

    async def membership(self, agent: ClusterAgent, join_wait_s: float,
                         on_joined: Callable[[], None] = lambda: None) -> None:
        """A target's membership: join (or, in standby, wait to be added), keep alive, until stopped;
        removed without shutdown, it goes back to standby and may be added again."""
        while not self.stop.is_set():
            if not await self.wait_if_standby():
                return
            if not await until_stopped(agent.join(join_wait_s), self.stop):
                return
            self._removed.clear()
            agent.start()
            on_joined()
            await until_stopped(_wait(self._removed), self.stop)
            await agent.stop()

    def _leave_standby(self) -> None:
        self.standby = False
        try:
            os.remove(os.path.join(self.conf_dir, DECOMMISSIONED_FILE))
        except FileNotFoundError:
            pass
        log.info("%s was added to the cluster", self.me.display)

    # --- PUT /v1/daemon ----------------------------------------------------------------------

    def add_public_routes(self, app: web.Application) -> None:
        app.router.add_put("/v1/daemon", self._handler(intra=False))
        app.router.add_put(f"/v1/daemon/{apc.ACT_SET_CONFIG}", self._query_config)
        app.router.add_put(f"/v1/daemon/{apc.ACT_RESET_CONFIG}", self._query_config)

    def add_intra_routes(self, app: web.Application) -> None:
        app.router.add_put("/v1/daemon", self._handler(intra=True))

    def _handler(self, intra: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            msg = action_msg(await read_json(request))
            value = msg.value if isinstance(msg.value, dict) else {}
            if msg.action == apc.ACT_SET_CONFIG:
                if not isinstance(msg.value, dict):
                    raise BadMessage("set-config needs the settings as a JSON object in 'value', e.g. "
                                     "{\"action\": \"set-config\", \"value\": {\"log.level\": \"DEBUG\"}}")
                return web.json_response(await self.node_cfg.set(msg.value))
            if msg.action == apc.ACT_RESET_CONFIG:
                await self.node_cfg.reset()
                return web.Response(status=200)
            if msg.action not in (ACT_SHUTDOWN_NODE, ACT_DECOMMISSION_NODE, ACT_RM_UNSAFE):
                raise UnknownAction(f"unknown node action {msg.action!r}")
            if not intra:
                raise Forbidden(f"{msg.action} is the primary's to send: use PUT /v1/cluster "
                                f"{{\"action\": \"{msg.action}\", \"value\": {{\"sid\": \"{self.me.id}\"}}}}")
            expected = self.secret()
            if expected and not hmac.compare_digest(request.headers.get(apc.HDR_CLUSTER_SECRET, ""), expected):
                raise Forbidden(f"{msg.action} needs the cluster secret")
            self._act(msg.action, value)
            return web.Response(status=200)
        return handle

    async def _query_config(self, request: web.Request) -> web.StreamResponse:
        """`PUT /v1/daemon/set-config?section.key=value&...` and `PUT /v1/daemon/reset-config`."""
        if request.path.endswith(apc.ACT_RESET_CONFIG):
            await self.node_cfg.reset()
            return web.Response(status=200)
        return web.json_response(await self.node_cfg.set({k: v for k, v in request.query.items()
                                                          if k != "transient"}))

    def _act(self, action: str, value: dict[str, Any]) -> None:
        log.info("%s: %s %s", self.me.display, action, value or "")
        cleanup = (_flag(value, "rm_user_data"), _flag(value, "keep_initial_config"))
        if action != ACT_SHUTDOWN_NODE and _flag(value, "no_shutdown"):   # out of the map, still running
            self.standby = True
            self._removed.set()
            if action == ACT_DECOMMISSION_NODE:
                self._cleaning = asyncio.get_running_loop().run_in_executor(None, self._clean, *cleanup)
            return
        if action == ACT_DECOMMISSION_NODE:
            self._decommission = cleanup
        # after this answer is on its way: the listeners drain in-flight requests on stop
        asyncio.get_running_loop().call_soon(self.stop.set)

    # --- exit ----------------------------------------------------------------------------------

    async def finish(self) -> None:
        """The last step of the shutdown sequence: a decommissioned node's cleanup."""
        if self._cleaning is not None:
            await self._cleaning
        if self._decommission is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._clean, *self._decommission)

    def _clean(self, rm_user_data: bool, keep_initial_config: bool) -> None:
        names = [SMAP_FILE, BMD_FILE, *(d.file for d in DOCS)]
        if not keep_initial_config:
            names.append(NODE_CONFIG_FILE)
        for name in names:
            try:
                os.remove(os.path.join(self.conf_dir, name))
            except FileNotFoundError:
                pass
        with open(os.path.join(self.conf_dir, DECOMMISSIONED_FILE), "w", encoding="utf-8") as f:
            f.write("decommissioned: add it again with 'ais cluster add'\n")
        if rm_user_data:
            for d in self.user_dirs():
                for entry in os.scandir(d) if os.path.isdir(d) else ():
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.remove(entry.path)
        log.info("%s decommissioned: cluster metadata erased%s", self.me.display,
                 ", user data removed" if rm_user_data else "")


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


def _flag(value: dict[str, Any], key: str) -> bool:
    v = value.get(key)
    return v is True or (isinstance(v, str) and v.lower() in ("true", "1", "yes"))
