"""Finding and choosing a backend: the one named, or the best installed that runs the model.

The backends themselves are one module each (:mod:`.litert`, :mod:`.tflite`,
:mod:`.tf_lite`) behind the interface of :mod:`._base`; this module only knows their
order of preference. ``tensorflow`` is imported only when asked for by name (or when the
process has already imported it, see :func:`_candidates`).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import BackendNotFoundError, ModelError, first_line
from . import litert, tf_lite, tflite
from ._base import Backend, unsupported_features

if TYPE_CHECKING:
    from ..verify import ModelSummary

__all__ = ["BACKENDS", "ENV_VAR", "available_backends", "choose", "get_backend"]

#: The backend modules, in order of preference for the automatic choice (see their docstrings).
_MODULES: dict[str, ModuleType] = {m.NAME: m for m in (litert, tflite, tf_lite)}
#: Every backend tfedge knows, in order of preference.
BACKENDS = tuple(_MODULES)
_AUTOMATIC = tuple(name for name, m in _MODULES.items() if m.AUTOMATIC)
ENV_VAR = "TFEDGE_BACKEND"


def _install_hint() -> str:
    """What to install for a backend, on this platform and Python."""
    if platform.machine() in ("armv7l", "armv8l") or (platform.machine() == "aarch64" and sys.maxsize < 2**32):
        # 32-bit ARM (Raspberry Pi OS armhf): only tflite-runtime 2.13 has wheels, for Python <= 3.10.
        if sys.version_info < (3, 11):
            return ('Install one: pip install "tfedge[tflite]" (tflite-runtime 2.13, the only backend with 32-bit '
                    "ARM wheels), or use tfedge's native binary (tfedge-build --arch armv7l).")
        return (f"On 32-bit ARM no backend has wheels for Python {sys.version_info[0]}.{sys.version_info[1]}: use "
                "tfedge's native binary (tfedge-build --arch armv7l, on any Linux machine with qemu-user), "
                'or Python 3.9/3.10 with pip install "tfedge[tflite]".')
    return 'Install one: pip install "tfedge[litert]" (Python 3.10-3.14), or "tfedge[tflite]" (Python 3.8-3.11).'


_INSTALL_HINT = _install_hint()
#: Backends that are installed but cannot work here (their message says how to fix it).
_unusable: set[str] = set()
_loaded: dict[str, Backend] = {}
_failed: dict[str, str] = {}


def _import(name: str) -> Backend:
    """Import backend ``name`` (cached), raising BackendNotFoundError with the reason."""
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        raise BackendNotFoundError(_failed[name])
    module = _MODULES[name]
    problem = module.problem()
    if problem is not None:
        _failed[name] = problem
        _unusable.add(name)
        raise BackendNotFoundError(problem)
    try:
        backend: Backend = module.load()
    except Exception as exc:  # noqa: BLE001 - a broken install raises anything (numpy ABI, OSError)
        _failed[name] = f"Backend {name!r} could not be imported ({first_line(exc, with_type=True)})."
        raise BackendNotFoundError(_failed[name]) from exc
    _loaded[name] = backend
    return backend


def _named(name: str | None) -> str | None:
    """The backend asked for by ``name`` or ``$TFEDGE_BACKEND``; BackendNotFoundError if unknown."""
    chosen = name or os.environ.get(ENV_VAR) or None
    if chosen is not None and chosen not in BACKENDS:
        raise BackendNotFoundError(
            f"Unknown backend {chosen!r}. Available: " + ", ".join(repr(b) for b in BACKENDS) + "."
        )
    return chosen


def _candidates() -> Iterator[str]:
    """The automatic choice's candidates, in order of preference.

    Where ``tflite_runtime`` would load after ``tensorflow`` (see
    :func:`.tflite.loads_after_tensorflow`), its place goes to ``tf.lite``, which the
    process has already paid for.
    """
    for candidate in _AUTOMATIC:
        yield tf_lite.NAME if candidate == tflite.NAME and tflite.loads_after_tensorflow() else candidate


#: Tells whether a backend runs the model: None if it does, else why not (a probe's words).
Vet = Callable[[Backend], Optional[str]]


def choose(name: str | None = None, summary: ModelSummary | None = None, source: str = "The model",
           vet: Vet | None = None) -> Backend:
    """Import the backend to run a model with: the one named, or the best that can run it.

    Args:
        name: A backend name; None means ``$TFEDGE_BACKEND``, else the automatic choice.
        summary: What :func:`tfedge.verify.verify_model` found in the model. The
            automatic choice skips a backend that lacks a schema feature the model
            uses; a named backend that lacks one raises ModelError.
        source: How messages name the model.
        vet: Asked before an error advises another backend, so the advice never names
            one that fails on the same model.

    Raises:
        BackendNotFoundError: the backend is unknown or cannot be imported, or none is.
        ModelError: no importable backend implements what the model uses.
    """
    chosen = _named(name)
    if chosen is not None:
        try:
            backend = _import(chosen)
        except BackendNotFoundError as exc:
            if chosen in _unusable:  # installed: its message says how to fix it
                raise
            extra = "pip install tensorflow" if chosen == "tensorflow" else _INSTALL_HINT
            raise BackendNotFoundError(f"{exc} {extra}") from exc.__cause__
        missing = unsupported_features(backend, summary)
        if missing:
            raise _feature_error(backend, missing, source, vet)
        return backend
    reasons: list[str] = []
    lacking: list[tuple[Backend, list[str]]] = []
    for candidate in _candidates():
        try:
            backend = _import(candidate)
        except BackendNotFoundError as exc:
            reasons.append(str(exc))
            continue
        missing = unsupported_features(backend, summary)
        if missing:
            lacking.append((backend, missing))
            continue
        return backend
    if lacking:
        backend, missing = lacking[0]
        raise _feature_error(backend, missing, source, vet)
    raise BackendNotFoundError(f"No TFLite backend found. {_INSTALL_HINT} " + " ".join(reasons))


def get_backend(name: str | None = None) -> Backend:
    """Import and return the backend named ``name`` (see :func:`choose` for the default).

    Raises:
        BackendNotFoundError: the backend is unknown or cannot be imported.
    """
    return choose(name)


def available_backends() -> list[str]:
    """Names of the backends that import here (tensorflow only if already imported)."""
    found = []
    for name in BACKENDS:
        if name == "tensorflow" and "tensorflow" not in sys.modules:
            continue
        try:
            _import(name)
        except BackendNotFoundError:
            continue
        found.append(name)
    return found


def _feature_error(backend: Backend, missing: Sequence[str], source: str, vet: Vet | None) -> ModelError:
    """The ModelError naming what ``backend`` lacks, and ai_edge_litert unless it fails too."""
    what = (f"{source} uses {' and '.join(missing)}, which {backend.label} does not implement (it would "
            "return wrong values or crash instead of refusing the model).")
    try:
        other: Backend | None = _import("ai_edge_litert")
    except BackendNotFoundError:
        other = None
    failure = vet(other) if other is not None and vet is not None else None
    if other is not None and failure is not None:
        return ModelError(f"{what} {other.label}, which implements it, fails on it too ({failure}): "
                          "no installed backend runs this model.")
    return ModelError(f"{what} Run it with ai_edge_litert: "
                      'pip install "tfedge[litert]" (Python 3.10-3.14), or backend="ai_edge_litert".')
