"""tflite_runtime: the standalone TFLite wheel (its last release is 2.14).

The automatic choice's second: where ai_edge_litert has no wheels (32-bit ARM, Python
3.8/3.9). It stops at schema features of 2.14 and cannot share a process with a later
TensorFlow (see :func:`problem`).
"""

from __future__ import annotations

import importlib
import sys

from ._base import Backend, Schema, distribution_version, from_interpreter_module

NAME = "tflite_runtime"
AUTOMATIC = True

# Found in the backend's own library (the names its generated schema code knows), and by
# running the models: tflite_runtime 2.14, its last release, stops at INT4 and has no
# blockwise or multi-axis quantization. Given a blockwise-quantized FULLY_CONNECTED it
# does not refuse it: it returns zeros, or crashes the process (tests/runtime/test_compat.py).
SCHEMA = Schema(max_tensor_type=17, quantization_details=frozenset({1}))


def problem() -> str | None:
    """Why it cannot work in this process although installed (numpy 2, or after tensorflow), or None."""
    return _numpy_mismatch(NAME) or _after_tensorflow(NAME)


def loads_after_tensorflow() -> bool:
    """True when importing it now would load its library after TensorFlow's (see :func:`_after_tensorflow`)."""
    return _after_tensorflow(NAME) is not None


def load() -> Backend:
    """Import it (the backend's import errors propagate)."""
    interp_mod = importlib.import_module(f"{NAME}.interpreter")
    return from_interpreter_module(NAME, distribution_version(NAME), interp_mod, interp_mod, SCHEMA)


def _after_tensorflow(name: str) -> str | None:
    """Why ``name`` cannot load in this process after tensorflow, or None.

    tflite_runtime's library, loaded after TensorFlow's, reads models through the wrong copy
    of TFLite: measured, models TF 2.21 converted fail with vector::reserve or std::bad_alloc,
    or the process dies (SIGSEGV on CI). A module already imported has its library loaded,
    in whatever order that happened (the converters' tests import tflite_runtime first).
    """
    if name != "tflite_runtime" or "tensorflow" not in sys.modules or f"{name}.interpreter" in sys.modules:
        return None
    return ("Backend 'tflite_runtime' cannot work in this process: it would load after tensorflow, "
            "and their bundled TFLite libraries clash (models TensorFlow 2.21 converted fail to load, "
            "or crash the process). Use backend='ai_edge_litert' (or let tfedge choose), or import "
            "tflite_runtime.interpreter before tensorflow.")


def _numpy_mismatch(name: str) -> str | None:
    """Why an installed tflite_runtime cannot work with this numpy, or None if it can.

    tflite-runtime's releases (the last is 2.14) are built against numpy 1.x; under numpy 2
    they import, then fail on the first model with a bare SystemError (_ARRAY_API not found).
    """
    if name != "tflite_runtime":
        return None
    import numpy

    if int(numpy.__version__.split(".")[0]) < 2:
        return None
    try:
        version = distribution_version(name)
    except ImportError:
        return None  # not installed: the import below says so
    try:
        release = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None  # a build of its own ("unknown"): it may well be built against numpy 2
    if release > (2, 14):
        return None
    return (
        f"Backend 'tflite_runtime' {version} is installed but cannot work here: tflite-runtime "
        f"{version} needs numpy < 2, and numpy {numpy.__version__} is installed. "
        'Fix: pip install "numpy<2", or use ai-edge-litert (pip install "tfedge[litert]").'
    )
