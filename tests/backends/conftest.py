"""Fixtures for the backend tests: one real emulator per cloud for the session (started only
when a test asks for that cloud), and `remote`, parametrized over the clouds: how to build a
`BackendSection` pointing at the emulator, the backend itself, and a plain SDK client to set
up and check buckets behind the backend's back. `Relay` puts network faults in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest

from ais.config import BackendSection
from target.backends.base import Backend
from tests.emulators import Azurite, GcsEmulator, MotoS3

T = TypeVar("T")
PROVIDERS = ("aws", "gcp", "azure")
SCHEMES = {"aws": "s3", "gcp": "gs", "azure": "az"}


# --- a cloud as the tests see it ----------------------------------------------------------------

class Remote:
    """One cloud's emulator: configs that reach it, its backend, and an admin client."""

    def __init__(self, provider: str, emulator: Any, tmp: str) -> None:
        self.provider, self.emulator, self.tmp = provider, emulator, tmp
        self.scheme = SCHEMES[provider]
        self.admin = emulator.client()
        self.buckets: list[str] = []

    def cfg(self, port: int | None = None, **overrides: Any) -> BackendSection:
        """A config pointing at the emulator, or at `port` on loopback instead (a relay, a closed port)."""
        port = port or self.emulator.port
        if self.provider == "aws":
            base: dict[str, Any] = {"aws_endpoint": f"http://127.0.0.1:{port}", "aws_region": MotoS3.region}
        elif self.provider == "gcp":
            base = {"gcp_endpoint": f"http://127.0.0.1:{port}", "gcp_project": GcsEmulator.project}
        else:
            base = {"azure_endpoint": f"http://127.0.0.1:{port}/{Azurite.account}", "azure_account": Azurite.account,
                    "azure_key": Azurite.key}
        return BackendSection(**{**base, **overrides})

    def env_only(self) -> dict[str, str]:
        """The environment that alone (with an empty config) points the backend at the emulator."""
        if self.provider == "aws":
            return {"AWS_ENDPOINT_URL": self.emulator.endpoint}
        if self.provider == "gcp":
            return {"STORAGE_EMULATOR_HOST": self.emulator.endpoint}
        return dict(self.emulator.env)

    def make_backend(self, cfg: BackendSection) -> Backend:
        if self.provider == "aws":
            try:
                from target.backends.aws import AwsBackend
            except ImportError as exc:
                pytest.skip(f"target/backends/aws.py is not there yet: {exc}")
            return AwsBackend(cfg)
        if self.provider == "gcp":
            from target.backends.gcp import GcpBackend
            return GcpBackend(cfg)
        from target.backends.azure import AzureBackend
        return AzureBackend(cfg)

    def run(self, body: Callable[[Backend], Awaitable[T]], cfg: BackendSection | None = None,
            timeout_s: float = 60.0) -> T:
        """Run `body` with a fresh backend on a fresh loop, and close the backend."""
        backend = self.make_backend(cfg or self.cfg())   # built outside the timed body

        async def main() -> T:
            try:
                return await asyncio.wait_for(body(backend), timeout_s)
            finally:
                await backend.close()
        return asyncio.run(main())

    def cname(self, bucket: str, obj: str = "") -> str:
        return f"{self.scheme}://{bucket}" + (f"/{obj}" if obj else "")

    # --- setting up and checking behind the backend's back ----------------------------------

    def create_bucket(self) -> str:
        name = f"t{uuid.uuid4().hex[:16]}"
        if self.provider == "aws":
            self.admin.create_bucket(Bucket=name)
            # versioned, so that objects have a version to report
            self.admin.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        elif self.provider == "gcp":
            self.admin.create_bucket(name)
        else:
            self.admin.create_container(name)
        self.buckets.append(name)
        return name

    def put(self, bucket: str, obj: str, data: bytes, custom: dict[str, str] | None = None) -> None:
        if self.provider == "aws":
            self.admin.put_object(Bucket=bucket, Key=obj, Body=data, Metadata=custom or {})
        elif self.provider == "gcp":
            blob = self.admin.bucket(bucket).blob(obj)
            blob.metadata = custom or None
            blob.upload_from_string(data)
        else:
            self.admin.get_blob_client(bucket, obj).upload_blob(data, overwrite=True, metadata=custom or {})

    def get(self, bucket: str, obj: str) -> bytes:
        if self.provider == "aws":
            return bytes(self.admin.get_object(Bucket=bucket, Key=obj)["Body"].read())
        if self.provider == "gcp":
            return bytes(self.admin.bucket(bucket).blob(obj).download_as_bytes())
        return bytes(self.admin.get_blob_client(bucket, obj).download_blob().readall())

    def close(self) -> None:
        self.admin.close()


@pytest.fixture(params=PROVIDERS)
def remote(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Remote]:
    """The cloud under test, with the process environment cleared of other endpoints."""
    provider = str(request.param)
    for var in ("AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"):
        monkeypatch.delenv(var, raising=False)
    emulator = request.getfixturevalue({"aws": "moto", "gcp": "gcs", "azure": "azurite"}[provider])
    if provider == "aws":   # boto3 takes its credentials from the environment
        for k, v in emulator.env.items():
            if k.startswith("AWS_"):
                monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    r = Remote(provider, emulator, str(tmp_path))
    yield r
    r.close()


@pytest.fixture
def bucket(remote: Remote) -> str:
    return remote.create_bucket()


# --- network faults -----------------------------------------------------------------------------

class Relay:
    """A TCP relay on loopback to `port`. Each connection's requests are held `delay_s` per
    read, and its answers cut off (both sockets closed) after `cut_after` bytes."""

    def __init__(self, port: int, delay_s: float = 0.0, cut_after: int = -1) -> None:
        self.target, self.delay_s, self.cut_after = port, delay_s, cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cuts = 0
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, -1, self.delay_s), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.cut_after, 0.0), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, budget: int, delay_s: float) -> None:
        try:
            while data := src.recv(65536):
                if delay_s:
                    time.sleep(delay_s)
                if 0 <= budget < len(data):
                    dst.sendall(data[:budget])
                    with self._lock:
                        self.cuts += 1
                    break
                dst.sendall(data)
                budget = budget - len(data) if budget >= 0 else -1
            else:
                dst.shutdown(socket.SHUT_WR)   # pass the end of the stream on
                return
        except OSError:
            pass
        for s in (src, dst):   # cut, or a socket failed: drop the connection (shutdown wakes the other pipe)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture
def relay() -> Iterator[Callable[..., Relay]]:
    made: list[Relay] = []

    def make(port: int, **kwargs: Any) -> Relay:
        made.append(Relay(port, **kwargs))
        return made[-1]
    yield make
    for r in made:
        r.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
