"""What several test folders share: the test models and the installed backends.

A module of its own, not conftest.py: each test folder may have a conftest, and
``from conftest import`` would take whichever was imported last.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: The LiteRT test models kept in the repository (see its README.md).
MODELS = Path(__file__).resolve().parent / "data" / "litert-testdata"

#: The backends tests run on: the two runtime backends that are installed here.
BACKENDS = [b for b in ("ai_edge_litert", "tflite_runtime") if importlib.util.find_spec(b) is not None]


def model_path(name: str) -> Path:
    """Path of a test model; fails the test, naming the file, when it is not there."""
    path = MODELS / name
    assert path.is_file(), f"{path} is missing from the checkout"
    return path


def in_ci() -> bool:
    """True when running under CI (which sets CI=true)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
