"""``Interpreter``: load a .tflite model and run it by name.

A drop-in for ``tflite_runtime.interpreter.Interpreter`` (every public method behaves
the same, with errors mapped to :mod:`tfedge.errors`), plus :meth:`Interpreter.run`:
one call that takes inputs by name or position, quantizes and resizes them as the
model needs, and returns owned float outputs by name.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

import numpy as np

from . import _backend
from . import delegates as _delegates
from .errors import DelegateError, InputError, InvokeError, ModelError, SignatureError
from .quant import QUANTIZED_DTYPES, QuantParams, dequantize, quantize
from .verify import ModelSummary, verify_model

__all__ = ["Interpreter", "TensorSpec"]

ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
# typing aliases evaluated at import time: collections.abc types are not subscriptable on 3.8.
Inputs = Union[np.ndarray, "Sequence[Any]", "Mapping[str, Any]", Any]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model, as :meth:`Interpreter.run` addresses it.

    Attributes:
        name: The key ``run()`` uses: the signature key, or the tensor name.
        tensor_name: The tensor's own name in the model.
        index: The tensor index (for ``set_tensor``/``get_tensor``).
        shape: The current shape.
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


class _Slot:
    """Mutable per-input state on the hot path: looked up once, at load time."""

    __slots__ = ("spec", "index", "dtype", "shape", "quant", "batch_one")

    def __init__(self, spec: TensorSpec) -> None:
        self.spec = spec
        self.index = spec.index
        self.dtype = spec.dtype
        self.shape = spec.shape
        self.quant = spec.quantization if spec.dtype in QUANTIZED_DTYPES else None
        # A static leading 1 is a fixed batch: larger batches run one sample at a time.
        self.batch_one = len(spec.shape_signature) > 0 and spec.shape_signature[0] == 1


class _View:
    """The inputs and outputs of one signature (or of the main subgraph)."""

    __slots__ = ("key", "subgraph", "slots", "lookup", "outputs", "input_specs", "output_specs", "single", "plain")

    def __init__(
        self, key: str | None, subgraph: int, inputs: list[TensorSpec], outputs: list[TensorSpec]
    ) -> None:
        self.key = key
        self.subgraph = subgraph
        self.input_specs = tuple(inputs)
        self.output_specs = tuple(outputs)
        self.slots = [_Slot(s) for s in inputs]
        self.lookup: dict[str, _Slot] = {}
        for slot in self.slots:
            self.lookup.setdefault(slot.spec.tensor_name, slot)
        for slot in self.slots:  # the public name wins over a clashing tensor name
            self.lookup[slot.spec.name] = slot
        deq = [(s.name, s.index, s.quantization if s.dtype in QUANTIZED_DTYPES else None) for s in outputs]
        self.outputs = tuple(deq)
        # For the hot path: the tensor index of a lone input, and (name, index) of a
        # lone output that needs no dequantization.
        self.single = self.slots[0].index if len(self.slots) == 1 else None
        self.plain = (deq[0][0], deq[0][1]) if len(deq) == 1 and deq[0][2] is None else None


class Interpreter:
    """Runs a TFLite model with one backend.

    A drop-in for ``tflite_runtime.interpreter.Interpreter``: ``allocate_tensors``,
    ``get_input_details``, ``set_tensor``, ``invoke``, ``get_tensor`` and the rest
    behave as the backend's, with errors mapped to :mod:`tfedge.errors`. New code
    should call :meth:`run` instead.

    Args:
        model: A path (``str`` or ``PathLike``) to a .tflite file, or its bytes.
        model_path: The backend's keyword for a path (drop-in compatibility).
        model_content: The backend's keyword for bytes (drop-in compatibility).
        backend: ``"ai_edge_litert"``, ``"tflite_runtime"`` or ``"tensorflow"``. By
            default ``$TFEDGE_BACKEND``, else the first of ai_edge_litert and
            tflite_runtime that imports (tensorflow only when named, or when the
            process already imported it and ai_edge_litert is missing).
        num_threads: Threads for the CPU kernels. None means the number of CPU cores
            this process may use (the backends' own default is 1).
        experimental_delegates: Delegates from ``load_delegate``, as the backend takes.
        verify: Check the file's structure (:func:`tfedge.verify.verify_model`) before
            the backend sees it, so a corrupt file raises ModelError instead of crashing
            the process. It costs a small fraction of the load time; False skips it.
        probe: First load the model and run one inference on zero inputs in a child
            process (see :mod:`tfedge.isolate`), so a model that crashes or hangs the
            backend raises ModelError instead. The verdict is cached by the file's
            SHA-256, so only the first load of a file pays for it.
        probe_timeout: Seconds the probe may take.
        delegates: Ordered preference list of delegates: ``"xnnpack"``, ``"gpu"``,
            ``"edgetpu"``, ``"none"``, a delegate library's path, or ``(entry,
            {options})`` (see :mod:`tfedge.delegates`). Each that loads and prepares
            takes the nodes it supports; the rest run on the CPU. A delegate that is
            missing or fails (at load, prepare, or while running) is dropped with a
            :class:`~tfedge.delegates.DelegateFallbackWarning`. Default
            ``("xnnpack",)``, the backends' own default.
        strict: Raise DelegateError instead of falling back.
        experimental_delegates: Delegates from ``load_delegate``, as the backend
            takes; they go first in the preference list.
        **backend_options: Passed to the backend's Interpreter unchanged.

    Raises:
        BackendNotFoundError: no backend, or the named one cannot be imported.
        ModelError: the model is missing, empty, not TFLite, corrupt, needs ops the
            backend lacks, or cannot be allocated.
        DelegateError: with ``strict=True``, a delegate could not be used.
        ValueError: ``delegates`` has an entry that is no delegate.

    Thread safety: one Interpreter may be shared by many threads. Every call that
    touches the backend's interpreter holds one lock, so calls run one at a time and
    never mix inputs or outputs; for parallel throughput use
    :class:`~tfedge.InterpreterPool`.
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
        probe: bool = False,
        probe_timeout: float = 10.0,
        **backend_options: Any,
    ) -> None:
        given = [m for m in (model, model_path, model_content) if m is not None]
        if len(given) != 1:
            raise TypeError("Pass exactly one model: a path or bytes (model, model_path or model_content).")
        if num_threads is None:
            num_threads = _default_threads()
        elif isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a whole number >= 1, got {num_threads!r}.")
        self._lock = threading.Lock()
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._backend = _backend.get_backend(backend)
        self._content, self._source = _read_model(given[0])
        self._summary_cache: ModelSummary | None = None
        if verify:
            self._summary_cache = self._verify()
        if probe:
            from .isolate import probe_model  # only when asked: it brings multiprocessing

            verdict = probe_model(
                self._content, backend=self._backend.name, backend_version=self._backend.version,
                timeout=probe_timeout,
            )
            if not verdict.ok:
                raise verdict.error(self._source)
        self.num_threads = num_threads
        self._strict = bool(strict)
        self._backend_options = backend_options
        self._runners: weakref.WeakSet[SignatureRunner] = weakref.WeakSet()
        self._build(_delegates.resolve(delegates, experimental_delegates), stacklevel=2)
        self._views = self._build_views()
        self._default = self._views[None]
        hot = self._hot_run()
        if hot is not None:
            self.run = hot

    # -- load time -------------------------------------------------------------

    def _verify(self) -> ModelSummary:
        """verify_model on the loaded bytes, with the file named in the message."""
        try:
            return verify_model(self._content)
        except ModelError as exc:
            raise ModelError(f"{self._source}: {exc}") from exc

    @property
    def summary(self) -> ModelSummary:
        """What the model contains: operators, custom and flex ops, signatures."""
        if self._summary_cache is None:
            self._summary_cache = self._verify()
        return self._summary_cache

    def _build(self, chain: tuple[_delegates.DelegateSpec, ...], stacklevel: int) -> None:
        """(Re)build the backend interpreter from a delegate list; ``stacklevel``: frames up to the user's."""
        try:
            built = _delegates.build(
                self._backend,
                self._content,
                num_threads=self.num_threads,
                chain=chain,
                strict=self._strict,
                options=self._backend_options,
                stacklevel=stacklevel + 1,
            )
        except DelegateError:
            raise
        except (ValueError, RuntimeError, MemoryError) as exc:
            # MemoryError: std::bad_alloc for a tensor a damaged file declares huge.
            raise _backend.map_load_error(exc, self._backend, self._source, self._summary_cache) from exc
        self._built = built
        self._raw = built.raw
        # The hot path reads the current backend interpreter from here, so a rebuild
        # reaches closures made before it.
        cell = getattr(self, "_cell", None)
        if cell is None:
            self._cell = [built.raw]
        else:
            cell[0] = built.raw

    def _fall_back(self, exc: BaseException) -> bool:
        """Drop the delegate ``exc`` blames and rebuild without it (lock held); False if none is to blame."""
        culprit = _delegates.blame(exc, self._built)
        if culprit is None:
            return False
        remaining = tuple(s for s in self._built.chain if s != culprit)
        _delegates.fall_back(
            culprit, f"the model failed while running under it ({_first_line(exc).rstrip('.')})", remaining,
            strict=self._strict, stacklevel=3,
        )
        self._build(remaining, stacklevel=3)
        for view in self._views.values():
            for slot in view.slots:
                slot.shape = slot.spec.shape
        return True

    def _build_views(self) -> dict[str | None, _View]:
        """Look up every signature's tensors once; None is the default view."""
        raw = self._raw
        views: dict[str | None, _View] = {}
        for key, sig in raw._get_full_signature_list().items():
            subgraph = raw._interpreter.GetSubgraphIndexFromSignature(key)
            inputs = [self._spec(n, i, subgraph) for n, i in sig["inputs"].items()]
            outputs = [self._spec(n, i, subgraph) for n, i in sig["outputs"].items()]
            views[key] = _View(key, subgraph, inputs, outputs)
        if len(views) == 1:
            views[None] = next(iter(views.values()))
        else:
            inputs = [_spec_from(d, d["name"]) for d in raw.get_input_details()]
            outputs = [_spec_from(d, d["name"]) for d in raw.get_output_details()]
            views[None] = _View(None, 0, _unique(inputs, "input"), _unique(outputs, "output"))
        return views

    def _spec(self, name: str, index: int, subgraph: int) -> TensorSpec:
        """TensorSpec of tensor ``index`` in ``subgraph`` under the public ``name``."""
        return _spec_from(self._raw._get_tensor_details(index, subgraph), name)

    # -- the fast call ---------------------------------------------------------

    def run(
        self, inputs: Inputs, *, signature: str | None = None, raw: bool = False
    ) -> dict[str, np.ndarray]:
        """Run the model and return its outputs by name.

        Args:
            inputs: One array (single-input models), a sequence in input order, or a
                mapping by input name (signature key or tensor name).
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
        arrays = _arrange(view, inputs)
        with self._lock:
            while True:
                try:
                    return self._invoke(view, arrays, raw)
                except (InvokeError, InputError) as exc:
                    # A delegate that fails on these inputs is dropped and the call retried.
                    if exc.__cause__ is None or not self._fall_back(exc.__cause__):
                        raise

    def __call__(self, inputs: Inputs, *, signature: str | None = None, raw: bool = False) -> dict[str, np.ndarray]:
        """Same as :meth:`run`."""
        return self.run(inputs, signature=signature, raw=raw)

    def _hot_run(self) -> Any:
        """A ``run`` specialised, once at load time, for one array on a one-input model.

        Installed as the instance's ``run``, it shadows the general method and skips
        its lookups. SetTensor checks dtype and shape itself, so the common case costs
        no checks here; whatever SetTensor refuses (a float for a quantized input, a
        new shape, float64 for float32) falls back to the general path, which fixes
        or explains it. It holds the Interpreter weakly so it makes no cycle.
        """
        view = self._default
        if view.single is None:
            return None
        cell, acquire, release = self._cell, self._acquire, self._release
        index, subgraph, plain = view.single, view.subgraph, view.plain
        outputs = self._outputs
        general = Interpreter.run
        me = weakref.ref(self)

        def run(inputs: Inputs, *, signature: str | None = None, raw: bool = False) -> dict[str, np.ndarray]:
            if signature is not None or raw or type(inputs) is not np.ndarray:
                return general(me(), inputs, signature=signature, raw=raw)
            acquire()
            try:
                # Only looked up with the lock held, and dropped before it is released:
                # a reference to the backend's wrapper held by a waiting thread would make
                # the backend's reallocating calls refuse to run.
                wrapper = cell[0]._interpreter
                try:
                    wrapper.SetTensor(index, inputs, subgraph)
                except ValueError:
                    pass
                else:
                    try:
                        wrapper.Invoke(subgraph)
                    except RuntimeError as exc:
                        wrapper = None
                        if not me()._fall_back(exc):
                            raise _invoke_error(exc) from exc
                    else:
                        if plain is not None:
                            try:
                                return {plain[0]: wrapper.GetTensor(plain[1], subgraph)}
                            except ValueError:
                                pass  # the general path reads it again and explains
                        return outputs(view, wrapper, False)
                wrapper = None
            finally:
                release()
            return general(me(), inputs)

        run.__doc__ = Interpreter.run.__doc__
        return run


    def _invoke(self, view: _View, arrays: list[Any], raw: bool) -> dict[str, np.ndarray]:
        """Set the inputs, invoke and read the outputs (lock held)."""
        values = []
        for slot, value in zip(view.slots, arrays):
            value = _coerce(slot, value, raw)
            if value.shape != slot.shape and self._reshape(view, slot, value):
                return self._invoke_batched(view, arrays, raw)
            values.append(value)
        # Every input is coerced and every resize done before the first is set: a resize
        # reallocates and would drop inputs set earlier. The backend's Python object, not
        # its C++ wrapper, is kept in this frame: a frame kept by a traceback would
        # otherwise count as a numpy view (_check_no_views).
        backend_interp = self._raw
        subgraph = view.subgraph
        for slot, value in zip(view.slots, values):
            backend_interp._interpreter.SetTensor(slot.index, value, subgraph)
        try:
            backend_interp._interpreter.Invoke(subgraph)
        except RuntimeError as exc:
            raise _invoke_error(exc) from exc
        return self._outputs(view, backend_interp._interpreter, raw)

    @staticmethod
    def _outputs(view: _View, wrapper: Any, raw: bool) -> dict[str, np.ndarray]:
        """Read (and dequantize unless ``raw``) every output of ``view``."""
        result = {}
        for name, index, quant in view.outputs:
            try:
                out = wrapper.GetTensor(index, view.subgraph)
            except ValueError as exc:
                raise InvokeError(f"Output {name!r} cannot be read: {_first_line(exc)}") from exc
            result[name] = out if quant is None or raw else dequantize(out, quant)
        return result

    def _reshape(self, view: _View, slot: _Slot, value: np.ndarray) -> bool:
        """Resize ``slot`` to fit ``value``; True when it must run as N batch-1 calls instead."""
        signature = slot.spec.shape_signature
        fits = len(value.shape) == len(signature) and all(
            s < 0 or s == d for s, d in zip(signature, value.shape)
        )
        if fits:
            self._check_no_views("run() with a new input shape")
            backend_interp = self._raw  # not its wrapper: see _invoke
            try:
                backend_interp._interpreter.ResizeInputTensor(
                    slot.index, np.array(value.shape, np.int32), False, view.subgraph
                )
                backend_interp._interpreter.AllocateTensors(view.subgraph)
            except (ValueError, RuntimeError) as exc:
                raise InputError(
                    f"Input {slot.spec.name!r} could not be resized to {_shape_str(value.shape)}: "
                    f"{str(exc).strip().splitlines()[0]}"
                ) from exc
            slot.shape = value.shape
            return False
        if slot.batch_one and value.ndim == len(signature) and value.shape[0] > 1:
            if all(s < 0 or s == d for s, d in zip(signature[1:], value.shape[1:])):
                return True
        raise _shape_error(slot.spec, value)

    def _invoke_batched(self, view: _View, arrays: list[Any], raw: bool) -> dict[str, np.ndarray]:
        """Run a batch of N on a batch-1 model as N calls and stack the outputs (lock held)."""
        arrays = [np.asarray(a) for a in arrays]
        sizes = {a.shape[0] for s, a in zip(view.slots, arrays) if s.batch_one and a.ndim}
        if len(sizes) != 1:
            names = ", ".join(repr(s.spec.name) for s in view.slots)
            raise InputError(f"Inputs {names} have different batch sizes {sorted(sizes)}; use one batch size.")
        (n,) = sizes
        per_output: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in view.outputs}
        for i in range(n):
            sample = [a[i : i + 1] if s.batch_one and a.ndim else a for s, a in zip(view.slots, arrays)]
            for name, out in self._invoke(view, sample, raw).items():
                per_output[name].append(out)
        return {
            name: np.concatenate(outs) if outs[0].ndim and outs[0].shape[0] == 1 else np.stack(outs)
            for name, outs in per_output.items()
        }

    # -- what the model looks like ---------------------------------------------

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
        return tuple(spec.label for spec, _ in self._built.applied)

    @property
    def placement(self) -> dict[str, int]:
        """Nodes of the main subgraph each delegate runs, and the rest under ``"cpu"``.

        For example ``{"xnnpack": 64, "cpu": 1}``; a delegate that loaded but took no
        node shows 0.
        """
        return dict(self._built.placement)

    @property
    def signatures(self) -> tuple[str, ...]:
        """The model's signature keys."""
        return tuple(k for k in self._views if k is not None)

    def input_specs(self, signature: str | None = None) -> tuple[TensorSpec, ...]:
        """The inputs ``run()`` takes, in order."""
        return self._view(signature).input_specs

    def output_specs(self, signature: str | None = None) -> tuple[TensorSpec, ...]:
        """The outputs ``run()`` returns, in order."""
        return self._view(signature).output_specs

    @property
    def model_content(self) -> bytes:
        """The model's bytes, as loaded."""
        return bytes(self._content)

    def _view(self, signature: str | None) -> _View:
        """The view for ``signature``, or SignatureError."""
        view = self._views.get(signature)
        if view is None:
            raise self._unknown_signature(signature)
        return view

    def _unknown_signature(self, signature: Any) -> SignatureError:
        """SignatureError listing the model's signatures."""
        known = ", ".join(repr(k) for k in self.signatures) or "none (the model has no signatures)"
        return SignatureError(f"Unknown signature {signature!r}. Available: {known}.")

    def __repr__(self) -> str:
        used = ",".join(self.delegates_used) or "none"
        return f"<tfedge.Interpreter {self._source} backend={self.backend} threads={self.num_threads} delegates={used}>"

    # -- drop-in methods of the backend's Interpreter ----------------------------
    # All hold the lock: a set_tensor or resize from one thread must not land between
    # another thread's inputs and its invoke. The ones that may move tensor memory call
    # the backend's wrapper directly after tfedge's own check (_check_no_views): the
    # backends' check counts every reference to their wrapper, including the ones
    # tfedge's signature runners hold, and would refuse with "There is at least 1
    # reference to internal data" although no numpy view exists.

    def _check_no_views(self, what: str) -> None:
        """InvokeError if numpy views from ``tensor()`` still point into tensor memory (lock held)."""
        wrapper = self._raw._interpreter
        runners = sum(1 for r in self._runners if getattr(r._runner, "_interpreter_wrapper", None) is wrapper)
        # References: self._raw's attribute, the local name, getrefcount's argument.
        views = sys.getrefcount(wrapper) - 3 - runners
        del wrapper  # a kept traceback would otherwise hold it, and count as a view later
        if views > 0:
            raise InvokeError(
                f"{what} cannot run while {views} numpy array(s) from tensor() still point into the "
                "interpreter's memory, which it may move. Delete those arrays (keep the function "
                "tensor() returns and call it again afterwards), or use get_tensor(), which copies."
            )

    def allocate_tensors(self) -> None:
        """Allocate tensor memory (done at load already; kept for drop-in use)."""
        with self._lock:
            self._check_no_views("allocate_tensors()")
            try:
                self._raw._interpreter.AllocateTensors()
            except (ValueError, RuntimeError) as exc:
                raise InvokeError(f"allocate_tensors failed: {_first_line(exc)}") from exc
            for view in self._views.values():
                for slot in view.slots:
                    slot.shape = tuple(int(d) for d in self._raw._interpreter.TensorSize(slot.index, view.subgraph))

    def get_input_details(self) -> list[dict[str, Any]]:
        """The backend's input details of the main subgraph."""
        with self._lock:
            return self._raw.get_input_details()

    def get_output_details(self) -> list[dict[str, Any]]:
        """The backend's output details of the main subgraph."""
        with self._lock:
            return self._raw.get_output_details()

    def get_tensor_details(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """The backend's details of every tensor."""
        with self._lock:
            return self._raw.get_tensor_details(*args, **kwargs)

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        """Copy ``value`` into tensor ``tensor_index``."""
        with self._lock:
            try:
                self._raw.set_tensor(tensor_index, value)
            except ValueError as exc:
                raise InputError(f"set_tensor({tensor_index}) failed: {_first_line(exc)}") from exc

    def get_tensor(self, tensor_index: int, *args: Any) -> np.ndarray:
        """A copy of tensor ``tensor_index``."""
        with self._lock:
            try:
                return self._raw.get_tensor(tensor_index, *args)
            except ValueError as exc:
                raise InvokeError(f"get_tensor({tensor_index}) failed: {_first_line(exc)}") from exc

    def tensor(self, tensor_index: int) -> Any:
        """A function returning a numpy view of tensor ``tensor_index`` (no copy, no lock)."""
        return self._raw.tensor(tensor_index)

    def invoke(self) -> None:
        """Run the main subgraph on the tensors set with ``set_tensor``.

        If a delegate fails here, it is dropped as in :meth:`run`: the inputs are
        carried over to the rebuilt interpreter and the call is retried.
        """
        with self._lock:
            self._check_no_views("invoke()")
            while True:
                try:
                    self._raw._interpreter.Invoke()
                    return
                except (ValueError, RuntimeError) as exc:
                    inputs = [(d["index"], self._raw.get_tensor(d["index"])) for d in self._raw.get_input_details()]
                    if not self._fall_back(exc):
                        raise _invoke_error(exc) from exc
                backend_interp = self._raw  # not its wrapper: see _invoke
                for index, value in inputs:
                    if tuple(backend_interp._interpreter.TensorSize(index, 0)) != value.shape:
                        backend_interp._interpreter.ResizeInputTensor(index, np.array(value.shape, np.int32), False, 0)
                backend_interp._interpreter.AllocateTensors()
                for index, value in inputs:
                    backend_interp._interpreter.SetTensor(index, value, 0)

    def resize_tensor_input(self, input_index: int, tensor_size: Any, strict: bool = False) -> None:
        """Resize an input tensor; call ``allocate_tensors()`` afterwards."""
        with self._lock:
            self._check_no_views("resize_tensor_input()")
            try:
                self._raw._interpreter.ResizeInputTensor(input_index, np.array(tensor_size, dtype=np.int32), strict, 0)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise InputError(f"resize_tensor_input({input_index}) failed: {_first_line(exc)}") from exc

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        """``{signature: {"inputs": [...], "outputs": [...]}}``."""
        return self._raw.get_signature_list()

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        """The backend's runner for one signature, with errors mapped, sharing this Interpreter's lock."""
        if signature_key is None:
            if len(self.signatures) != 1:
                raise self._unknown_signature(signature_key)
            signature_key = self.signatures[0]
        if signature_key not in self._views:
            raise self._unknown_signature(signature_key)
        with self._lock:
            runner = SignatureRunner(self._raw.get_signature_runner(signature_key), self._lock)
        self._runners.add(runner)
        return runner

    def reset_all_variables(self) -> None:
        """Reset variable tensors (stateful models) to their initial values."""
        with self._lock:
            self._raw.reset_all_variables()

    def num_subgraphs(self) -> int:
        """Number of subgraphs in the model."""
        return int(self.summary.num_subgraphs)

    @property
    def metadata(self) -> Any:
        """The model's TFLite Metadata (:class:`tfedge.metadata.ModelMetadata`), or None.

        Read on first access, so damaged metadata (a ``ModelError`` naming the field)
        never keeps the model from loading or running.
        """
        cached = self.__dict__.get("_metadata", self)
        if cached is self:
            from .metadata import read_metadata

            cached = self.__dict__["_metadata"] = read_metadata(self._content)
        return cached


class SignatureRunner:
    """The backend's SignatureRunner, with its errors mapped to tfedge's.

    It holds its Interpreter's lock while it runs, so it is as thread-safe as
    :meth:`Interpreter.run`.
    """

    def __init__(self, runner: Any, lock: Any = None) -> None:
        self._runner = runner
        self._lock = lock if lock is not None else threading.Lock()

    def __call__(self, **kwargs: Any) -> dict[str, np.ndarray]:
        with self._lock:
            try:
                return self._runner(**kwargs)
            except ValueError as exc:
                raise InputError(_first_line(exc)) from exc
            except RuntimeError as exc:
                raise _invoke_error(exc) from exc

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        """Input details by signature key."""
        return self._runner.get_input_details()

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        """Output details by signature key."""
        return self._runner.get_output_details()


# -- helpers -------------------------------------------------------------------


def _read_model(model: ModelSource) -> tuple[bytes, str]:
    """The model's bytes and how to name it in messages; ModelError if unreadable."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, source = bytes(model), "The model"
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        source = f"Model file {path!r}"
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise ModelError(f"{source} does not exist. Check the path.") from exc
        except IsADirectoryError as exc:
            raise ModelError(
                f"{source} is a directory, not a .tflite file. A SavedModel must be converted "
                "first: tfedge-convert DIR -o model.tflite."
            ) from exc
        except OSError as exc:
            raise ModelError(f"{source} cannot be read: {exc.strerror or exc}.") from exc
    else:
        raise TypeError(f"model must be a path or bytes, got {type(model).__name__}.")
    if not data:
        raise ModelError(f"{source} is empty (0 bytes): the download or copy did not finish. Copy it again.")
    return data, source


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



def _arrange(view: _View, inputs: Inputs) -> list[Any]:
    """Inputs in the view's order, from an array, a sequence or a mapping."""
    slots = view.slots
    if isinstance(inputs, Mapping):
        arranged: list[Any] = [None] * len(slots)
        for key, value in inputs.items():
            slot = view.lookup.get(key)
            if slot is None:
                known = ", ".join(repr(s.spec.name) for s in slots) or "none"
                raise InputError(f"Unknown input {key!r}. Available: {known}.")
            arranged[slots.index(slot)] = value
        missing = [s.spec.name for s, v in zip(slots, arranged) if v is None]
        if missing:
            raise InputError(f"Missing input(s): {', '.join(repr(m) for m in missing)}.")
        return arranged
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != len(slots):
            names = ", ".join(repr(s.spec.name) for s in slots) or "none"
            raise InputError(
                f"The model takes {len(slots)} input(s) ({names}); got a sequence of {len(inputs)}. "
                "Pass one array per input, in order, or a mapping by name."
            )
        return list(inputs)
    if len(slots) != 1:
        names = ", ".join(repr(s.spec.name) for s in slots) or "none"
        raise InputError(
            f"The model takes {len(slots)} inputs ({names}); got one array. "
            "Pass a sequence in that order or a mapping by name."
        )
    return [inputs]


def _coerce(slot: _Slot, value: Any, raw: bool) -> np.ndarray:
    """``value`` as an array of the slot's dtype: quantized, cast, or InputError."""
    if type(value) is not np.ndarray:
        value = np.asarray(value)
    dtype = slot.dtype
    if value.dtype == dtype:
        return value
    kind = value.dtype.kind
    if dtype.kind in "SO" and kind in "SUO":
        return value  # string tensors: the backend encodes bytes, str and object arrays
    if slot.quant is not None and not raw and kind == "f":
        if np.isnan(value).any():
            raise InputError(f"Input {slot.spec.name!r} contains NaN, which cannot be quantized.")
        return quantize(value, slot.quant, dtype)
    if kind == "f" and dtype.kind == "f":
        return value.astype(dtype)
    if kind in "iub" and dtype.kind in "iu" and value.size:
        info = np.iinfo(dtype)
        low, high = value.min(), value.max()
        if info.min <= low and high <= info.max:
            return value.astype(dtype)
        raise InputError(
            f"Input {slot.spec.name!r} expects {dtype.name} values in [{info.min}, {info.max}], "
            f"got values in [{low}, {high}]."
        )
    raise _shape_error(slot.spec, value)


def _shape_error(spec: TensorSpec, value: np.ndarray) -> InputError:
    """The message for an input that does not fit: expected spec, what was given."""
    hint = ""
    if spec.dtype in QUANTIZED_DTYPES and spec.quantization is not None and value.dtype.kind == "f":
        hint = " (float values are quantized automatically)"
    return InputError(
        f"Input {spec.name!r} expects shape {spec.describe()}{hint}, "
        f"got {_shape_str(value.shape)} {value.dtype.name}."
    )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _invoke_error(exc: BaseException) -> InvokeError:
    """InvokeError for a backend failure inside invoke()."""
    return InvokeError(f"The model failed while running: {_first_line(exc)}")
