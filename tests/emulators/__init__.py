"""Cloud emulators on loopback for remote-bucket tests, each a real server process.

- `MotoS3`: moto's S3 behind a small WSGI wrapper that counts requests per (method, path)
  and can slow response bodies down (`GET /_emu/count`, `POST /_emu/slow?bytes_per_s=N`),
  so tests can count backend GETs and cut transfers mid-way.
- `GcsEmulator`: gcp-storage-emulator (PyPI), in memory. It ignores `maxResults`/`pageToken`
  (every listing is one page), and serves one request at a time over HTTP/1.0, so a response
  nobody reads to the end holds up every other request.
- `Azurite`: Microsoft's Azure Storage emulator (npm; `deploy/local/install_azurite.sh` puts
  it in `.tools/`), blob service only, with the well-known `devstoreaccount1` account. No blob
  versioning (no version IDs), and on SIGTERM it waits for its clients' idle connections.

Every emulator: `start()` waits until it answers, `stop()` ends only the process it started,
`kill()` sends SIGKILL, `env` holds the variables that point our nodes (and SDKs) at it.
"""

from __future__ import annotations

import os
import shutil
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
                                     start_new_session=True, env={**os.environ, **self.process_env})
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

    stop_grace_s = 10.0
    process_env: Mapping[str, str] = {}   # extra environment of the emulator process

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(self.stop_grace_s)
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

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` object requests answer `status` (503 SlowDown, 429, 500...)."""
        requests.post(f"{self.endpoint}/_emu/fail", params={"status": status, "count": count},
                      timeout=5).raise_for_status()

    def slow(self, bytes_per_s: int) -> None:
        """Throttle every response body to about `bytes_per_s` (0: full speed)."""
        requests.post(f"{self.endpoint}/_emu/slow", params={"bytes_per_s": bytes_per_s}, timeout=5).raise_for_status()


class GcsEmulator(Emulator):
    name = "gcs"
    project = "test"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                "--port", str(self.port), "--in-memory"]

    def ready(self) -> bool:
        return requests.get(f"{self.endpoint}/", timeout=2).ok

    @property
    def env(self) -> Mapping[str, str]:
        return {"AIS_BACKEND_GCP_ENDPOINT": self.endpoint, "STORAGE_EMULATOR_HOST": self.endpoint,
                "AIS_BACKEND_GCP_PROJECT": self.project}

    def client(self):  # type: ignore[no-untyped-def]
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        return storage.Client(project=self.project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Azurite(Emulator):
    name = "azurite"
    stop_grace_s = 1.0   # on SIGTERM it waits up to 10 s for idle client connections; its data is scratch
    account = "devstoreaccount1"
    # Azurite's fixed development key (public, in Microsoft's documentation)
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    @staticmethod
    def binary() -> str:
        """`azurite-blob` from `<repo>/.tools`, else from PATH."""
        local = os.path.join(REPO_ROOT, ".tools", "node_modules", ".bin", "azurite-blob")
        found = local if os.access(local, os.X_OK) else shutil.which("azurite-blob")
        if not found:
            raise RuntimeError("Azurite is not installed: run deploy/local/install_azurite.sh (needs npm), "
                               "or put azurite-blob on PATH")
        return found

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
                f"BlobEndpoint={self.endpoint};")

    def command(self) -> list[str]:
        return [self.binary(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", os.path.join(self.workdir, "data"), "--silent", "--skipApiVersionCheck", "--loose"]

    def ready(self) -> bool:
        # any answer will do (an unsigned request gets 4xx): the server is up
        return requests.get(f"{self.endpoint}?comp=list", timeout=2).status_code < 500

    @property
    def env(self) -> Mapping[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def client(self):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(self.connection_string)
