from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.netns import Lab, netns_unavailable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = netns_unavailable()
    if reason is None:
        return
    if os.environ.get("NETBOOT_REQUIRE_NETNS"):
        raise pytest.UsageError(f"namespace tests required (NETBOOT_REQUIRE_NETNS) but {reason}")
    skip = pytest.mark.skip(reason=f"namespace test: {reason}")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as the_lab:
        yield the_lab
