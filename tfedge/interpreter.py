"""``Interpreter``: load a .tflite model and run it by name.

A drop-in for ``tflite_runtime.interpreter.Interpreter`` (every public method behaves
the same, with errors mapped to :mod:`tfedge.errors`), plus :meth:`Interpreter.run`:
one call that takes inputs by name or position, quantizes and resizes them as the
model needs, and returns owned float outputs by name.

How a call runs: every signature (and the main graph) is a :class:`_View` whose tensor
indices, quantization and names are looked up once at load time. Each view gets three
*feeders*, one per call form (one array, a sequence, a mapping), built from the backend's
own C++ calls when its subgraph is allocated and built again after a fallback. A feeder
sets the inputs, invokes and reads the outputs with nothing else in between; whatever
it cannot take as it is (another dtype, a new shape, a batch, a missing name) goes to
the general path, which converts, resizes, batches or explains.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union

import numpy as np

from . import backends
from . import delegates as _delegates
from .backends import BACKEND_ERRORS, Stage, translate
from ._dropin import DropIn, SignatureRunner
from ._model import Model, ModelSource, load_model, open_model
from ._session import Session
from .errors import InputError
from .quant import QUANTIZED_DTYPES, QuantParams, dequantize, quantize, quantizer
from .verify import ModelSummary

if TYPE_CHECKING:
    from .metadata import ModelMetadata

__all__ = ["Interpreter", "SignatureRunner", "TensorSpec"]

# typing aliases evaluated at import time: collections.abc types are not subscriptable on 3.8.
Inputs = Union[np.ndarray, "Sequence[Any]", "Mapping[str, Any]", Any]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model, as :meth:`Interpreter.run` addresses it.

    Attributes:
        name: The key ``run()`` uses: the signature key, or the tensor name.
        tensor_name: The tensor's own name in the model.
        index: The tensor index (for ``set_tensor``/``get_tensor``).
        shape: The shape at load time.
        shape_signature: The shape with ``-1`` for dimensions that may change.
        dtype: The tensor's element type.
        quantization: Scale and zero point, or None for a real-valued tensor.
    """

    name: str
    tensor_name: str
    index: int
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: np.dtype
    quantization: QuantParams | None

    def describe(self) -> str:
        """``(1, 224, 224, 3) uint8``, the form error messages use."""
        return f"{_shape_str(self.shape_signature)} {self.dtype.name}"


def _shape_str(shape: Sequence[int]) -> str:
    """A shape as Python prints a tuple, with None for a free dimension."""
    dims = tuple(None if d < 0 else int(d) for d in shape)
    return str(dims)


def _default_threads() -> int:
    """CPU cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Input:
    """One input of a view: what the feeders and the general path need, looked up once."""

    __slots__ = ("spec", "index", "dtype", "quant", "batch_one", "bit")

    def __init__(self, spec: TensorSpec, position: int) -> None:
        self.spec = spec
        self.index = spec.index
        self.dtype = spec.dtype
        self.quant = spec.quantization if spec.dtype in QUANTIZED_DTYPES else None
        # A static leading 1 is a fixed batch: larger batches run one sample at a time.
        self.batch_one = len(spec.shape_signature) > 0 and spec.shape_signature[0] == 1
        self.bit = 1 << position


#: A view's hot path on one backend interpreter: the feeder for each call form by the
#: type of what the app passes (np.ndarray, list, tuple, dict). A feeder takes the inputs
#: as given and returns the outputs, or None when the call needs the general path; a
#: backend failure in ``invoke`` propagates as it is.
_Feeders = Dict[type, Callable[[Any], Optional[dict]]]


class _View:
    """The inputs and outputs of one signature (or of the main subgraph).

    Inputs and outputs are in the subgraph's own order, the order of
    ``get_input_details()``, whatever order the signature lists them in.
    """

    __slots__ = ("key", "subgraph", "inputs", "lookup", "outputs", "input_specs", "output_specs", "ordered",
                 "feeders")

    def __init__(
        self, key: str | None, subgraph: int, inputs: list[TensorSpec], outputs: list[TensorSpec], ordered: bool
    ) -> None:
        self.key = key
        self.subgraph = subgraph
        self.input_specs = tuple(inputs)
        self.output_specs = tuple(outputs)
        self.inputs = tuple(_Input(s, i) for i, s in enumerate(inputs))
        self.lookup: dict[str, _Input] = {}
        for inp in self.inputs:
            self.lookup.setdefault(inp.spec.tensor_name, inp)
        for inp in self.inputs:  # the public name wins over a clashing tensor name
            self.lookup[inp.spec.name] = inp
        self.outputs = tuple(
            (s.name, s.index, s.quantization if s.dtype in QUANTIZED_DTYPES else None) for s in outputs
        )
        #: False when the subgraph's input order is unknown (an unverified model's
        #: signature on another subgraph): a sequence would be ambiguous.
        self.ordered = ordered or len(inputs) <= 1
        self.feeders: _Feeders | None = None

    def names(self) -> str:
        """The input names, quoted, for messages."""
        return ", ".join(repr(inp.spec.name) for inp in self.inputs) or "none"


def _make_feeders(view: _View, runtime: backends.Runtime) -> _Feeders:
    """The feeders of ``view`` on ``runtime`` (see :data:`_Feeders`).

    Each input gets a setter called as ``setter(index, value, subgraph)``: the backend's
    own ``SetTensor`` for most, which checks dtype and shape itself and raises ValueError
    for what needs the general path; for a quantized input, one that first quantizes a
    float32 array into buffers made once. So the loops below have no branch per input.
    """
    set_tensor, invoke, get = runtime.set_tensor, runtime.invoke, runtime.get_tensor
    sg = view.subgraph

    def quantizing(inp: _Input) -> Callable[[int, Any, int], None]:
        fast = quantizer(inp.quant, inp.dtype, inp.spec.shape)  # type: ignore[arg-type]

        def setter(index: int, value: Any, subgraph: int) -> None:
            if type(value) is np.ndarray and value.dtype.kind == "f":
                value = fast(value)
                if value is None:  # another shape, or NaN: the general path converts or explains
                    raise ValueError("not for the fast path")
            set_tensor(index, value, subgraph)

        return setter

    setters = {inp.index: quantizing(inp) if inp.quant is not None and not inp.quant.per_channel else set_tensor
               for inp in view.inputs}
    outputs = view.outputs
    if any(q is not None for _, _, q in outputs):

        def read() -> dict:
            return {n: get(i, sg) if q is None else dequantize(get(i, sg), q) for n, i, q in outputs}
    elif len(outputs) == 1:
        ((oname, oindex, _),) = outputs

        def read() -> dict:
            return {oname: get(oindex, sg)}
    else:
        pairs = tuple((n, i) for n, i, _ in outputs)

        def read() -> dict:
            return {n: get(i, sg) for n, i in pairs}

    feeders: _Feeders = {}
    count = len(view.inputs)
    if count == 1:
        only = view.inputs[0].index
        put = setters[only]

        def array(x: Any) -> dict | None:
            try:
                put(only, x, sg)
            except ValueError:  # another dtype or shape: the general path converts or explains
                return None
            invoke(sg)
            return read()

        feeders[np.ndarray] = array

    if view.ordered:
        ordered = tuple((inp.index, setters[inp.index]) for inp in view.inputs)

        def sequence(xs: Any) -> dict | None:
            if len(xs) != count:
                return None
            try:
                for (index, put), x in zip(ordered, xs):
                    put(index, x, sg)
            except ValueError:
                return None
            invoke(sg)
            return read()

        feeders[list] = feeders[tuple] = sequence

    if count == 1:
        names = frozenset(view.lookup)  # the input's name and its tensor name

        def single(named: Any) -> dict | None:
            if len(named) != 1:  # a missing input, an unknown one, or one under both names
                return None
            ((name, x),) = named.items()
            if name not in names:
                return None
            try:
                put(only, x, sg)
            except ValueError:
                return None
            invoke(sg)
            return read()

        feeders[dict] = single
        return feeders

    entries = {name: (inp.index, setters[inp.index], inp.bit) for name, inp in view.lookup.items()}
    full = (1 << count) - 1
    aliases = len(entries) > count  # an input known by its name and its tensor name

    def mapping(named: Any) -> dict | None:
        if len(named) != count:  # a missing input, or an unknown one
            return None
        given = 0
        try:
            for name, x in named.items():
                index, put, bit = entries[name]
                put(index, x, sg)
                given |= bit
        except (KeyError, ValueError):  # an unknown name, another dtype or shape
            return None
        if aliases and given != full:  # one input under both of its names
            return None
        invoke(sg)
        return read()

    feeders[dict] = mapping
    return feeders


class Interpreter(DropIn):
    """Runs a TFLite model with one backend: :meth:`run` by name, and the backend's own API.

    A drop-in for ``tflite_runtime.interpreter.Interpreter`` (:class:`~tfedge._dropin.DropIn`:
    ``allocate_tensors``, ``set_tensor``, ``invoke``, ... behave as the backend's, with
    errors mapped to :mod:`tfedge.errors`). New code should call :meth:`run` instead.

    Args:
        model: A path (``str`` or ``PathLike``) to a .tflite file, or its bytes.
        model_path, model_content: The backend's keywords for a path and for bytes.
        backend: ``"ai_edge_litert"``, ``"tflite_runtime"`` or ``"tensorflow"``. By
            default ``$TFEDGE_BACKEND``, else the first of ai_edge_litert and
            tflite_runtime that imports and implements what the model uses
            (tensorflow only when named, or already imported and ai_edge_litert missing).
        num_threads: Threads for the CPU kernels; None: the CPU cores this process may use.
        delegates: Ordered preference list: ``"xnnpack"``, ``"gpu"``, ``"edgetpu"``,
            ``"none"``, a delegate library's path, or ``(entry, {options})`` (see
            :mod:`tfedge.delegates`); what none takes runs on the CPU (XNNPACK unless
            ``"none"``). A delegate that is missing or fails (at load, prepare, after a
            resize, or while running) is dropped with a ``DelegateFallbackWarning``.
        strict: Raise DelegateError instead of falling back.
        experimental_delegates: Delegates from ``load_delegate``; they go first.
        verify: Check the file's structure first (:func:`tfedge.verify.verify_model`), so
            a corrupt file, or one using what the backend lacks, raises ModelError
            instead of crashing the process or answering wrongly.
        probe: Load the model and run it once in a child process first (see
            :mod:`tfedge.isolate`), so one that crashes or hangs the backend raises
            ModelError. Cached by the file's identity and SHA-256: only a file's first
            load pays for it. None (the default) probes unless ``$TFEDGE_PROBE=0``.
        probe_timeout: Seconds the probe may take (default 30).
        quiet: Drop the line the backends print on every load (it redirects the
            process-wide fd 2 while the model loads).
        **backend_options: Passed to the backend's Interpreter unchanged
            (``custom_op_registerers=`` builds its ``InterpreterWithCustomOps``).

    Raises:
        BackendNotFoundError: no backend, or the named one cannot be imported.
        ModelError: the model is missing, empty, not TFLite, corrupt, needs ops or
            schema features the backend lacks, or cannot be allocated.
        DelegateError: with ``strict=True``, a delegate could not be used.
        ValueError: no model, or ``delegates`` has an entry that is no delegate.

    A model with free input dimensions (``-1`` in the shape signature) that cannot be
    allocated at its placeholder shape waits for the first call's shapes. One
    Interpreter may be shared by threads: calls hold one lock and run one at a time
    (:class:`~tfedge.InterpreterPool` runs N at once).
    """

    def __init__(
        self,
        model: ModelSource | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        model_content: bytes | None = None,
        backend: str | None = None,
        num_threads: int | None = None,
        delegates: Sequence[_delegates.DelegateEntry] | None = None,
        strict: bool = False,
        experimental_delegates: Sequence[Any] | None = None,
        verify: bool = True,
        probe: bool | None = None,
        probe_timeout: float | None = None,
        quiet: bool = False,
        **backend_options: Any,
    ) -> None:
        given = [m for m in (model, model_path, model_content) if m is not None]
        if len(given) != 1:  # ValueError, as the backends raise (a path from an unset setting is None)
            raise ValueError(f"Pass exactly one model: a path or bytes (model, model_path or model_content); "
                             f"got {'none' if not given else len(given)}.")
        if num_threads is None:
            num_threads = _default_threads()
        elif isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a whole number >= 1, got {num_threads!r}.")
        chain = _delegates.resolve(delegates, experimental_delegates)
        self._lock = threading.Lock()
        self._model, self._backend = open_model(given[0], backend=backend, verify=verify, probe=probe,
                                                probe_timeout=probe_timeout)
        _check_options(self._backend, backend_options)
        self.num_threads = num_threads
        self._backend_options = backend_options
        self._metadata: object = _UNREAD
        self._session = Session(self._backend, self._model.content, num_threads=num_threads, chain=chain,
                                strict=bool(strict), options=backend_options, source=self._model.source,
                                summary=self._model.summary, quiet=bool(quiet), renewed=self._renew_feeders,
                                stacklevel=2)
        self._views: dict[str | None, _View] = _views_of(self._runtime, self._model.summary)
        self._default = self._views[None]
        # Free input dimensions: the placeholder shape may not allocate, and a rebuild
        # after a fallback may then wait for the next call's shapes (see Session.build).
        self._session.free = any(d < 0 for v in self._views.values() for s in v.input_specs for d in s.shape_signature)
        self._renew_feeders()

    # -- load time -------------------------------------------------------------

    @property
    def _runtime(self) -> backends.Runtime:
        """The backend runtime in use (a fallback replaces it)."""
        return self._session.built.runtime

    def _renew_feeders(self) -> None:
        """Feeders for every view whose subgraph is allocated, on the current runtime (lock held)."""
        runtime = self._runtime
        for view in self._views.values():
            view.feeders = _make_feeders(view, runtime) if view.subgraph in self._session.allocated else None

    # -- the fast call ---------------------------------------------------------

    def run(
        self, inputs: Inputs, *, signature: str | None = None, raw: bool = False
    ) -> dict[str, np.ndarray]:
        """Run the model and return its outputs by name.

        Args:
            inputs: One array (single-input models), a sequence in input order (the
                order of :meth:`input_specs` and ``get_input_details()``), or a mapping
                by input name (signature key or tensor name).
            signature: The signature to run; None runs the only signature, or the
                main graph of a model with none or several.
            raw: Pass integers to and from a quantized model untouched. By default
                float inputs are quantized with the input's scale and zero point and
                quantized outputs come back dequantized to float32.

        Returns:
            ``{output name: array}``; the arrays are copies the caller owns.

        Raises:
            InputError: an input is missing, unknown, or has a shape or dtype that
                does not fit.
            SignatureError: ``signature`` is not one of the model's.
            InvokeError: the model failed while running.
        """
        view = self._default if signature is None else self._views.get(signature)
        if view is None:
            raise self._unknown_signature(signature)
        with self._lock:
            feeders = view.feeders
            if feeders is not None and not raw:
                feed = feeders.get(type(inputs))
                if feed is not None:
                    try:
                        out = feed(inputs)
                    except BACKEND_ERRORS as exc:
                        self._invoke_failed(exc, stacklevel=2)  # raises unless a delegate was dropped
                        out = None
                    if out is not None:
                        return out
            return self._run_general(view, inputs, raw)

    __call__ = run

    def _run_general(self, view: _View, inputs: Inputs, raw: bool) -> dict[str, np.ndarray]:
        """Convert, resize or batch the inputs as needed, then run (lock held)."""
        out = self._invoke_until_done(view, _arrange(view, inputs), raw)
        if view.feeders is None and view.subgraph in self._session.allocated:
            view.feeders = _make_feeders(view, self._runtime)
        return out

    def _invoke_until_done(self, view: _View, arrays: list[Any], raw: bool) -> dict[str, np.ndarray]:
        """:meth:`_invoke`, again after each fallback (lock held)."""
        while True:
            try:
                return self._invoke(view, arrays, raw)
            except _Retry:
                continue

    def _invoke(self, view: _View, arrays: list[Any], raw: bool) -> dict[str, np.ndarray]:
        """Set the inputs, invoke and read the outputs (lock held); _Retry after a fallback."""
        runtime = self._runtime
        subgraph = view.subgraph
        allocated = subgraph in self._session.allocated
        values = [_coerce(inp, value, raw) for inp, value in zip(view.inputs, arrays)]
        resize: list[tuple[_Input, tuple[int, ...]]] = []
        for inp, value, given in zip(view.inputs, values, arrays):
            if allocated and value.shape == runtime.tensor_size(inp.index, subgraph):
                continue
            signature = inp.spec.shape_signature
            if _fits(signature, value.shape):
                resize.append((inp, value.shape))
            elif inp.batch_one and value.ndim == len(signature) and value.shape[0] > 1 and _fits(
                signature[1:], value.shape[1:]
            ):
                return _batched(view, values, lambda sample: self._invoke_until_done(view, sample, raw))
            else:
                raise _shape_error(inp.spec, value, given)
        if resize or not allocated:
            self._session.allocate(subgraph, [(inp.index, shape) for inp, shape in resize],
                                   lambda exc: _resize_error(exc, resize, self._backend), stacklevel=5)
            runtime = self._runtime
        backend = self._backend
        for inp, value in zip(view.inputs, values):
            with backends.mapped(Stage.SET, backend=backend, name=f"Input {inp.spec.name!r} cannot be set"):
                runtime.set_tensor(inp.index, value, subgraph)
        try:
            runtime.invoke(subgraph)
        except BACKEND_ERRORS as exc:
            self._invoke_failed(exc, stacklevel=4)
            raise _Retry() from exc
        return self._read(view, runtime, raw)

    def _read(self, view: _View, runtime: backends.Runtime, raw: bool) -> dict[str, np.ndarray]:
        """Read (and dequantize unless ``raw``) every output of ``view``."""
        result = {}
        for name, index, quant in view.outputs:
            with backends.mapped(Stage.GET, backend=self._backend, name=f"Output {name!r} cannot be read"):
                out = runtime.get_tensor(index, view.subgraph)
            result[name] = out if quant is None or raw else dequantize(out, quant)
        return result

    def _invoke_failed(self, exc: BaseException, *, stacklevel: int) -> None:
        """After ``invoke`` raised: drop the delegate to blame and return, or raise InvokeError (lock held)."""
        if not self._session.recover(exc, "while running", stacklevel=stacklevel + 1):
            raise translate(exc, Stage.INVOKE, backend=self._backend, source=self._model.source) from exc

    # -- what the model looks like ---------------------------------------------

    @property
    def summary(self) -> ModelSummary:
        """What the model contains: operators, custom and flex ops, signatures."""
        if self._model.summary is None:
            self._model = load_model(self._model, verify=True)
        assert self._model.summary is not None
        return self._model.summary

    @property
    def backend(self) -> str:
        """Name of the backend running this model."""
        return self._backend.name

    @property
    def backend_version(self) -> str:
        """Version of the backend running this model."""
        return self._backend.version

    @property
    def delegates_used(self) -> tuple[str, ...]:
        """The delegates applied to the model, in order (``"xnnpack"``, ``"gpu"``, a library path)."""
        return tuple(spec.label for spec, _ in self._session.built.applied)

    @property
    def placement(self) -> dict[str, int]:
        """Nodes of the main subgraph each delegate runs, and the rest under ``"cpu"``.

        For example ``{"xnnpack": 64, "cpu": 1}``; a delegate that took no node shows 0. Empty
        for a model with free dimensions before its first call (delegates apply at a real shape).
        """
        return dict(self._session.built.placement)

    @property
    def signatures(self) -> tuple[str, ...]:
        """The model's signature keys."""
        return tuple(k for k in self._views if k is not None)

    def input_specs(self, signature: str | None = None) -> tuple[TensorSpec, ...]:
        """The inputs ``run()`` takes, in order: the subgraph's, as ``get_input_details()``."""
        return self._view(signature).input_specs

    def output_specs(self, signature: str | None = None) -> tuple[TensorSpec, ...]:
        """The outputs ``run()`` returns, in order."""
        return self._view(signature).output_specs

    @property
    def model_content(self) -> bytes:
        """The model's bytes, as loaded."""
        return self._model.content

    @property
    def keeps_state(self) -> tuple[str, ...]:
        """The operators through which the model keeps state between calls (:func:`kept_state`)."""
        return kept_state(self.summary, self._runtime.ops_details)

    @property
    def model(self) -> Model:
        """The loaded model (bytes, name, verification), to share with other Interpreters."""
        return self._model

    def _view(self, signature: str | None) -> _View:
        """The view for ``signature``, or SignatureError."""
        view = self._views.get(signature)
        if view is None:
            raise self._unknown_signature(signature)
        return view

    def __repr__(self) -> str:
        used = ",".join(self.delegates_used) or "none"
        return (f"<tfedge.Interpreter {self._model.source} backend={self.backend} threads={self.num_threads} "
                f"delegates={used}>")

    @property
    def metadata(self) -> ModelMetadata | None:
        """The model's TFLite Metadata (:class:`tfedge.metadata.ModelMetadata`), or None.

        Read on first access, so damaged metadata (a ``ModelError`` naming the field)
        never keeps the model from loading or running.
        """
        if self._metadata is _UNREAD:
            from .metadata import read_metadata

            self._metadata = read_metadata(self._model.content)
        return self._metadata  # type: ignore[return-value]


# -- helpers -------------------------------------------------------------------


def _batched(view: _View, values: list[np.ndarray], run_one: Callable[[list[Any]], dict[str, np.ndarray]]
             ) -> dict[str, np.ndarray]:
    """Run a batch of N on a batch-1 model as N calls of ``run_one`` and stack the outputs."""
    sizes = {a.shape[0] for inp, a in zip(view.inputs, values) if inp.batch_one and a.ndim}
    if len(sizes) != 1:
        raise InputError(f"Inputs {view.names()} have different batch sizes {sorted(sizes)}; use one batch size.")
    (n,) = sizes
    per_output: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in view.outputs}
    for i in range(n):
        outs = run_one([a[i : i + 1] if inp.batch_one and a.ndim else a for inp, a in zip(view.inputs, values)])
        for name, out in outs.items():
            per_output[name].append(out)
    return {
        name: np.concatenate(outs) if outs[0].ndim and outs[0].shape[0] == 1 else np.stack(outs)
        for name, outs in per_output.items()
    }


#: Operators that keep state in the interpreter between calls (see Interpreter.keeps_state).
_STATE_OPS = ("VAR_HANDLE", "ASSIGN_VARIABLE", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
              "RNN", "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "SVDF")


def kept_state(summary: ModelSummary, main_ops: Callable[[], Sequence[Mapping[str, Any]]]) -> tuple[str, ...]:
    """The operators through which a model keeps state from one call to the next.

    Resource variables (``VAR_HANDLE``, ``ASSIGN_VARIABLE``: streaming models such as
    microWakeWord's) and the recurrent kernels that read and write their state in variable
    tensors (``LSTM``, ``UNIDIRECTIONAL_SEQUENCE_LSTM``, ``SVDF``, ...). Empty when the
    outputs depend on the inputs alone. A model that keeps state gives other outputs for the
    same input as calls go by; ``reset_all_variables()`` starts it again.

    Args:
        summary: The model's summary (operator counts over every subgraph).
        main_ops: Lists the main subgraph's operators, as ``_get_ops_details()`` does
            (called only for a model with one of these operators).
    """
    counts = summary.operator_counts
    found = [op for op in _STATE_OPS if op in counts]
    if not found:
        return ()
    ops = main_ops()
    if "LSTM" in found and sum(d["op_name"] == "LSTM" and len(d["inputs"]) <= 5 for d in ops) == counts["LSTM"]:
        found.remove("LSTM")  # LSTM's basic kernel (5 inputs) takes and returns its state as plain tensors
    if "ASSIGN_VARIABLE" in found and "CALL_ONCE" in counts and not any(
            d["op_name"] == "ASSIGN_VARIABLE" for d in ops):
        # Variables written only by the initializer that CALL_ONCE runs once: read-only after it.
        found = [op for op in found if op not in ("VAR_HANDLE", "ASSIGN_VARIABLE")]
    return tuple(found)


def _check_options(backend: Any, options: Mapping[str, Any]) -> None:
    """TypeError for a keyword option neither tfedge.Interpreter nor the backend's Interpreter takes."""
    unknown = backend.unknown_options(options)
    if not unknown:
        return
    own = [name for name, p in inspect.signature(Interpreter.__init__).parameters.items()
           if p.kind is p.KEYWORD_ONLY]
    shared = {"model_path", "model_content", "num_threads", "experimental_delegates"}
    theirs = [name for name in backend.option_names() or () if name not in shared]
    raise TypeError(f"tfedge.Interpreter got an unknown keyword argument {unknown[0]!r}. It takes "
                    f"{', '.join(own)}, and the options of {backend.label}'s Interpreter: {', '.join(theirs)}.")


def _views_of(runtime: backends.Runtime, summary: ModelSummary | None) -> dict[str | None, _View]:
    """Every signature's tensors, looked up once in subgraph order; None is the default view."""

    def order(subgraph: int, kind: str) -> Sequence[int] | None:
        if summary is not None and subgraph < len(summary.subgraph_inputs):
            return summary.subgraph_inputs[subgraph] if kind == "inputs" else summary.subgraph_outputs[subgraph]
        if subgraph == 0:
            details = runtime.input_details() if kind == "inputs" else runtime.output_details()
            return [int(d["index"]) for d in details]
        return None  # the subgraph's own order is unknown

    views: dict[str | None, _View] = {}
    for key, sig in runtime.signature_defs().items():
        subgraph = runtime.subgraph_of(key)
        ins, in_known = _in_order(sig["inputs"], order(subgraph, "inputs"))
        outs, _ = _in_order(sig["outputs"], order(subgraph, "outputs"))
        inputs = [_spec_from(runtime.tensor_details(i, subgraph), n) for n, i in ins]
        outputs = [_spec_from(runtime.tensor_details(i, subgraph), n) for n, i in outs]
        views[key] = _View(key, subgraph, inputs, outputs, in_known)
    if len(views) == 1:
        views[None] = next(iter(views.values()))
    else:
        inputs = [_spec_from(d, d["name"]) for d in runtime.input_details()]
        outputs = [_spec_from(d, d["name"]) for d in runtime.output_details()]
        views[None] = _View(None, 0, _unique(inputs, "input"), _unique(outputs, "output"), True)
    return views


def _resize_error(exc: BaseException, shapes: Sequence[tuple[_Input, tuple[int, ...]]],
                  backend: backends.Backend) -> InputError:
    """The InputError for shapes the model cannot take."""
    if len(shapes) == 1:
        name = f"Input {shapes[0][0].spec.name!r} could not be resized to {_shape_str(shapes[0][1])}"
    elif shapes:
        what = ", ".join(f"{inp.spec.name!r} to {_shape_str(shape)}" for inp, shape in shapes)
        name = f"Inputs could not be resized ({what})"
    else:
        name = "The model's tensors could not be allocated"
    error = translate(exc, Stage.RESIZE, backend=backend, name=name)
    return error if isinstance(error, InputError) else InputError(str(error))


_UNREAD = object()  # Interpreter.metadata before its first read


class _Retry(Exception):
    """A delegate was dropped and the interpreter rebuilt: run the call again."""


def _in_order(named: Mapping[str, int], order: Sequence[int] | None) -> tuple[list[tuple[str, int]], bool]:
    """A signature's ``{name: tensor}`` in the subgraph's order; False if that order is unknown."""
    items = list(named.items())
    if order is None:
        return items, False
    position = {t: i for i, t in enumerate(order)}
    if any(t not in position for _, t in items):
        return items, False
    return sorted(items, key=lambda item: position[item[1]]), True


def _spec_from(details: dict[str, Any], name: str) -> TensorSpec:
    """TensorSpec from a backend's tensor details dict."""
    shape = tuple(int(d) for d in details["shape"])
    signature = details.get("shape_signature")
    return TensorSpec(
        name=name,
        tensor_name=details["name"],
        index=int(details["index"]),
        shape=shape,
        shape_signature=tuple(int(d) for d in signature) if signature is not None else shape,
        dtype=np.dtype(details["dtype"]),
        quantization=QuantParams.from_details(details),
    )


def _unique(specs: list[TensorSpec], prefix: str) -> list[TensorSpec]:
    """Give every spec a distinct, non-empty name (models may repeat or omit names)."""
    seen: set[str] = set()
    result = []
    for i, spec in enumerate(specs):
        name = spec.name or f"{prefix}_{i}"
        if name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        result.append(spec if name == spec.name else replace(spec, name=name))
    return result


def _fits(signature: Sequence[int], shape: Sequence[int]) -> bool:
    """True when ``shape`` matches ``signature`` (``-1`` matches any size)."""
    return len(shape) == len(signature) and all(s < 0 or s == d for s, d in zip(signature, shape))


def _arrange(view: _View, inputs: Inputs) -> list[Any]:
    """Inputs in the view's order, from an array, a sequence or a mapping; InputError if they do not fit."""
    inps = view.inputs
    if isinstance(inputs, Mapping):
        arranged: list[Any] = [None] * len(inps)
        keys: list[Any] = [None] * len(inps)
        for key, value in inputs.items():
            inp = view.lookup.get(key)
            if inp is None:
                raise InputError(f"Unknown input {key!r}. Available: {view.names()}.")
            position = inps.index(inp)
            if keys[position] is not None:
                raise InputError(f"Input {inp.spec.name!r} is given twice: as {keys[position]!r} and as {key!r}.")
            arranged[position], keys[position] = value, key
        missing = [inp.spec.name for inp, v in zip(inps, arranged) if v is None]
        if missing:
            raise InputError(f"Missing input(s): {', '.join(repr(m) for m in missing)}.")
        return arranged
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != len(inps):
            raise InputError(
                f"The model takes {len(inps)} input(s) ({view.names()}); got a sequence of {len(inputs)}. "
                "Pass one array per input, in order, or a mapping by name."
            )
        if not view.ordered:
            raise InputError(
                f"Signature {view.key!r} takes {len(inps)} inputs ({view.names()}) whose order is unknown "
                "without verifying the model (verify=False). Pass a mapping by name."
            )
        return list(inputs)
    if len(inps) != 1:
        raise InputError(
            f"The model takes {len(inps)} inputs ({view.names()}); got one array. "
            "Pass a sequence in that order or a mapping by name."
        )
    return [inputs]


def _coerce(inp: _Input, value: Any, raw: bool) -> np.ndarray:
    """``value`` as an array of the input's dtype: quantized, cast, or InputError."""
    if type(value) is not np.ndarray:
        value = np.asarray(value)
    dtype = inp.dtype
    if value.dtype == dtype:
        return value
    kind = value.dtype.kind
    if dtype.kind in "SO" and kind in "SUO":
        return value  # string tensors: the backend encodes bytes, str and object arrays
    if inp.quant is not None and not raw and kind == "f":
        if np.isnan(value).any():
            raise InputError(f"Input {inp.spec.name!r} contains NaN, which cannot be quantized.")
        return quantize(value, inp.quant, dtype)
    if kind == "f" and dtype.kind == "f":
        return value.astype(dtype)
    if kind in "iub" and dtype.kind in "iu" and value.size:
        info = np.iinfo(dtype)
        low, high = value.min(), value.max()
        if info.min <= low and high <= info.max:
            return value.astype(dtype)
        raise InputError(
            f"Input {inp.spec.name!r} expects {dtype.name} values in [{info.min}, {info.max}], "
            f"got values in [{low}, {high}]."
        )
    raise _shape_error(inp.spec, value)


def _shape_error(spec: TensorSpec, value: np.ndarray, given: Any = None) -> InputError:
    """The message for an input that does not fit: expected spec, what was given (before any cast)."""
    dtype = value.dtype if given is None else np.asarray(given).dtype
    hint = ""
    if spec.dtype in QUANTIZED_DTYPES and spec.quantization is not None and dtype.kind == "f":
        hint = " (float values are quantized automatically)"
    return InputError(
        f"Input {spec.name!r} expects shape {spec.describe()}{hint}, "
        f"got {_shape_str(value.shape)} {dtype.name}."
    )

