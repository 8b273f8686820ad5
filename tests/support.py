"""What several test folders share: the shared models and the installed backends.

A module of its own, not conftest.py: each test folder may have a conftest, and
``from conftest import`` would take whichever was imported last.
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


def in_ci() -> bool:
    """True when running under CI (which sets CI=true)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
