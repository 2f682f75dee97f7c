"""Mountpaths at runtime: attach, detach, enable, disable (wire: `PUT /v1/daemon/mountpaths`
{"action": "attach-mp"|"detach-mp"|"enable-mp"|"disable-mp", "value": path}, `?frc=true` to
detach without moving data; `GET /v1/daemon?what=mountpaths`), the resilver each change starts,
and disks that fail: `target.io_errors_to_disable` disk errors (EIO and the like) within a
minute disable the mountpath and start a resilver.

A change is persisted in `<conf_dir>/mountpaths.json` and applied again at start-up on top of
`target.mountpaths`, so an attached mountpath, and the objects a resilver moved onto it, stay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from aiohttp import web

from ais import apc, names
from ais.errors import AisError, BadMessage, BadRequest, UnknownAction
from ais.web import read_action
from target.context import CTX, TargetContext
from target.fs.mountpaths import Mountpaths, prepare_mountpath
from target.jobs import JobRegistry
from target.jobs.mirror import ResilverJob

log = logging.getLogger(__name__)

STATE_FILE = "mountpaths.json"


class Storage:
    """A target's mountpath administration (one per target, `ctx.storage`)."""

    def __init__(self, ctx: TargetContext, registry: JobRegistry) -> None:
        self.ctx, self.registry = ctx, registry
        self.resilver_job: ResilverJob | None = None
        self.detached: set[str] = set()   # detached at runtime: left out at start-up even if configured
        self._state_path = os.path.join(ctx.cfg.node.conf_dir, STATE_FILE)
        mps = ctx.mountpaths
        mps.faulty = lambda: ctx.cfg.target.fault_eio_mountpath
        mps.io_errors_to_disable = lambda: max(ctx.cfg.target.io_errors_to_disable, 1)
        mps.on_failing = self._failing

    # --- changes ------------------------------------------------------------------------
    async def change(self, action: str, path: str, force: bool = False) -> str:
        """Apply one mountpath action; the ID of the resilver it started."""
        mps = self.ctx.mountpaths
        mp = Mountpaths.clean(path)
        if action == apc.ACT_ATTACH_MP:
            if mps.state_of(mp) == "" or mps.state_of(mp) == "waiting_dd":
                await self._prepare(mp)
            mps.attach(mp)
            self.detached.discard(mp)
        elif action == apc.ACT_ENABLE_MP:
            mps.enable(mp)
        elif action == apc.ACT_DISABLE_MP:
            mps.disable(mp)
        elif action == apc.ACT_DETACH_MP:
            mps.detach(mp, force)
            if force:
                self.detached.add(mp)
        else:
            raise UnknownAction(f"unknown mountpath action {action!r}; expected one of {list(apc.MOUNTPATH_ACTIONS)}")
        log.info("%s %s%s: mountpaths now %s", action, mp, " (forced)" if force else "", mps.to_wire())
        await self._save()
        return self.resilver(f"{action} {mp}")

    async def _prepare(self, mp: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, prepare_mountpath, mp, self.ctx.me.id)
        except AisError:
            raise
        except OSError as exc:
            raise BadRequest(f"cannot attach mountpath {mp}: {exc.strerror or exc}") from exc

    def resilver(self, reason: str) -> str:
        """Start a resilver (aborting one that runs: the new one covers its work)."""
        if self.resilver_job is not None and not self.resilver_job.end_ns:
            self.resilver_job.abort()
        job = ResilverJob(self.ctx, _job_id(), None, None, {"reason": reason})
        self.ctx.mountpaths.resilvering = True
        self.registry.start(job)
        self.resilver_job = job
        log.info("resilver %s started: %s", job.id, reason)
        self.ctx.spawn(self._finish(job), name=f"resilver-{job.id}")
        return job.id

    async def _finish(self, job: ResilverJob) -> None:
        """When the last resilver ends cleanly, the mountpaths it emptied are detached."""
        assert job.task is not None
        await asyncio.wait([job.task])
        if job is not self.resilver_job:
            return
        if job.aborted or job.errors:
            log.warning("resilver %s did not finish cleanly (%s); mountpaths being detached stay readable: %s",
                        job.id, "aborted" if job.aborted else job.errors[:3], list(self.ctx.mountpaths.detaching))
            return
        mps = self.ctx.mountpaths
        done = mps.finish_detach(job.detaching)
        self.detached.update(done)
        mps.resilvering = bool(mps.detaching)
        log.info("resilver %s done: %d objects, %d bytes written%s", job.id, job.objects, job.bytes,
                 f"; detached {done}" if done else "")
        if done:
            await self._save()

    def _failing(self, mp: str) -> None:
        """Mountpaths.run saw too many disk errors on `mp`: take it out and resilver."""
        mps = self.ctx.mountpaths
        log.error("mountpath %s: %d disk errors within a minute: disabling it", mp, mps.io_errors_to_disable())
        try:
            mps.disable(mp)
        except AisError as exc:
            log.error("cannot disable failing mountpath %s: %s", mp, exc)
            return
        self.ctx.spawn(self._save(), name=f"save-mountpaths-{mp}")
        self.resilver(f"{apc.ACT_DISABLE_MP} {mp} after disk errors")

    # --- persistence --------------------------------------------------------------------
    async def _save(self) -> None:
        state: dict[str, list[str]] = {**self.ctx.mountpaths.to_wire(), "detached": sorted(self.detached)}
        await asyncio.get_running_loop().run_in_executor(None, _write_json, self._state_path, state)

    async def restore(self) -> None:
        """Start-up: apply the persisted changes on top of the configured mountpaths."""
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(None, _read_json, self._state_path)
        if not state:
            return
        mps = self.ctx.mountpaths
        wanted = {state_name: [Mountpaths.clean(p) for p in state.get(state_name) or [] if isinstance(p, str)]
                  for state_name in ("available", "waiting_dd", "disabled", "detached")}
        self.detached = set(wanted["detached"]) - set(wanted["available"])
        changed = False
        for mp in [*wanted["available"], *wanted["waiting_dd"], *wanted["disabled"]]:
            if not mps.state_of(mp):
                try:
                    await self._prepare(mp)
                except AisError as exc:
                    log.error("mountpath %s (attached before the restart) is unusable: %s", mp, exc)
                    continue
                mps.attach(mp)
        try:
            for mp in list(mps.paths):
                if mp in self.detached:   # detached before the restart (its data moved off then)
                    mps.detach(mp, force=True)
            for mp in wanted["disabled"]:
                if mps.state_of(mp) == "available":
                    mps.disable(mp)
            for mp in wanted["waiting_dd"]:
                if mps.state_of(mp) == "available":
                    mps.detach(mp)
                    changed = True
        except AisError as exc:   # e.g. it would leave no mountpath: the rest stays as configured
            log.error("cannot restore every mountpath change of %s: %s", self._state_path, exc)
        log.info("mountpaths after restoring %s: %s", self._state_path, mps.to_wire())
        if changed:
            self.resilver("detach interrupted by a restart")


def _job_id() -> str:
    """A job ID like the proxy's (this job starts here, not at a proxy)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in os.urandom(10))


def _write_json(path: str, doc: Any) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("ignoring unreadable %s: %s", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


async def attach(ctx: TargetContext, registry: JobRegistry) -> Storage:
    """Start-up: the target's Storage, with the persisted mountpath changes applied."""
    storage = Storage(ctx, registry)
    ctx.storage = storage
    await storage.restore()
    return storage


# --- handlers -----------------------------------------------------------------------------

async def change_mountpath(request: web.Request) -> web.StreamResponse:
    """`PUT /v1/daemon/mountpaths` {"action", "value": path}: answers the resilver job ID."""
    ctx = request.app[CTX]
    msg = await read_action(request)
    assert msg is not None
    if not isinstance(msg.value, str) or not msg.value.strip():
        raise BadMessage(f"{msg.action or 'mountpath action'}: 'value' must be the mountpath (a path string)")
    if ctx.storage is None:
        raise BadRequest("this target does not manage its mountpaths at runtime")
    force = names.parse_bool(request.query.get(apc.Q_FORCE), apc.Q_FORCE)
    job_id = await ctx.storage.change(msg.action, msg.value, force)
    return web.Response(text=job_id, content_type="text/plain", headers={apc.HDR_XACTION_ID: job_id})


def mountpaths_answer(ctx: TargetContext) -> web.StreamResponse:
    """`GET /v1/daemon?what=mountpaths`: AIStore's MountpathList."""
    return web.json_response(ctx.mountpaths.to_wire())


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v1/daemon/mountpaths", change_mountpath)
