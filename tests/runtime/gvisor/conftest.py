from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtime.gvisor.sandboxes import BoxFactory, box_factory


@pytest.fixture
async def boxes(tmp_path: Path) -> AsyncIterator[BoxFactory]:
    async with box_factory(tmp_path) as factory:
        yield factory
