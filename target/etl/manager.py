"""The ETLs of one target: their transformers, communicators, counters and object errors.

Init is two-phase: the proxy asks every target to start the transformer (`init`), and only
when all answered healthy does the primary add the ETL to the ETL metadata; a failure on any
target makes the proxy `delete` it everywhere. Metasynced ETL metadata is reconciled here
(`reconcile`): a restarted or newly joined target starts the running ETLs it lacks and stops
the ones that were removed or stopped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Deque, Protocol

from ais.errors import AisError, Conflict, NotFound, ServiceUnavailable
from ais.etl import STAGE_RUNNING, EtlEntry, EtlMD, InitMsg, TransformFailed, not_running_message
from etl.images import UnknownImage, command_for, substitute
from etl.local import LocalTransformer, TransformerStartError, free_port
from target.context import TargetContext
from target.etl.comm import Communicator, Reply, Request, TransformerDown, make

log = logging.getLogger(__name__)

MAX_OBJ_ERRORS = 1000
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALLBACK_PATH = "/v1/etl/_object"   # + /<etl>/<secret>/<bucket>/<object>: transformers call back here


class InitFailed(AisError):
    status = 400
    code = "etl-init-failed"


class Runtime(Protocol):
    """A started transformer, wherever it runs (a local process, a pod)."""

    state: str
    restarts: int

    @property
    def url(self) -> str: ...

    async def stop(self, grace_s: float = 5.0) -> None: ...

    async def wait_ready(self, timeout_s: float) -> bool: ...

    async def health(self) -> str: ...

    async def logs(self) -> bytes: ...

    async def usage(self) -> dict[str, Any]: ...


@dataclass
class RunningEtl:
    entry: EtlEntry
    init: InitMsg
    runtime: Runtime
    comm: Communicator
    objects: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    errors: Deque[dict[str, Any]] = field(default_factory=lambda: collections.deque(maxlen=MAX_OBJ_ERRORS))

    @property
    def name(self) -> str:
        return self.init.name

    @property
    def url(self) -> str:
        return self.runtime.url

    async def call(self, req: Request) -> Reply:
        """One object through the transformer; waits (within the object's timeout) for a
        transformer that is restarting after a crash, and tries once more."""
        try:
            return await self.comm.call(self.url, req)
        except TransformerDown as exc:
            if not await self.runtime.wait_ready(req.timeout_s):
                raise req.fail(f"the transformer is down ({self.runtime.state}): {exc}", 503) from exc
        try:
            return await self.comm.call(self.url, req)
        except TransformerDown as exc:
            raise req.fail(f"the transformer is down ({self.runtime.state}): {exc}", 503) from exc

    def record(self, obj_name: str, exc: TransformFailed) -> None:
        self.errors.append({"obj_name": obj_name, "msg": exc.message, "ecode": exc.ecode})


class EtlManager:
    def __init__(self, ctx: TargetContext) -> None:
        self.ctx = ctx
        self.etls: dict[str, RunningEtl] = {}
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._pending: set[str] = set()   # initialising (not yet in the ETL metadata)
        self._reconciling = asyncio.Lock()

    # --- lookups ------------------------------------------------------------------------------

    def require(self, name: str) -> RunningEtl:
        """The running ETL `name`, for inline and offline transforms."""
        running = self.etls.get(name)
        if running is not None:
            return running
        md = self.ctx.store.etl
        entry = md.get(name) if md is not None else None
        if entry is None:
            primary = self.ctx.smap.primary.public_url if self.ctx.store.smap else ""
            raise NotFound(not_running_message(name, primary))
        if entry.stage != STAGE_RUNNING:
            raise Conflict(f"etl[{name}] is stopped (stage {entry.stage}): start it first")
        raise ServiceUnavailable(f"etl[{name}] is still starting on {self.ctx.me.display}")

    # --- lifecycle ----------------------------------------------------------------------------

    async def init(self, entry: EtlEntry, pending: bool = True) -> None:
        """Start the transformer of `entry` here and wait until it is healthy."""
        init = entry.init
        async with self._locks[init.name]:
            if init.name in self.etls:
                return
            if pending:
                self._pending.add(init.name)
            try:
                runtime = await self._start_runtime(entry, init)
            except BaseException:
                self._pending.discard(init.name)
                raise
            self.etls[init.name] = RunningEtl(entry, init, runtime, make(init.comm, self.ctx.http.session))
        log.info("etl %s running on %s at %s", init.name, self.ctx.me.display, runtime.url)

    async def _start_runtime(self, entry: EtlEntry, init: InitMsg) -> Runtime:
        cfg = self.ctx.cfg
        if cfg.etl.runtime == "k8s":
            from target.etl.k8s import start_pod   # needs the kubernetes client and a cluster
            pod: Runtime = await start_pod(self.ctx, entry, init)
            return pod
        host = cfg.net.hostname
        try:
            argv = command_for(init.image, init.command, cfg.etl.images)
        except (UnknownImage, ValueError) as exc:
            raise InitFailed(f"etl[{init.name}]: {exc}") from exc
        port = free_port(host)
        workdir = os.path.join(cfg.node.conf_dir, "etl", init.name)
        await asyncio.get_running_loop().run_in_executor(None, lambda: os.makedirs(workdir, exist_ok=True))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
        env.update({
            "AIS_TARGET_URL": f"{self.ctx.me.intra_url}{CALLBACK_PATH}/{init.name}/{entry.secret}",
            "DIRECT_PUT": "true" if init.direct_put else "false",
            "ETL_HOST": host, "ETL_PORT": str(port), "PORT": str(port), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH", "")) if p),
        })
        env.update(init.env_map)
        runtime = LocalTransformer(init.name, substitute(argv, host, port, sys.executable), env, workdir, host,
                                   port, self.ctx.http.session, restart_backoff_s=cfg.etl.restart_backoff_s,
                                   log_max_bytes=cfg.etl.log_max_bytes)
        try:
            await runtime.start(init.init_timeout_s)
        except TransformerStartError as exc:
            raise InitFailed(f"etl[{init.name}] failed to start on {self.ctx.me.display}: {exc}") from exc
        return runtime

    async def stop(self, name: str) -> bool:
        """Stop the transformer (the ETL stays defined); False if it was not running here."""
        async with self._locks[name]:
            self._pending.discard(name)
            running = self.etls.pop(name, None)
            if running is None:
                return False
            await running.comm.close()
            await running.runtime.stop()
        log.info("etl %s stopped on %s", name, self.ctx.me.display)
        return True

    async def reconcile(self, md: EtlMD) -> None:
        """Run exactly the ETLs the metadata says are running (initialising ones are left be)."""
        async with self._reconciling:
            await self._reconcile(md)

    async def _reconcile(self, md: EtlMD) -> None:
        if self.ctx.store.etl is not None and self.ctx.store.etl.version > md.version:
            md = self.ctx.store.etl   # a newer version arrived meanwhile
        for name in list(self.etls):
            entry = md.get(name)
            if (entry is None or entry.stage != STAGE_RUNNING) and name not in self._pending:
                await self.stop(name)
        for name, entry in md.etls.items():
            self._pending.discard(name)   # committed (or aborted): no longer pending
            if entry.stage == STAGE_RUNNING and name not in self.etls:
                try:
                    await self.init(entry, pending=False)
                except Exception:  # noqa: BLE001 - one ETL failing to start must not stop the others
                    log.exception("etl %s failed to start on %s", name, self.ctx.me.display)

    async def close(self) -> None:
        for name in list(self.etls):
            await self.stop(name)
