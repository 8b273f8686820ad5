"""Shared test setup: the shared models, the installed backends, and the ``slow`` marker.

Tests marked ``slow`` (minutes each, such as the 10,000-mutant fuzz run) are skipped
unless pytest is given ``--run-slow``.
"""

from __future__ import annotations

import pytest

from support import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each installed runtime backend in turn."""
    return request.param


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--run-slow``: slow tests (minutes) are skipped unless asked for."""
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip slow tests unless ``--run-slow`` was given."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
