"""Finding, choosing and wrapping a TFLite backend.

This is the only module that names ``ai_edge_litert``, ``tflite_runtime`` or
``tensorflow``. ``tensorflow`` is imported only when asked for by name (or when the
process has already imported it, see :func:`resolve`).
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from .errors import BackendNotFoundError, ModelError, TfedgeError

__all__ = ["BACKENDS", "Backend", "available_backends", "get_backend", "map_load_error"]

#: Every backend tfedge knows, in order of preference for the automatic choice.
#: ai_edge_litert first: measured here it runs MobileNetV2 2x faster in float32 and 9x in
#: int8 than tflite_runtime 2.14, loads the operator versions TF >= 2.15 emits, and
#: rejects corrupt files with an exception where tflite_runtime can segfault.
BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_AUTOMATIC = ("ai_edge_litert", "tflite_runtime")
_INSTALL_HINT = 'Install one: pip install "tfedge[litert]" (or "tfedge[tflite]" on Python 3.9).'
if platform.machine() in ("armv7l", "armv8l") or (platform.machine() == "aarch64" and sys.maxsize < 2**32):
    # 32-bit ARM (Raspberry Pi OS armhf): only tflite-runtime 2.13 has wheels, for Python <= 3.10.
    _INSTALL_HINT = (
        'Install one: pip install "tfedge[tflite]" (tflite-runtime 2.13, the only backend with 32-bit ARM wheels), '
        "or use tfedge's native binary (python build_native.py --arch armv7l)."
        if sys.version_info < (3, 11)
        else f"On 32-bit ARM no backend has wheels for Python {sys.version_info[0]}.{sys.version_info[1]}: use "
        "tfedge's native binary (python build_native.py --arch armv7l, on any Linux machine with qemu-user), or "
        'Python 3.9/3.10 with pip install "tfedge[tflite]".'
    )
ENV_VAR = "TFEDGE_BACKEND"


@dataclass(frozen=True)
class Backend:
    """A TFLite backend that imported: its name, version and the pieces tfedge uses."""

    name: str
    version: str
    interpreter_class: type
    load_delegate: Callable[..., Any]
    op_resolver_type: Any = field(repr=False)
    module: ModuleType = field(repr=False, compare=False)
    #: True when ``tensorflow`` was already imported as this backend was: tflite_runtime
    #: 2.14 then fails on models newer TF converted (``vector::reserve``, ``bad_alloc``).
    after_tensorflow: bool = field(default=False, compare=False)


_loaded: dict[str, Backend] = {}
_failed: dict[str, str] = {}


def _import(name: str) -> Backend:
    """Import backend ``name`` (cached), raising BackendNotFoundError with the reason."""
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        raise BackendNotFoundError(_failed[name])
    after_tensorflow = "tensorflow" in sys.modules
    try:
        if name == "tensorflow":
            # By variable, not the literal: Nuitka special-cases a literal "tensorflow"
            # import and fails to compile where TensorFlow is not installed.
            tf = importlib.import_module(name)
            module: Any = tf.lite
            version = tf.__version__
            interp_mod: Any = importlib.import_module("tensorflow.lite.python.interpreter")
        else:
            interp_mod = importlib.import_module(f"{name}.interpreter")
            module = interp_mod
            version = _distribution_version(name)
    except Exception as exc:  # noqa: BLE001 - a broken install raises anything (numpy ABI, OSError)
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        _failed[name] = f"Backend {name!r} could not be imported ({reason})."
        raise BackendNotFoundError(_failed[name]) from exc
    backend = Backend(
        name=name,
        version=version,
        interpreter_class=module.Interpreter,
        load_delegate=interp_mod.load_delegate,
        op_resolver_type=interp_mod.OpResolverType,
        module=interp_mod,
        after_tensorflow=after_tensorflow,
    )
    _loaded[name] = backend
    return backend


def _distribution_version(name: str) -> str:
    """Installed version of a backend's distribution, or "unknown"."""
    # The package's own __version__ first: a native binary leaves out importlib.metadata.
    declared = getattr(importlib.import_module(name), "__version__", None)
    if isinstance(declared, str):
        return declared
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:
        return "unknown"
    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:
        return "unknown"


def resolve(name: str | None = None) -> str:
    """The backend name to use for an explicit ``name``, ``$TFEDGE_BACKEND`` or the default.

    The default is the first of ``ai_edge_litert`` and ``tflite_runtime`` that imports.
    ``tflite_runtime`` 2.14 fails on models that TF >= 2.15 converted once
    ``tensorflow`` is imported in the same process (``vector::reserve``); when that is
    the case and ``ai_edge_litert`` is missing, the default becomes ``tf.lite``, which
    the process has already paid for.
    """
    chosen = name or os.environ.get(ENV_VAR) or None
    if chosen is not None:
        if chosen not in BACKENDS:
            raise BackendNotFoundError(
                f"Unknown backend {chosen!r}. Available: "
                + ", ".join(repr(b) for b in BACKENDS)
                + "."
            )
        return chosen
    reasons = []
    for candidate in _AUTOMATIC:
        if candidate == "tflite_runtime" and "tensorflow" in sys.modules:
            candidate = "tensorflow"
        try:
            _import(candidate)
        except BackendNotFoundError as exc:
            reasons.append(str(exc))
            continue
        return candidate
    raise BackendNotFoundError(f"No TFLite backend found. {_INSTALL_HINT} " + " ".join(reasons))


def get_backend(name: str | None = None) -> Backend:
    """Import and return the backend named ``name`` (see :func:`resolve` for the default).

    Raises:
        BackendNotFoundError: the backend is unknown or cannot be imported.
    """
    chosen = resolve(name)
    try:
        return _import(chosen)
    except BackendNotFoundError as exc:
        extra = "pip install tensorflow" if chosen == "tensorflow" else _INSTALL_HINT
        raise BackendNotFoundError(f"{exc} {extra}") from exc.__cause__


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


_FLEX = re.compile(r"Select TensorFlow op\(s\)")
_CUSTOM = re.compile(r"unresolved custom op: ([^.\s]+)")
_OP_VERSION = re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'")


def map_load_error(exc: BaseException, backend: Backend, source: str, summary: Any = None) -> TfedgeError:
    """Turn a backend's exception while loading or allocating into a ModelError.

    ``summary`` (a :class:`tfedge.verify.ModelSummary`, when the model was verified)
    lets the message name the offending ops.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if _FLEX.search(text):
        flex = getattr(summary, "flex_ops", ())
        named = f" ({', '.join(flex)})" if flex else ""
        return ModelError(
            f"{source} uses Select TensorFlow (flex) ops{named}, which {backend.name} cannot run. "
            "Convert the model without Select TF ops (tfedge-convert refuses them unless "
            "--allow-select-tf-ops), or run it with a TFLite runtime built with the Flex delegate."
        )
    custom = sorted(set(_CUSTOM.findall(text)))
    if custom:
        return ModelError(
            f"{source} uses custom op(s) {', '.join(custom)} that {backend.name} does not have. "
            "Register them with an InterpreterWithCustomOps build of the runtime, or "
            "convert the model with builtin ops only."
        )
    version = _OP_VERSION.search(text)
    if version:
        op, ver = version.groups()
        return ModelError(
            f"{source} needs {op} version {ver}, newer than {backend.name} {backend.version} "
            "knows. Use a newer runtime (pip install \"tfedge[litert]\"), or convert with a "
            "TensorFlow release that matches the runtime."
        )
    if backend.name == "tflite_runtime" and backend.after_tensorflow:
        # The clash shows as whichever C++ exception the corrupted allocator state raises
        # first: vector::reserve on one machine, std::bad_alloc on another.
        return ModelError(
            f"{source} cannot be read by tflite_runtime in a process that imported "
            "tensorflow first (a known clash between their bundled libraries; it raised: "
            f"{first}). Use backend='ai_edge_litert', or import tfedge's backend before tensorflow."
        )
    return ModelError(f"{source} could not be loaded by {backend.name}: {first}")
