"""Cloud emulators on loopback for remote-bucket tests, each a real server process.

- `MotoS3`: moto's S3 behind a small WSGI wrapper that counts requests per (method, path)
  and can slow response bodies down (`GET /_emu/count`, `POST /_emu/slow?bytes_per_s=N`),
  so tests can count backend GETs and cut transfers mid-way.

Every emulator: `start()` waits until it answers, `stop()` ends only the process it started,
`kill()` sends SIGKILL, `env` holds the variables that point our nodes (and SDKs) at it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Mapping

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    name = "emulator"

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(workdir, f"{self.name}.log")

    # subclasses: the command line and a readiness probe
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def env(self) -> Mapping[str, str]:
        raise NotImplementedError

    def start(self, timeout_s: float = 60.0) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log_tail()}")
            try:
                if self.ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout_s}s; log: {self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class MotoS3(Emulator):
    name = "moto"
    region = "us-east-1"
    access_key = "testing"
    secret_key = "testing"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_counting.py")
        return [sys.executable, script, str(self.port)]

    def ready(self) -> bool:
        return requests.get(f"{self.endpoint}/_emu/count", timeout=2).ok

    @property
    def env(self) -> Mapping[str, str]:
        return {"AIS_BACKEND_AWS_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def count(self, method: str = "", path: str = "") -> int:
        """Requests the emulator saw, filtered by method and exact path (e.g. `/bucket/key`)."""
        counts: dict[str, int] = requests.get(f"{self.endpoint}/_emu/count", timeout=5).json()
        return sum(n for k, n in counts.items()
                   if (not method or k.split(" ", 1)[0] == method) and (not path or k.split(" ", 1)[1] == path))

    def reset_count(self) -> None:
        requests.delete(f"{self.endpoint}/_emu/count", timeout=5).raise_for_status()

    def slow(self, bytes_per_s: int) -> None:
        """Throttle every response body to about `bytes_per_s` (0: full speed)."""
        requests.post(f"{self.endpoint}/_emu/slow", params={"bytes_per_s": bytes_per_s}, timeout=5).raise_for_status()
