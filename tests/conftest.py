"""Fixtures shared by every test package: one real cloud emulator per cloud on loopback, started
the first time a test asks for it (see tests/emulators); AuthN services (tests/authn_service.py)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from tests.authn_service import AuthnService
from tests.emulators import Azurite, Emulator, GcsEmulator, MotoS3


def _running(kind: type[Emulator], tmp: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = kind(str(tmp.mktemp(kind.name)))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """moto's S3 server (counts requests; can be slowed down or made to fail)."""
    yield from _running(MotoS3, tmp_path_factory)  # type: ignore[misc]


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """gcp-storage-emulator."""
    yield from _running(GcsEmulator, tmp_path_factory)  # type: ignore[misc]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service (installed from npm by deploy/local/install.sh)."""
    yield from _running(Azurite, tmp_path_factory)  # type: ignore[misc]


@pytest.fixture
def make_authn(tmp_path: Any) -> Iterator[Callable[..., AuthnService]]:
    """Start real AuthN services: `make_authn(hs_secret="...")` (HS256) or `make_authn()` (RS256),
    each with its own state directory; `.url`, `.admin_token`, `.kill()`, `.start()`, `.stop()`.
    Stopped after the test; a service's log is printed when the test fails."""
    started: list[AuthnService] = []

    def make(hs_secret: str | None = None, **kw: Any) -> AuthnService:
        svc = AuthnService(str(tmp_path / f"authn-{len(started)}"), hs_secret=hs_secret, **kw)
        started.append(svc)
        return svc.start()
    yield make
    for svc in started:
        svc.stop()
        print(f"--- AuthN log ({svc.log_path}) ---\n{svc.log()}")
