from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtime.namespace.sandboxes import SandboxFactory, sandbox_factory


@pytest.fixture
async def sandboxes(tmp_path: Path) -> AsyncIterator[SandboxFactory]:
    async with sandbox_factory(tmp_path) as factory:
        yield factory
