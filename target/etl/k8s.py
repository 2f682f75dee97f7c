"""The Kubernetes runtime of a target (`etl.runtime = "k8s"`): the pod and service of
`etl.k8s` created through the in-cluster API, waited for until ready, and reached at
`http://<pod host IP>:<node port>`. Kubernetes restarts a crashed transformer itself.

Needs a target running in a Kubernetes pod (in-cluster service account; `K8S_NODE_NAME` from
the downward API, else the pod's host name). Blocking client calls run in the default executor.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

from ais.etl import EtlEntry, InitMsg
from etl import k8s as manifests
from target.context import TargetContext
from target.etl.manager import CALLBACK_PATH, InitFailed


class PodTransformer:
    def __init__(self, ctx: TargetContext, init: InitMsg, api: Any, namespace: str, url: str) -> None:
        self.ctx, self.init, self.api, self.namespace = ctx, init, api, namespace
        self._url = url
        self.state = "running"
        self.restarts = 0
        self.name = manifests.pod_name(init.name, ctx.me.id)

    @property
    def url(self) -> str:
        return self._url

    async def _run(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))

    async def stop(self, grace_s: float = 5.0) -> None:
        self.state = "stopped"
        for call in (self.api.delete_namespaced_pod, self.api.delete_namespaced_service):
            try:
                await self._run(call, self.name, self.namespace, grace_period_seconds=int(grace_s))
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def wait_ready(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self.state != "stopped":
            if await self.health() == "Running":
                return True
            await asyncio.sleep(0.5)
        return False

    async def health(self) -> str:
        import aiohttp
        try:
            async with self.ctx.http.session.get(f"{self.url}/health", timeout=aiohttp.ClientTimeout(total=5)) as r:
                return "Running" if r.status == 200 else f"unhealthy: status {r.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"unreachable: {type(exc).__name__}"

    async def logs(self) -> bytes:
        text = await self._run(self.api.read_namespaced_pod_log, self.name, self.namespace,
                               limit_bytes=self.ctx.cfg.etl.log_max_bytes)
        return str(text).encode()

    async def usage(self) -> dict[str, Any]:
        return {"cpu": 0.0, "mem": 0}   # needs metrics-server; not queried


async def start_pod(ctx: TargetContext, entry: EtlEntry, init: InitMsg) -> PodTransformer:
    from kubernetes import client, config
    try:
        config.load_incluster_config()
    except config.ConfigException as exc:
        raise InitFailed(f"etl[{init.name}]: etl.runtime is k8s but this target is not in a Kubernetes pod: {exc}") \
            from exc
    api = client.CoreV1Api()
    ns = ctx.cfg.etl.k8s_namespace
    node = os.environ.get("K8S_NODE_NAME") or socket.gethostname()
    # the transformer reads objects by path only with pass_fqn; otherwise it gets their bytes and
    # needs no volumes (a target whose mountpaths are persistent volumes has no host paths to share)
    mountpaths = ctx.mountpaths.paths if ctx.cfg.etl.pass_fqn else ()
    pod = manifests.pod_manifest(init, ctx.me.id, f"{ctx.me.intra_url}{CALLBACK_PATH}/{init.name}/{entry.secret}",
                                 node, mountpaths, entry.msg.get("resources"))
    svc = manifests.service_manifest(init, ctx.me.id)
    manifests.validate(pod)
    manifests.validate(svc)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: api.create_namespaced_pod(ns, pod))
    created = await loop.run_in_executor(None, lambda: api.create_namespaced_service(ns, svc))
    node_port = created.spec.ports[0].node_port
    end = time.monotonic() + init.init_timeout_s
    while True:
        status = (await loop.run_in_executor(None, lambda: api.read_namespaced_pod(pod.metadata.name, ns))).status
        if status.host_ip and any(c.ready for c in (status.container_statuses or [])):
            break
        if time.monotonic() > end:
            runtime = PodTransformer(ctx, init, api, ns, "")
            await runtime.stop()
            raise InitFailed(f"etl[{init.name}]: pod {pod.metadata.name} not ready within {init.init_timeout_s:g}s")
        await asyncio.sleep(1)
    return PodTransformer(ctx, init, api, ns, f"http://{status.host_ip}:{node_port}")
