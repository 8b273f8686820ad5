"""The names the rest of tfedge (and code written against older tfedge) import from here.

The backends now live in :mod:`tfedge.backends`, one module per backend; this module
only re-exports the names that other modules, benchmarks and tests import.
"""

from __future__ import annotations

from .backends import (
    BACKEND_ERRORS,
    BACKENDS,
    ENV_VAR,
    Backend,
    Runtime,
    Stage,
    available_backends,
    choose,
    get_backend,
    mapped,
    translate,
    unsupported_features,
)
from .backends._choose import _install_hint

__all__ = [
    "BACKENDS",
    "BACKEND_ERRORS",
    "ENV_VAR",
    "Backend",
    "Runtime",
    "Stage",
    "_install_hint",
    "available_backends",
    "choose",
    "get_backend",
    "mapped",
    "translate",
    "unsupported_features",
]
