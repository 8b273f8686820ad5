"""Shared test setup: the shared models, the installed backends, the ``slow`` marker, and the
guard that the tests run against the installed tfedge, never the checkout.

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


def _installed_tfedge() -> str:
    """Where ``import tfedge`` resolves; stops the run when that is not inside this environment."""
    import os
    import sys

    import tfedge

    where = os.path.realpath(tfedge.__file__)
    prefix = os.path.realpath(sys.prefix)
    if os.environ.get("TFEDGE_TEST_CHECKOUT") != "1" and not where.startswith(prefix + os.sep):
        raise pytest.UsageError(
            f"tfedge is imported from {where}, not from this environment ({prefix}): the tests must run against "
            "the installed package. Run scripts/test.sh (it builds and installs the wheel and runs pytest outside "
            "the checkout), or set TFEDGE_TEST_CHECKOUT=1 to test an editable install on purpose."
        )
    return where


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run against anything but the installed tfedge (a checkout on sys.path, say)."""
    config.stash[_WHERE] = _installed_tfedge()


def pytest_report_header(config: pytest.Config) -> str:
    """The first lines of every run say which tfedge is under test."""
    return f"tfedge under test: {config.stash[_WHERE]}"


_WHERE = pytest.StashKey[str]()
