"""Fixtures for the network tests: a fake internet in namespaces, and a manager living in it."""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.network import NetworkManager

from .fakenet import DNS_IP, FakeInternet, build_internet, make_tls_context

CAN_NET = os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "nft", "nsenter", "openssl"))
POOL = "10.201.0.0/16"


@pytest.fixture(scope="session")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return make_tls_context(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def internet(tls_context: ssl.SSLContext) -> AsyncIterator[FakeInternet]:
    if not CAN_NET:
        pytest.skip("needs root, ip, nft, nsenter and openssl")
    net = await build_internet(tls_context)
    try:
        yield net
    finally:
        await net.close()


def new_manager(net: FakeInternet, state_dir: Path, **kw) -> NetworkManager:
    return NetworkManager(state_dir, upstream_resolvers=[DNS_IP], netns=net.world_path, pool=POOL, **kw)


@pytest.fixture
async def manager(internet: FakeInternet, tmp_path: Path) -> AsyncIterator[NetworkManager]:
    m = new_manager(internet, tmp_path / "net")
    await m.start()
    try:
        yield m
    finally:
        await m.shutdown()
