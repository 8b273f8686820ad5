"""Shared test setup: the shared models, the installed backends, and the ``slow`` marker.

Tests marked ``slow`` (minutes each, such as the 10,000-mutant fuzz run) are skipped
unless pytest is given ``--run-slow``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

#: ../shared/models/litert-testdata beside the repository (as CI lays it out).
MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "litert-testdata"

#: The backends tests run on: the two runtime backends that are installed here.
BACKENDS = [b for b in ("ai_edge_litert", "tflite_runtime") if importlib.util.find_spec(b) is not None]


def model_path(name: str) -> Path:
    """Path of a shared test model; skips the test when ../shared is not there."""
    path = MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is missing (../shared/models is laid out beside the repository)")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each installed runtime backend in turn."""
    return request.param


def in_ci() -> bool:
    """True when running under CI (which sets CI=true)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
