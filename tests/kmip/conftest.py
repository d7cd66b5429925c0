"""A KMIP server per test module with tenants ``alice`` and ``bob`` and their certificates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strongroom.testing.kmip import KmipServerInfo, kmip_server


@pytest.fixture(scope="module")
def kmip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmipServerInfo]:
    with kmip_server(tmp_path_factory.mktemp("kmip"), ("alice", "bob")) as info:
        yield info
