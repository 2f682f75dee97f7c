"""Cloud backends behind one interface (see base.py), created on first use per provider."""

from __future__ import annotations

import asyncio

from ais.config import BackendSection
from ais.errors import NotImplementedErr
from target.backends.base import Backend


class Backends:
    """The backends of one target, keyed by provider; SDKs are imported only when first needed."""

    def __init__(self, cfg: BackendSection) -> None:
        self.cfg = cfg
        self._by_provider: dict[str, Backend] = {}
        self._lock = asyncio.Lock()

    async def get(self, provider: str) -> Backend:
        backend = self._by_provider.get(provider)
        if backend is not None:
            return backend
        async with self._lock:   # importing an SDK and building its client block: once, off the loop
            backend = self._by_provider.get(provider)
            if backend is None:
                backend = await asyncio.get_running_loop().run_in_executor(None, self._make, provider)
                self._by_provider[provider] = backend
            return backend

    def _make(self, provider: str) -> Backend:
        if provider == "aws":
            from target.backends.aws import AwsBackend
            aws: Backend = AwsBackend(self.cfg)
            return aws
        if provider == "gcp":
            from target.backends.gcp import GcpBackend
            gcp: Backend = GcpBackend(self.cfg)
            return gcp
        if provider == "azure":
            from target.backends.azure import AzureBackend
            azure: Backend = AzureBackend(self.cfg)
            return azure
        raise NotImplementedErr(f"backend provider {provider!r} is not supported")

    async def close(self) -> None:
        await asyncio.gather(*(b.close() for b in self._by_provider.values()), return_exceptions=True)
