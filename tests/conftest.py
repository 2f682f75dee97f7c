"""Session fixtures shared by every test package: one real cloud emulator per cloud on loopback,
started the first time a test asks for it (see tests/emulators)."""

from __future__ import annotations

from typing import Iterator

import pytest

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
