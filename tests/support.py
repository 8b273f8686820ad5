"""What several test folders share: the test models and the installed backends.

A module of its own, not conftest.py: each test folder may have a conftest, and
``from conftest import`` would take whichever was imported last.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

#: The LiteRT test models kept in the repository (see its README.md).
MODELS = Path(__file__).resolve().parent / "data" / "litert-testdata"

#: Installed backends that tfedge refuses here, with its reason (tflite-runtime under numpy 2).
UNUSABLE: dict[str, str] = {}


def _working_backends() -> list[str]:
    """The runtime backends that are installed and that tfedge can use here."""
    from tfedge import _backend
    from tfedge.errors import BackendNotFoundError

    found = []
    for name in ("ai_edge_litert", "tflite_runtime"):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            _backend.get_backend(name)
        except BackendNotFoundError as exc:
            UNUSABLE[name] = str(exc)
            continue
        found.append(name)
    return found


#: The backends tests run on: the two runtime backends that are installed and work here.
BACKENDS = _working_backends()


def needs_backend(name: str) -> pytest.MarkDecorator:
    """Skip the test, saying why, unless backend ``name`` works here."""
    if name in BACKENDS:
        return pytest.mark.skipif(False, reason="")
    why = f"installed but unusable: {UNUSABLE[name]}" if name in UNUSABLE else "not installed"
    return pytest.mark.skip(reason=f"needs {name}, which is {why}")


def model_path(name: str) -> Path:
    """Path of a test model; fails the test, naming the file, when it is not there."""
    path = MODELS / name
    assert path.is_file(), f"{path} is missing from the checkout"
    return path


def in_ci() -> bool:
    """True when running under CI (which sets CI=true)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
