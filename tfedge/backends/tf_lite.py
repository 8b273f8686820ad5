"""TensorFlow's own ``tf.lite``: only when asked for by name, or already imported.

Imported lazily, by variable: Nuitka special-cases a literal "tensorflow" import and
fails to compile where TensorFlow is not installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._base import Backend, from_interpreter_module

NAME = "tensorflow"
AUTOMATIC = False


def problem() -> str | None:
    """Why it cannot work in this process although installed: never known in advance."""
    return None


def load() -> Backend:
    """Import TensorFlow (the import errors propagate)."""
    tf: Any = importlib.import_module(NAME)
    interp_mod = importlib.import_module(f"{NAME}.lite.python.interpreter")
    return from_interpreter_module(NAME, tf.__version__, interp_mod, tf.lite)
