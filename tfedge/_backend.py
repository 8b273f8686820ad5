"""The one adapter over a TFLite backend: finding, choosing, wrapping, and mapping errors.

This is the only module that names ``ai_edge_litert``, ``tflite_runtime`` or
``tensorflow``, and the only one that touches a backend interpreter's private parts
(its C++ wrapper ``_interpreter``, ``_get_tensor_details``, ``_delegates``, ...): the
rest of tfedge goes through :class:`Runtime`. ``tensorflow`` is imported only when asked
for by name (or when the process has already imported it, see :func:`choose`).

Errors cross the boundary in one place: :func:`translate` turns whatever a backend
raised, at whichever :class:`Stage`, into the tfedge error an app catches, with the
backend's own exception chained as ``__cause__``; :func:`mapped` does the same around
a block.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import re
import sys
import weakref
from itertools import chain
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from .errors import BackendNotFoundError, InputError, InvokeError, ModelError, TfedgeError, first_line

if TYPE_CHECKING:
    from .verify import ModelSummary

__all__ = [
    "BACKENDS",
    "Backend",
    "Runtime",
    "Stage",
    "available_backends",
    "choose",
    "get_backend",
    "mapped",
    "translate",
    "unsupported_features",
]

#: Every backend tfedge knows, in order of preference for the automatic choice.
#: ai_edge_litert first: measured here it runs MobileNetV2 2x faster in float32 and 9x in
#: int8 than tflite_runtime 2.14, loads the operator versions TF >= 2.15 emits, and
#: rejects corrupt files with an exception where tflite_runtime can segfault.
BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_AUTOMATIC = ("ai_edge_litert", "tflite_runtime")


def _install_hint() -> str:
    """What to install for a backend, on this platform and Python."""
    if platform.machine() in ("armv7l", "armv8l") or (platform.machine() == "aarch64" and sys.maxsize < 2**32):
        # 32-bit ARM (Raspberry Pi OS armhf): only tflite-runtime 2.13 has wheels, for Python <= 3.10.
        if sys.version_info < (3, 11):
            return ('Install one: pip install "tfedge[tflite]" (tflite-runtime 2.13, the only backend with 32-bit '
                    "ARM wheels), or use tfedge's native binary (python build_native.py --arch armv7l).")
        return (f"On 32-bit ARM no backend has wheels for Python {sys.version_info[0]}.{sys.version_info[1]}: use "
                "tfedge's native binary (python build_native.py --arch armv7l, on any Linux machine with qemu-user), "
                'or Python 3.9/3.10 with pip install "tfedge[tflite]".')
    if sys.version_info >= (3, 14):
        return (f"No backend has wheels for Python {sys.version_info[0]}.{sys.version_info[1]} yet: use Python "
                '3.10-3.13 (pip install "tfedge[litert]"), or tfedge\'s native binary (python build_native.py).')
    return 'Install one: pip install "tfedge[litert]" (Python 3.10-3.13), or "tfedge[tflite]" (Python 3.8-3.11).'


_INSTALL_HINT = _install_hint()
#: Backends that are installed but cannot work here (their message says how to fix it).
_unusable: set[str] = set()
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

    @property
    def label(self) -> str:
        """``tflite_runtime 2.14.0``, as messages name it."""
        return f"{self.name} {self.version}"


def _loaded_after_tensorflow(name: str) -> str | None:
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


_loaded: dict[str, Backend] = {}
_failed: dict[str, str] = {}


def _import(name: str) -> Backend:
    """Import backend ``name`` (cached), raising BackendNotFoundError with the reason."""
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        raise BackendNotFoundError(_failed[name])
    problem = _numpy_mismatch(name) or _loaded_after_tensorflow(name)
    if problem is not None:
        _failed[name] = problem
        _unusable.add(name)
        raise BackendNotFoundError(problem)
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
        _failed[name] = f"Backend {name!r} could not be imported ({first_line(exc, with_type=True)})."
        raise BackendNotFoundError(_failed[name]) from exc
    backend = Backend(
        name=name,
        version=version,
        interpreter_class=module.Interpreter,
        load_delegate=interp_mod.load_delegate,
        op_resolver_type=interp_mod.OpResolverType,
        module=interp_mod,
    )
    _loaded[name] = backend
    return backend


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
        version = _distribution_version(name)
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
    :func:`_loaded_after_tensorflow`), its place goes to ``tf.lite``, which the process has
    already paid for.
    """
    for candidate in _AUTOMATIC:
        yield "tensorflow" if _loaded_after_tensorflow(candidate) else candidate


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


# -- what each backend implements ---------------------------------------------------

# TensorType names (schema.fbs), for messages.
_TENSOR_TYPES = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16", "COMPLEX64",
    "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT", "UINT32", "UINT16",
    "INT4", "BFLOAT16", "INT2", "UINT4", "FLOAT8_E4M3FN", "FLOAT8_E5M2",
)
_DETAILS = {1: "custom quantization", 2: "blockwise quantization", 3: "multi-axis quantization"}


@dataclass(frozen=True)
class _Schema:
    """The parts of the model schema a backend's releases implement."""

    max_tensor_type: int
    quantization_details: frozenset[int]


# Found in the backend's own library (the names its generated schema code knows), and by
# running the models: tflite_runtime 2.14, its last release, stops at INT4 and has no
# blockwise or multi-axis quantization. Given a blockwise-quantized FULLY_CONNECTED it
# does not refuse it: it returns zeros, or crashes the process (tests/runtime/test_compat.py).
# Backends not listed here (ai_edge_litert, tf.lite) follow the current schema.
_SCHEMAS = {"tflite_runtime": _Schema(max_tensor_type=17, quantization_details=frozenset({1}))}


def unsupported_features(backend: Backend, summary: ModelSummary | None) -> list[str]:
    """What the model uses that ``backend`` does not implement, in words; [] if nothing."""
    schema = _SCHEMAS.get(backend.name)
    if schema is None or summary is None:
        return []
    missing = [
        f"{_TENSOR_TYPES[t] if t < len(_TENSOR_TYPES) else f'type {t}'} tensors"
        for t in sorted(summary.tensor_types)
        if t > schema.max_tensor_type
    ]
    missing += [_DETAILS.get(d, f"quantization details type {d}") for d in sorted(summary.quantization_details)
                if d not in schema.quantization_details]
    return missing


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
                      'pip install "tfedge[litert]" (Python 3.10-3.13), or backend="ai_edge_litert".')


# -- errors: one table -------------------------------------------------------------


class Stage(str, Enum):
    """Where a backend call failed; it decides which tfedge error the failure becomes."""

    LOAD = "load"  # building the interpreter from the model's bytes
    ALLOCATE = "allocate"  # allocating tensors at load, at the model's own shapes
    RESIZE = "resize"  # resizing inputs to an app's arrays and allocating again
    SET = "set"  # copying an input in
    INVOKE = "invoke"  # running the model
    GET = "get"  # copying an output out


_Builder = Callable[["re.Match[str]", "_Context"], TfedgeError]


@dataclass(frozen=True)
class _Context:
    """What a message needs besides the backend's own text."""

    backend: Backend
    source: str
    summary: Any
    name: str
    first: str


def _flex(match: re.Match[str], ctx: _Context) -> TfedgeError:
    flex = getattr(ctx.summary, "flex_ops", ())
    named = f" ({', '.join(flex)})" if flex else ""
    return ModelError(
        f"{ctx.source} uses Select TensorFlow (flex) ops{named}, which {ctx.backend.name} cannot run. "
        "Convert the model without Select TF ops (tfedge-convert refuses them unless "
        "--allow-select-tf-ops), or run it with a TFLite runtime built with the Flex delegate."
    )


def _custom(match: re.Match[str], ctx: _Context) -> TfedgeError:
    ops = sorted(set(_CUSTOM.findall(match.string)))
    return ModelError(
        f"{ctx.source} uses custom op(s) {', '.join(ops)} that {ctx.backend.name} does not have. "
        "Register them: Interpreter(model, custom_op_registerers=[SYMBOL_NAME or function]), "
        "or convert the model with builtin ops only."
    )


def _op_version(match: re.Match[str], ctx: _Context) -> TfedgeError:
    op, version = match.groups()
    return ModelError(
        f"{ctx.source} needs {op} version {version}, newer than {ctx.backend.label} "
        "knows. Use a newer runtime (pip install \"tfedge[litert]\"), or convert with a "
        "TensorFlow release that matches the runtime."
    )


def _op_code(match: re.Match[str], ctx: _Context) -> TfedgeError:
    return ModelError(
        f"{ctx.source} uses builtin operator {match.group(1)}, which {ctx.backend.label} does not "
        "know: the model is newer than the runtime. Use a newer runtime (pip install "
        "\"tfedge[litert]\"), or convert with a TensorFlow release that matches the runtime."
    )


_CUSTOM = re.compile(r"unresolved custom op: ([^.\s]+)")
#: The one table: a backend message pattern, the stages it applies to, and its error.
_RULES: tuple[tuple[re.Pattern[str], frozenset[Stage], _Builder], ...] = (
    (re.compile(r"Select TensorFlow op\(s\)"), frozenset(Stage), _flex),
    (_CUSTOM, frozenset(Stage), _custom),
    (re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'"), frozenset(Stage), _op_version),
    (re.compile(r"Op builtin_code out of range: (\d+)"), frozenset(Stage), _op_code),
)


def translate(
    exc: BaseException,
    stage: Stage,
    *,
    backend: Backend,
    source: str = "The model",
    summary: Any = None,
    name: str = "",
) -> TfedgeError:
    """The tfedge error for what ``backend`` raised at ``stage`` (raise it ``from exc``).

    Args:
        exc: The backend's exception.
        stage: Where it was raised.
        backend: The backend that raised it.
        source: How messages name the model (``Model file 'm.tflite'``).
        summary: The model's :class:`~tfedge.verify.ModelSummary`, for op names.
        name: For RESIZE, SET and GET, what failed, which the message starts with
            (``Input 'x' could not be resized to (1, 5)``); for INVOKE, the same in
            place of ``The model failed while running``.
    """
    if isinstance(exc, TfedgeError):
        return exc
    text = str(exc).strip()
    ctx = _Context(backend, source, summary, name, first_line(exc))
    for pattern, stages, build in _RULES:
        if stage in stages:
            match = pattern.search(text)
            if match:
                return build(match, ctx)
    if stage is Stage.LOAD:
        return ModelError(f"{source} could not be loaded by {backend.name}: {ctx.first}")
    if stage is Stage.ALLOCATE:
        return ModelError(f"{source} loaded, but {backend.name} could not allocate its tensors: {ctx.first}")
    if stage in (Stage.RESIZE, Stage.SET):
        return InputError(f"{name}: {ctx.first}")
    if stage is Stage.GET:
        return InvokeError(f"{name}: {ctx.first}")
    return InvokeError(f"{name or 'The model failed while running'}: {ctx.first}")


#: What backends raise for a failed call: ValueError/RuntimeError from their wrappers,
#: MemoryError for std::bad_alloc (a tensor a damaged file declares huge), SystemError
#: when a C extension is broken underneath.
BACKEND_ERRORS = (ValueError, RuntimeError, MemoryError, SystemError, TypeError)


@contextlib.contextmanager
def mapped(stage: Stage, *, backend: Backend, source: str = "The model", summary: Any = None,
           name: str = "") -> Iterator[None]:
    """Translate what the backend raises inside the block (see :func:`translate`)."""
    try:
        yield
    except BACKEND_ERRORS as exc:
        raise translate(exc, stage, backend=backend, source=source, summary=summary, name=name) from exc


# -- the adapter -----------------------------------------------------------------------


class Runtime:
    """One backend interpreter, and the only object that touches its private parts.

    ``set_tensor``, ``invoke`` and ``get_tensor`` are the backend's C++ calls themselves
    (bound once, with the subgraph as last argument): the hot path of
    :meth:`tfedge.Interpreter.run` calls them directly. Nothing here maps errors: the
    callers know the stage, and use :func:`translate`.

    Args:
        backend: The backend to build with.
        content: The model's bytes.
        num_threads: Threads of the CPU kernels.
        xnnpack: Apply the backend's default XNNPACK delegate (at the first allocation).
        options: Keyword options of the backend's Interpreter, passed unchanged; an
            ``experimental_op_resolver_type`` there wins over ``xnnpack``, and
            ``custom_op_registerers`` builds the backend's ``InterpreterWithCustomOps``.
    """

    def __init__(self, backend: Backend, content: bytes, *, num_threads: int, xnnpack: bool,
                 options: Mapping[str, Any]) -> None:
        kwargs = dict(options)
        resolver = backend.op_resolver_type
        kwargs.setdefault(
            "experimental_op_resolver_type",
            resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self.backend = backend
        registerers = kwargs.pop("custom_op_registerers", None)
        if registerers:  # the backends' own InterpreterWithCustomOps: symbol names or functions
            self._interp = backend.module.InterpreterWithCustomOps(
                custom_op_registerers=list(registerers), model_content=content, num_threads=num_threads, **kwargs)
        else:
            self._interp = backend.interpreter_class(model_content=content, num_threads=num_threads, **kwargs)
        wrapper = self._interp._interpreter
        self._wrapper = wrapper
        self.set_tensor: Callable[[int, Any, int], None] = wrapper.SetTensor
        self.invoke: Callable[[int], None] = wrapper.Invoke
        self.get_tensor: Callable[[int, int], np.ndarray] = wrapper.GetTensor
        self._runners: weakref.WeakSet[Any] = weakref.WeakSet()
        del wrapper
        # References to the wrapper that tfedge and the backend hold themselves; any more
        # are numpy views from tensor() (see views()).
        self._own = sys.getrefcount(self._wrapper)

    @staticmethod
    def applies_xnnpack(backend: Backend, options: Mapping[str, Any]) -> bool | None:
        """Whether a caller's ``experimental_op_resolver_type`` applies XNNPACK; None if not given."""
        if "experimental_op_resolver_type" not in options:
            return None
        resolver = backend.op_resolver_type
        return options["experimental_op_resolver_type"] in (resolver.AUTO, resolver.BUILTIN)

    # -- what the model looks like
    def input_details(self) -> list[dict[str, Any]]:
        """The backend's input details of the main subgraph."""
        return list(self._interp.get_input_details())

    def output_details(self) -> list[dict[str, Any]]:
        """The backend's output details of the main subgraph."""
        return list(self._interp.get_output_details())

    def ops_details(self) -> list[dict[str, Any]]:
        """The backend's ``_get_ops_details()``: every operator of the main subgraph."""
        return list(self._interp._get_ops_details())

    def op_details(self, index: int) -> dict[str, Any]:
        """The backend's ``_get_op_details(index)``."""
        return dict(self._interp._get_op_details(index))

    def native_handle(self) -> int:
        """The address of the backend's C++ ``tflite::Interpreter`` (what PyCoral takes)."""
        return int(self._wrapper.interpreter())

    def tensor_details(self, index: int, subgraph: int) -> dict[str, Any]:
        """The details dict of tensor ``index`` of ``subgraph``."""
        return dict(self._interp._get_tensor_details(index, subgraph))

    def all_tensor_details(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """The backend's ``get_tensor_details()``."""
        return list(self._interp.get_tensor_details(*args, **kwargs))

    def signature_defs(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{key: {"inputs": {name: tensor}, "outputs": {name: tensor}}}``."""
        return dict(self._interp._get_full_signature_list())

    def signature_list(self) -> dict[str, dict[str, list[str]]]:
        """The backend's ``get_signature_list()``."""
        return dict(self._interp.get_signature_list())

    def subgraph_of(self, key: str) -> int:
        """The subgraph a signature runs."""
        return int(self._wrapper.GetSubgraphIndexFromSignature(key))

    def has_free_inputs(self) -> bool:
        """True when an input of the main subgraph has a free dimension (-1 in its shape signature)."""
        return any(int(d) < 0 for d in chain.from_iterable(d.get("shape_signature", ()) for d in self.input_details()))

    def tensor_size(self, index: int, subgraph: int) -> tuple[int, ...]:
        """The current shape of tensor ``index``."""
        return tuple(int(d) for d in self._wrapper.TensorSize(index, subgraph))

    # -- shapes and memory
    def resize(self, index: int, shape: Sequence[int], subgraph: int, strict: bool = False) -> None:
        """Resize input tensor ``index`` (allocate afterwards)."""
        self._wrapper.ResizeInputTensor(index, np.array(shape, dtype=np.int32), strict, subgraph)

    def allocate(self, subgraph: int = 0) -> None:
        """Allocate tensor memory of ``subgraph`` (the main one by default).

        The main subgraph through the interpreter itself, which applies the default
        delegates (XNNPACK) at its first allocation; the backends' per-subgraph call
        would skip them. Not the backend's public ``allocate_tensors()``: it counts every
        reference to its wrapper as a numpy view, and tfedge holds some (see :meth:`views`).
        """
        if subgraph == 0:
            self._wrapper.AllocateTensors()
        else:
            self._wrapper.AllocateTensors(subgraph)

    def views(self) -> int:
        """How many numpy arrays from :meth:`tensor` still point into tensor memory."""
        runners = sum(1 for r in self._runners if getattr(r, "_interpreter_wrapper", None) is self._wrapper)
        return sys.getrefcount(self._wrapper) - self._own - runners

    def tensor(self, index: int) -> Callable[[], np.ndarray]:
        """The backend's ``tensor()``: a function returning a numpy view (no copy)."""
        return self._interp.tensor(index)

    def reset_variables(self) -> None:
        """Reset variable tensors to their initial values."""
        self._interp.reset_all_variables()

    def signature_runner(self, key: str) -> Any:
        """The backend's SignatureRunner for ``key``."""
        runner = self._interp.get_signature_runner(key)
        self._runners.add(runner)
        return runner

    # -- delegates and the graph
    def apply_delegate(self, delegate: Any) -> None:
        """Apply a delegate object from the backend's ``load_delegate`` to the graph."""
        self._wrapper.ModifyGraphWithDelegate(delegate._get_native_delegate_pointer())
        self._interp._delegates.append(delegate)  # kept alive as long as the interpreter

    def num_nodes(self) -> int:
        """Nodes in the main subgraph's execution plan."""
        return int(self._wrapper.NumNodes())

    def node_name(self, node: int) -> str:
        """The kernel name of ``node`` (``"DELEGATE"`` for a delegate's partition)."""
        return str(self._wrapper.NodeName(node))

    def node_inputs(self, node: int) -> list[int]:
        """The input tensor indices of ``node``."""
        return [int(t) for t in self._wrapper.NodeInputs(node)]

    def node_outputs(self, node: int) -> list[int]:
        """The output tensor indices of ``node``."""
        return [int(t) for t in self._wrapper.NodeOutputs(node)]
