"""``Interpreter``: load a .tflite model and run it by name.

A drop-in for ``tflite_runtime.interpreter.Interpreter`` (every public method behaves
the same, with errors mapped to :mod:`tfedge.errors`), plus :meth:`Interpreter.run`:
one call that takes inputs by name or position, quantizes and resizes them as the
model needs, and returns owned float outputs by name.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from . import _backend
from .errors import InputError, InvokeError, ModelError, SignatureError
from .quant import QUANTIZED_DTYPES, QuantParams, dequantize, quantize

__all__ = ["Interpreter", "TensorSpec"]

ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
Inputs = Union[np.ndarray, Sequence[Any], Mapping[str, Any], Any]


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
        **backend_options: Passed to the backend's Interpreter unchanged.

    Raises:
        BackendNotFoundError: no backend, or the named one cannot be imported.
        ModelError: the model is missing, empty, not TFLite, corrupt, needs ops the
            backend lacks, or cannot be allocated.
    """

    def __init__(
        self,
        model: ModelSource | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        model_content: bytes | None = None,
        backend: str | None = None,
        num_threads: int | None = None,
        experimental_delegates: Sequence[Any] | None = None,
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
        self.num_threads = num_threads
        try:
            self._raw = self._backend.interpreter_class(
                model_content=self._content,
                num_threads=num_threads,
                experimental_delegates=list(experimental_delegates or ()) or None,
                **backend_options,
            )
            self._raw.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise _backend.map_load_error(exc, self._backend, self._source) from exc
        self._views = self._build_views()
        self._default = self._views[None]
        hot = self._hot_run()
        if hot is not None:
            self.run = hot

    # -- load time -------------------------------------------------------------

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
            return self._invoke(view, arrays, raw)

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
        raw_interp, acquire, release = self._raw, self._acquire, self._release
        index, subgraph, plain = view.single, view.subgraph, view.plain
        outputs = self._outputs
        general = Interpreter.run
        me = weakref.ref(self)

        def run(inputs: Inputs, *, signature: str | None = None, raw: bool = False) -> dict[str, np.ndarray]:
            if signature is not None or raw or type(inputs) is not np.ndarray:
                return general(me(), inputs, signature=signature, raw=raw)
            wrapper = raw_interp._interpreter
            acquire()
            try:
                try:
                    wrapper.SetTensor(index, inputs, subgraph)
                except ValueError:
                    pass
                else:
                    try:
                        wrapper.Invoke(subgraph)
                    except RuntimeError as exc:
                        raise _invoke_error(exc) from exc
                    if plain is not None:
                        return {plain[0]: wrapper.GetTensor(plain[1], subgraph)}
                    return outputs(view, wrapper, False)
            finally:
                release()
            return general(me(), inputs)

        run.__doc__ = Interpreter.run.__doc__
        return run


    def _invoke(self, view: _View, arrays: list[Any], raw: bool) -> dict[str, np.ndarray]:
        """Set the inputs, invoke and read the outputs (lock held)."""
        wrapper = self._raw._interpreter
        subgraph = view.subgraph
        for slot, value in zip(view.slots, arrays):
            value = _coerce(slot, value, raw)
            if value.shape != slot.shape and self._reshape(view, slot, value):
                return self._invoke_batched(view, arrays, raw)
            wrapper.SetTensor(slot.index, value, subgraph)
        try:
            wrapper.Invoke(subgraph)
        except RuntimeError as exc:
            raise _invoke_error(exc) from exc
        return self._outputs(view, wrapper, raw)

    @staticmethod
    def _outputs(view: _View, wrapper: Any, raw: bool) -> dict[str, np.ndarray]:
        """Read (and dequantize unless ``raw``) every output of ``view``."""
        result = {}
        for name, index, quant in view.outputs:
            out = wrapper.GetTensor(index, view.subgraph)
            result[name] = out if quant is None or raw else dequantize(out, quant)
        return result

    def _reshape(self, view: _View, slot: _Slot, value: np.ndarray) -> bool:
        """Resize ``slot`` to fit ``value``; True when it must run as N batch-1 calls instead."""
        signature = slot.spec.shape_signature
        fits = len(value.shape) == len(signature) and all(
            s < 0 or s == d for s, d in zip(signature, value.shape)
        )
        if fits:
            wrapper = self._raw._interpreter
            try:
                wrapper.ResizeInputTensor(slot.index, np.array(value.shape, np.int32), False, view.subgraph)
                wrapper.AllocateTensors(view.subgraph)
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
        return f"<tfedge.Interpreter {self._source} backend={self.backend} threads={self.num_threads}>"

    # -- drop-in methods of the backend's Interpreter ----------------------------

    def allocate_tensors(self) -> None:
        """Allocate tensor memory (done at load already; kept for drop-in use)."""
        with self._lock:
            try:
                self._raw.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise InvokeError(f"allocate_tensors failed: {_first_line(exc)}") from exc
        for view in self._views.values():
            for slot in view.slots:
                slot.shape = tuple(int(d) for d in self._raw._interpreter.TensorSize(slot.index, view.subgraph))

    def get_input_details(self) -> list[dict[str, Any]]:
        """The backend's input details of the main subgraph."""
        return self._raw.get_input_details()

    def get_output_details(self) -> list[dict[str, Any]]:
        """The backend's output details of the main subgraph."""
        return self._raw.get_output_details()

    def get_tensor_details(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """The backend's details of every tensor."""
        return self._raw.get_tensor_details(*args, **kwargs)

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        """Copy ``value`` into tensor ``tensor_index``."""
        try:
            self._raw.set_tensor(tensor_index, value)
        except ValueError as exc:
            raise InputError(f"set_tensor({tensor_index}) failed: {_first_line(exc)}") from exc

    def get_tensor(self, tensor_index: int, *args: Any) -> np.ndarray:
        """A copy of tensor ``tensor_index``."""
        try:
            return self._raw.get_tensor(tensor_index, *args)
        except ValueError as exc:
            raise InputError(f"get_tensor({tensor_index}) failed: {_first_line(exc)}") from exc

    def tensor(self, tensor_index: int) -> Any:
        """A function returning a numpy view of tensor ``tensor_index`` (no copy)."""
        return self._raw.tensor(tensor_index)

    def invoke(self) -> None:
        """Run the main subgraph on the tensors set with ``set_tensor``."""
        with self._lock:
            try:
                self._raw.invoke()
            except (ValueError, RuntimeError) as exc:
                raise _invoke_error(exc) from exc

    def resize_tensor_input(self, input_index: int, tensor_size: Any, strict: bool = False) -> None:
        """Resize an input tensor; call ``allocate_tensors()`` afterwards."""
        try:
            self._raw.resize_tensor_input(input_index, tensor_size, strict)
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"resize_tensor_input({input_index}) failed: {_first_line(exc)}") from exc

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        """``{signature: {"inputs": [...], "outputs": [...]}}``."""
        return self._raw.get_signature_list()

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        """The backend's runner for one signature, with errors mapped."""
        if signature_key is None:
            if len(self.signatures) != 1:
                raise self._unknown_signature(signature_key)
            signature_key = self.signatures[0]
        if signature_key not in self._views:
            raise self._unknown_signature(signature_key)
        return SignatureRunner(self._raw.get_signature_runner(signature_key))

    def reset_all_variables(self) -> None:
        """Reset variable tensors (stateful models) to their initial values."""
        self._raw.reset_all_variables()

    def num_subgraphs(self) -> int:
        """Number of subgraphs in the model."""
        native = getattr(self._raw._interpreter, "NumSubgraphs", None)
        if native is not None:
            return int(native())
        return _flatbuffer_subgraph_count(self._content)


def _flatbuffer_subgraph_count(content: bytes) -> int:
    """Length of Model.subgraphs read from the flatbuffer (tflite_runtime 2.14 has no NumSubgraphs)."""
    table = int.from_bytes(content[0:4], "little")
    vtable = table - int.from_bytes(content[table:table + 4], "little", signed=True)
    vtable_size = int.from_bytes(content[vtable:vtable + 2], "little")
    field = vtable + 4 + 2 * 2  # Model field 2 is `subgraphs`
    offset = int.from_bytes(content[field:field + 2], "little") if field + 2 <= vtable + vtable_size else 0
    if offset == 0:
        return 0
    vector = table + offset + int.from_bytes(content[table + offset:table + offset + 4], "little")
    return int.from_bytes(content[vector:vector + 4], "little")


class SignatureRunner:
    """The backend's SignatureRunner, with its errors mapped to tfedge's."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def __call__(self, **kwargs: Any) -> dict[str, np.ndarray]:
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
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(
            f"{source} is not a TFLite model: expected the identifier 'TFL3' at byte 4, "
            f"found {bytes(data[4:8])!r}. Check that it is a .tflite file and that it was copied whole."
        )
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
        result.append(spec if name == spec.name else _replace_name(spec, name))
    return result


def _replace_name(spec: TensorSpec, name: str) -> TensorSpec:
    """A copy of ``spec`` under another public name."""
    from dataclasses import replace

    return replace(spec, name=name)


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
