"""The local runtime: a transformer as a supervised process on the target's host.

`LocalTransformer` starts the command with the transformer's environment, waits for its
`GET /health`, restarts it when it exits (with a doubling back-off), keeps its output in a
log file bounded to `log_max_bytes`, and stops the whole process group on `stop()`.
Nothing here knows about targets: the caller hands in the command, environment and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from typing import Any, Mapping, Sequence

import aiohttp

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 10.0
_TRIM_EVERY_S = 5.0


class TransformerStartError(Exception):
    """The transformer exited or did not answer `/health` in time; the message ends with its log tail."""


def free_port(host: str) -> int:
    """A port the kernel considers free now (the transformer binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: str, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - n, 0))
            return f.read()
    except FileNotFoundError:
        return b""


def _trim(path: str, max_bytes: int) -> None:
    """Keep the newest half when the log outgrew `max_bytes` (the child appends with O_APPEND)."""
    try:
        if os.path.getsize(path) <= max_bytes:
            return
    except FileNotFoundError:
        return
    keep = _tail(path, max_bytes // 2)
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(b"[... older output dropped ...]\n" + keep)


def _append_line(path: str, line: str) -> None:
    with open(path, "ab") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [supervisor] {line}\n".encode())


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the target dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _open_log(path: str) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of a process, from /proc; zeros when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_s = (int(fields[11]) + int(fields[12])) / ticks
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return cpu_s, rss
    except (OSError, IndexError, ValueError):
        return 0.0, 0


class LocalTransformer:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], workdir: str, host: str, port: int,
                 session: aiohttp.ClientSession, *, restart_backoff_s: float = 0.5,
                 log_max_bytes: int = 1 << 20) -> None:
        self.name, self.argv, self.env = name, list(argv), dict(env)
        self.workdir, self.host, self.port = workdir, host, port
        self.session = session
        self.restart_backoff_s = restart_backoff_s
        self.log_max_bytes = log_max_bytes
        self.log_path = os.path.join(workdir, "transformer.log")
        self.restarts = 0
        self.state = "stopped"       # starting | running | restarting | stopped
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._health_timeout_s = 60.0
        self._cpu_mark: tuple[float, float] = (time.monotonic(), 0.0)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, timeout_s: float) -> None:
        """Start the process and wait until it answers `/health`; then supervise it."""
        self._health_timeout_s = timeout_s
        self._stopping = False
        self.state = "starting"
        try:
            await self._spawn()
            await self._wait_healthy(timeout_s)
        except BaseException:
            await self.stop()
            raise
        self.state = "running"
        self._ready.set()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"etl-supervise-{self.name}")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after `grace_s`) and the supervisor."""
        self._stopping = True
        self._ready.clear()
        self.state = "stopped"
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not asyncio.current_task():
            sup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sup
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._signal(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            self._signal(proc.pid, signal.SIGKILL)
            await proc.wait()
        self._signal(proc.pid, signal.SIGKILL)   # stragglers of the group (e.g. worker processes)

    @staticmethod
    def _signal(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    async def wait_ready(self, timeout_s: float) -> bool:
        """True once the transformer is (again) healthy; False after `timeout_s` or when stopped."""
        if self._stopping:
            return False
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return not self._stopping

    # --- internals -------------------------------------------------------------------------------

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _trim, self.log_path, self.log_max_bytes)
        fd = await loop.run_in_executor(None, _open_log, self.log_path)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=self.workdir, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=fd, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        except OSError as exc:
            raise TransformerStartError(f"cannot start {self.argv[0]!r}: {exc}") from exc
        finally:
            os.close(fd)
        log.info("etl %s: started transformer pid %d on %s: %s", self.name, self._proc.pid, self.url,
                 " ".join(self.argv)[:200])

    async def _wait_healthy(self, timeout_s: float) -> None:
        assert self._proc is not None
        proc = self._proc
        deadline = time.monotonic() + timeout_s
        pause = 0.02
        while True:
            if proc.returncode is not None:
                raise TransformerStartError(f"transformer exited with status {proc.returncode} before it was "
                                            f"healthy; its output:\n{await self.log_tail(4096)}")
            if await self.health() == "Running":
                return
            if time.monotonic() >= deadline:
                raise TransformerStartError(f"transformer did not answer {self.url}/health within {timeout_s:g}s; "
                                            f"its output:\n{await self.log_tail(4096)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), pause)
            pause = min(pause * 2, 0.25)

    async def _supervise(self) -> None:
        """Wait for the process to exit; restart it (doubling the wait) until stopped."""
        backoff = self.restart_backoff_s
        loop = asyncio.get_running_loop()
        while not self._stopping:
            assert self._proc is not None
            proc = self._proc
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), _TRIM_EVERY_S)
                    break
                except TimeoutError:
                    await loop.run_in_executor(None, _trim, self.log_path, self.log_max_bytes)
            if self._stopping:
                return
            self._ready.clear()
            self.state = "restarting"
            self.restarts += 1
            line = f"transformer exited with status {proc.returncode}; restart #{self.restarts} in {backoff:g}s"
            log.warning("etl %s: %s", self.name, line)
            await loop.run_in_executor(None, _append_line, self.log_path, line)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
            try:
                await self._spawn()
                await self._wait_healthy(self._health_timeout_s)
            except TransformerStartError as exc:
                log.warning("etl %s: restart failed: %s", self.name, str(exc).splitlines()[0])
                continue
            self.state = "running"
            backoff = self.restart_backoff_s
            self._ready.set()

    # --- observation -----------------------------------------------------------------------------

    async def health(self) -> str:
        """"Running" when `/health` answers 200, else what went wrong."""
        try:
            async with self.session.get(f"{self.url}/health", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                body = await resp.read()
                if resp.status == 200:
                    return "Running"
                return f"unhealthy: status {resp.status} {body[:200]!r}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"unreachable: {type(exc).__name__}"

    async def log_tail(self, n: int | None = None) -> str:
        data = await asyncio.get_running_loop().run_in_executor(None, _tail, self.log_path, n or self.log_max_bytes)
        return data.decode("utf-8", "replace")

    async def logs(self) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(None, _tail, self.log_path, self.log_max_bytes)

    async def usage(self) -> dict[str, Any]:
        """CPU (percent of one core since the last call) and resident memory (bytes)."""
        pid = self.pid
        if pid is None:
            return {"cpu": 0.0, "mem": 0}
        cpu_s, rss = await asyncio.get_running_loop().run_in_executor(None, _proc_usage, pid)
        now = time.monotonic()
        then, cpu_then = self._cpu_mark
        self._cpu_mark = (now, cpu_s)
        pct = max(cpu_s - cpu_then, 0.0) / max(now - then, 1e-3) * 100 if cpu_then else 0.0
        return {"cpu": round(pct, 2), "mem": rss}
