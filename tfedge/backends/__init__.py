"""The TFLite backends: finding and choosing one, its error table, one module per backend.

This package is the only code that names ``ai_edge_litert``, ``tflite_runtime`` or
``tensorflow``, and the only one that touches a backend interpreter's private parts (its
C++ wrapper ``_interpreter``, ``_get_tensor_details``, ``_delegates``, ...): the rest of
tfedge goes through the runtime :meth:`Backend.open` returns.

- :mod:`._base`: the interface (:class:`Backend`, a backend module's ``NAME``,
  ``AUTOMATIC``, ``problem()``, ``load()``) and what a backend implements of the schema;
- :mod:`.litert`, :mod:`.tflite`, :mod:`.tf_lite`: one module per backend;
- :mod:`.interpreter_api`: the runtime of the backends with TFLite's Interpreter API;
- :mod:`._choose`: the automatic choice and the advice when none fits;
- :mod:`._errors`: the one table from a backend's error to tfedge's.
"""

from __future__ import annotations

from ._base import Backend, Schema, unsupported_features
from ._choose import BACKENDS, ENV_VAR, available_backends, choose, get_backend
from ._errors import BACKEND_ERRORS, Stage, kernel_message, mapped, translate
from .interpreter_api import Runtime

__all__ = [
    "BACKENDS",
    "BACKEND_ERRORS",
    "ENV_VAR",
    "Backend",
    "Runtime",
    "Schema",
    "Stage",
    "available_backends",
    "choose",
    "get_backend",
    "kernel_message",
    "mapped",
    "translate",
    "unsupported_features",
]
