"""Turn what the user has (SavedModel, .keras, .h5, Keras model, tf.function) into a SavedModel.

Every source ends as a SavedModel directory with a ``serving_default`` signature: the
converter reads it, the validation runs it as the reference, and calibration data is
checked against its input specs. Keras 3 models are exported with ``model.export()``
(``model.save()`` no longer writes a SavedModel, and the old converter path raises
``_get_save_spec`` errors).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfedge.errors import ConversionError, first_line

from ._tf import captured_native_output, tf

__all__ = ["SIGNATURE", "InputSpec", "Source", "load_source"]

SIGNATURE = "serving_default"
_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class InputSpec:
    """One input of the source's signature.

    Attributes:
        name: The signature key (the converted model keeps it).
        shape: Dimensions, None where free (usually the batch).
        dtype: Element type.
    """

    name: str
    shape: tuple[Optional[int], ...]
    dtype: np.dtype

    def describe(self) -> str:
        """``(None, 8, 8, 1) float32``, the form error messages use."""
        return f"{self.shape} {self.dtype.name}"


class Source:
    """A model as a SavedModel directory with its ``serving_default`` specs.

    Use as a context manager: temporary exports are deleted on exit.

    Attributes:
        kind: ``saved_model``, ``keras``, ``h5``, ``keras_model`` or ``function``.
        label: How messages name the source (``Source 'model.keras'``).
        name: How the report names it: the path as given, else the label.
        saved_model_dir: The SavedModel the converter reads.
        inputs: The signature's inputs, in the signature's order.
        outputs: The signature's output names.
        size_bytes: Size of what the user gave (file, directory or export).
    """

    def __init__(
        self,
        kind: str,
        label: str,
        saved_model_dir: str,
        size_bytes: int,
        temp: tempfile.TemporaryDirectory[str] | None,
        retrace: Optional[Callable[[int], tuple[str, tempfile.TemporaryDirectory[str]]]] = None,
        *,
        name: Optional[str] = None,
    ) -> None:
        self.kind = kind
        #: What the user gave, as the report's ``source`` field says it (a path, or the label).
        self.name = name if name is not None else label
        #: Exports the source again with a static batch: (SavedModel dir, its temp dir).
        self._retrace = retrace
        #: How the batch dimension was fixed, for the report (None: it was not).
        self.static_batch_note: Optional[str] = None
        #: The Keras model behind the source, when there is one (recurrent layers can be unrolled).
        self.keras_model: Any = None
        #: Set when recurrent layers were unrolled, for the report.
        self.unroll_note: Optional[str] = None
        self.label = label
        self.saved_model_dir = saved_model_dir
        self.size_bytes = size_bytes
        self._temps = [temp] if temp is not None else []
        self.inputs, self.outputs = _read_signature(saved_model_dir, label)
        self._loaded: Any = None
        #: The reference when it is not the SavedModel read now (set when its loops were unrolled).
        self._reference: Optional[Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]] = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete temporary exports."""
        self._loaded = self._reference = None
        for temp in self._temps:
            temp.cleanup()
        self._temps.clear()

    def reference(self) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
        """The signature as a function of numpy inputs, run by TensorFlow (the reference)."""
        if self._reference is not None:
            return self._reference
        if self._loaded is None:
            self._loaded = tf().saved_model.load(self.saved_model_dir)
        fn = self._loaded.signatures[SIGNATURE]

        def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            out = fn(**{k: tf().constant(v) for k, v in inputs.items()})
            return {k: v.numpy() for k, v in out.items()}

        return run

    def unroll_recurrent(self) -> bool:
        """Unroll the recurrent layers' loops over their time steps; False when there are none.

        TensorFlow's int8 calibrator crashes on the WHILE loop a recurrent layer becomes;
        unrolled over its (static) time steps, the layer is plain builtin ops that calibrate.
        A Keras source is exported again with ``unroll=True``; any other SavedModel has its
        graph's loops unrolled (the batch fixed to 1 first), and the copy must give the
        original's outputs on random inputs before it is used.

        Raises:
            ConversionError: a loop cannot be unrolled, or the unrolled graph differs.
        """
        from .recurrent import unroll_while_loops, unrolled_copy

        names: list[str] = []
        if self.keras_model is not None:
            copy, names = unrolled_copy(self.keras_model)
        if names:
            path, temp = _keras_retracer(copy, self.label)(None)
            self._temps.append(temp)
            self._use(path)
            self.unroll_note = f"unrolled over their time steps for calibration: {', '.join(names)}"
            return True
        if self.has_free_batch:
            self.with_static_batch(1)  # the TensorLists of the unrolled steps need a static shape
        found = unroll_while_loops(self.saved_model_dir, self.label)
        if found is None:
            return False
        temp, loops = found
        self._temps.append(temp)
        original = self.reference()
        self._use(temp.name)
        _check_same_outputs(original, self.reference(), self.inputs, self.label)
        self._reference = original  # the report compares the converted model with the graph as given
        self.unroll_note = (
            f"unrolled over their time steps in the SavedModel's graph for calibration: {', '.join(loops)}"
        )
        return True

    def _use(self, path: str) -> None:
        """Read the model from ``path`` from now on (an export or rewrite of the same model)."""
        self.saved_model_dir = path
        self.inputs, self.outputs = _read_signature(path, self.label)
        self._loaded = None

    @property
    def has_free_batch(self) -> bool:
        """True when some input has a free (None) first dimension."""
        return any(s.shape and s.shape[0] is None for s in self.inputs)

    def with_static_batch(self, batch: int) -> None:
        """Re-export with the batch dimension fixed to ``batch`` (Edge TPU and RNNs need static shapes).

        Sources that can be traced again (Keras files and models, ``tf.function``) are; a
        SavedModel's graph gets its TensorList element shapes fixed too (see
        :mod:`tfedge.converters.recurrent`), then its signature is wrapped with static input specs.
        """
        if not self.has_free_batch:
            return
        if self._retrace is not None:
            path, temp = self._retrace(batch)
            self._temps.append(temp)
            self._use(path)
            self.static_batch_note = f"batch fixed to {batch} by tracing the {self.kind} source again"
            return
        from .recurrent import patch_tensor_list_batch

        patched = patch_tensor_list_batch(self.saved_model_dir, batch)
        if patched is not None:
            self._temps.append(patched)
            self.saved_model_dir = patched.name
        self._wrap_static_batch(batch)
        self.static_batch_note = f"batch fixed to {batch} in the SavedModel's signature" + (
            " and its recurrent loops' TensorList shapes" if patched is not None else ""
        )

    def _wrap_static_batch(self, batch: int) -> None:
        """Save the SavedModel again behind a signature with the batch fixed to ``batch``."""
        t = tf()
        loaded = t.saved_model.load(self.saved_model_dir)
        fn = loaded.signatures[SIGNATURE]
        names = [s.name for s in self.inputs]
        specs = [
            t.TensorSpec((batch, *s.shape[1:]) if s.shape else (), t.as_dtype(s.dtype), name=s.name)
            for s in self.inputs
        ]

        @t.function(input_signature=specs)
        def fixed(*args: Any) -> Any:
            return fn(**dict(zip(names, args)))

        holder = t.Module()
        holder.model = loaded  # keeps the variables tracked so they are saved
        holder.fixed = fixed
        temp = tempfile.TemporaryDirectory(prefix="tfedge-static-")
        path = os.path.join(temp.name, "saved_model")
        with captured_native_output():
            t.saved_model.save(holder, path, signatures={SIGNATURE: fixed.get_concrete_function()})
        self._temps.append(temp)
        self._use(path)


def _check_same_outputs(
    original: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]],
    rewritten: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]],
    inputs: tuple[InputSpec, ...],
    label: str,
) -> None:
    """ConversionError unless a rewritten graph gives the original's outputs on seeded random inputs."""
    rng = np.random.default_rng(0)
    for _ in range(3):
        sample = {
            s.name: (rng.integers(0, 8, [d or 1 for d in s.shape]) if s.dtype.kind in "iu" else rng.standard_normal([d or 1 for d in s.shape])).astype(s.dtype)
            for s in inputs
        }
        want, got = original(sample), rewritten(sample)
        for name, value in want.items():
            scale = float(np.max(np.abs(value))) if value.size else 0.0
            error = float(np.max(np.abs(got[name].astype(np.float64) - value))) if value.size else 0.0
            if not error <= 1e-4 * max(scale, 1.0):
                raise ConversionError(
                    f"{label}: unrolling its loops changed output {name!r} (max error {error:.3g}), so they do not "
                    "run a fixed number of steps; use --quantize dynamic or float16."
                )


def _read_signature(path: str, label: str) -> tuple[tuple[InputSpec, ...], tuple[str, ...]]:
    """Input specs and output names of ``serving_default``, read from saved_model.pb (no variables)."""
    tf()
    from tensorflow.python.tools import saved_model_utils

    try:
        meta = saved_model_utils.get_meta_graph_def(path, "serve")
    except (RuntimeError, OSError, ValueError) as exc:
        raise ConversionError(f"{label} cannot be read as a SavedModel: {first_line(exc)}") from exc
    signatures = meta.signature_def
    if SIGNATURE not in signatures:
        known = ", ".join(repr(k) for k in signatures if not k.startswith("__")) or "none"
        raise ConversionError(
            f"{label} has no {SIGNATURE!r} signature. Available: {known}. Export it with "
            f"signatures={{'{SIGNATURE}': fn}}."
        )
    sig = signatures[SIGNATURE]
    dtypes = tf().dtypes
    inputs = []
    for name in sorted(sig.inputs):
        info = sig.inputs[name]
        if info.tensor_shape.unknown_rank:
            raise ConversionError(f"{label}: input {name!r} has unknown rank; give it a shape to convert.")
        shape = tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
        inputs.append(InputSpec(name, shape, np.dtype(dtypes.as_dtype(info.dtype).as_numpy_dtype)))
    return tuple(inputs), tuple(sorted(sig.outputs))


def _check_keras_container(path: Path, label: str) -> None:
    """ConversionError unless a .keras file is a whole zip archive, as Keras writes them.

    Keras reports a truncated or mistyped .keras file as "File not found", which sends
    people looking for the wrong problem; this says what is wrong, before TensorFlow is
    even imported. (``is_zipfile`` reads the archive's end record, so it sees truncation.)
    """
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ConversionError(
            f"{label} is not a zip archive, as a .keras file must be: it is truncated, corrupt or "
            "not a Keras model. Save it again with model.save(PATH)."
        )


def _tree_size(path: Path) -> int:
    """Bytes in a file, or in all files under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_source(source: Any) -> Source:
    """A :class:`Source` for a path, a Keras model or a ``tf.function``.

    Args:
        source: A SavedModel directory, a ``.keras`` / ``.h5`` file, a Keras model
            object, or a ``tf.function`` (or concrete function) with an input signature.

    Raises:
        ConversionError: the source is missing, not a model, or cannot be exported.
    """
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source))
    if hasattr(source, "export") and hasattr(source, "inputs"):
        return _from_keras_model(source, "keras_model", "The Keras model", None)
    if hasattr(source, "get_concrete_function") or hasattr(source, "structured_input_signature"):
        return _from_function(source)
    raise ConversionError(
        f"Cannot convert a {type(source).__name__}. Pass a SavedModel directory, a .keras or .h5 "
        "file, a Keras model, or a tf.function with an input_signature."
    )


def _from_path(path: Path) -> Source:
    """Source for a SavedModel directory or a Keras file."""
    label = f"Source {str(path)!r}"
    if not path.exists():
        raise ConversionError(
            f"{label} does not exist. Pass a SavedModel directory, a .keras or a .h5 file."
        )
    if path.is_dir():
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise ConversionError(
                f"{label} is a directory without saved_model.pb, so not a SavedModel. Export one "
                "with model.export(DIR) (Keras 3) or tf.saved_model.save(obj, DIR)."
            )
        return Source("saved_model", label, str(path), _tree_size(path), None, name=str(path))
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return TfliteSource(path, label)
    if suffix not in _KERAS_SUFFIXES:
        raise ConversionError(
            f"{label} is a {suffix or 'suffix-less'} file; expected a SavedModel directory, "
            "a .keras, a .h5 or a float32 .tflite file."
        )
    _check_keras_container(path, label)
    tf()
    import keras

    try:
        with captured_native_output():
            model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - keras raises anything on a bad file
        raise ConversionError(f"{label} cannot be loaded by Keras: {first_line(exc)}") from exc
    kind = "keras" if suffix == ".keras" else "h5"
    source = _from_keras_model(model, kind, label, path.stat().st_size)
    source.name = str(path)
    return source


def _from_keras_model(model: Any, kind: str, label: str, size: int | None) -> Source:
    """Source for a Keras model, exported with ``model.export()``."""
    tf()
    temp = tempfile.TemporaryDirectory(prefix="tfedge-export-")
    path = os.path.join(temp.name, "saved_model")
    try:
        with captured_native_output():
            model.export(path, format="tf_saved_model", verbose=False)
    except Exception as exc:  # noqa: BLE001
        temp.cleanup()
        batch = _static_batch_of(model)
        if batch is None:
            raise ConversionError(f"{label} could not be exported to a SavedModel: {first_line(exc)}") from exc
        # model.export() frees the batch dimension; a stateful layer needs the model's own.
        path, temp = _keras_retracer(model, label)(batch)
    source = Source(
        kind, label, path, size if size is not None else _tree_size(Path(path)), temp, _keras_retracer(model, label)
    )
    source.keras_model = model
    return source


def _static_batch_of(model: Any) -> Optional[int]:
    """The batch size every input of a Keras model fixes (``keras.Input(batch_size=N)``), else None."""
    sizes = {tuple(getattr(i, "shape", ()) or (None,))[0] for i in getattr(model, "inputs", None) or ()}
    return next(iter(sizes)) if len(sizes) == 1 and None not in sizes else None


def _keras_retracer(model: Any, label: str) -> Callable[[Optional[int]], tuple[str, tempfile.TemporaryDirectory[str]]]:
    """Exports ``model`` again with every input's batch dimension fixed (None: kept as it is)."""

    def retrace(batch: Optional[int]) -> tuple[str, tempfile.TemporaryDirectory[str]]:
        t = tf()
        import keras
        from keras.src.export.export_utils import get_input_signature

        def fixed(spec: Any) -> Any:
            shape = tuple(spec.shape)
            if batch is not None and shape:
                shape = (batch, *shape[1:])
            return t.TensorSpec(shape, spec.dtype, name=getattr(spec, "name", None))

        temp = tempfile.TemporaryDirectory(prefix="tfedge-export-")
        path = os.path.join(temp.name, "saved_model")
        try:
            signature = keras.tree.map_structure(fixed, get_input_signature(model))
            with captured_native_output():
                model.export(path, format="tf_saved_model", verbose=False, input_signature=signature)
        except Exception as exc:  # noqa: BLE001
            temp.cleanup()
            raise ConversionError(f"{label} could not be exported with batch {batch}: {first_line(exc)}") from exc
        return path, temp

    return retrace


def _from_function(fn: Any) -> Source:
    """Source for a tf.function with an input signature (or a concrete function)."""
    t = tf()
    label = f"The function {getattr(fn, '__name__', getattr(fn, 'name', '?'))!r}"
    try:
        concrete = fn.get_concrete_function() if hasattr(fn, "get_concrete_function") else fn
    except (TypeError, ValueError) as exc:
        raise ConversionError(
            f"{label} has no input_signature; decorate it with "
            "@tf.function(input_signature=[tf.TensorSpec(shape, dtype, name=...)])."
        ) from exc
    holder = t.Module()
    holder.fn = fn
    temp = tempfile.TemporaryDirectory(prefix="tfedge-export-")
    path = os.path.join(temp.name, "saved_model")
    try:
        with captured_native_output():
            t.saved_model.save(holder, path, signatures={SIGNATURE: concrete})
    except Exception as exc:  # noqa: BLE001
        temp.cleanup()
        raise ConversionError(f"{label} could not be saved as a SavedModel: {first_line(exc)}") from exc
    return Source("function", label, path, _tree_size(Path(path)), temp, _function_retracer(fn, concrete, label))


def _function_retracer(
    fn: Any, concrete: Any, label: str
) -> Optional[Callable[[int], tuple[str, tempfile.TemporaryDirectory[str]]]]:
    """Traces a ``tf.function`` again with every input's batch dimension fixed (None: cannot)."""
    python_function = getattr(fn, "python_function", None)
    if python_function is None:
        return None

    def retrace(batch: int) -> tuple[str, tempfile.TemporaryDirectory[str]]:
        t = tf()
        specs = [
            t.TensorSpec((batch, *s.shape[1:]) if s.shape.rank else s.shape, s.dtype, name=s.name)
            for s in t.nest.flatten(concrete.structured_input_signature)
        ]
        holder = t.Module()
        holder.fn = fn
        owner = getattr(python_function, "__self__", None)
        if owner is not None:
            holder.owner = owner  # a method's module: its variables must be tracked to be saved
        temp = tempfile.TemporaryDirectory(prefix="tfedge-export-")
        path = os.path.join(temp.name, "saved_model")
        try:
            again = t.function(python_function).get_concrete_function(*specs)
            with captured_native_output():
                t.saved_model.save(holder, path, signatures={SIGNATURE: again})
        except Exception as exc:  # noqa: BLE001
            temp.cleanup()
            raise ConversionError(f"{label} could not be traced with batch {batch}: {first_line(exc)}") from exc
        return path, temp

    return retrace


class TfliteSource(Source):
    """A float32 ``.tflite`` file as a source: quantized by litert-quantizer, validated against itself.

    It needs a ``serving_default`` signature (every TensorFlow-converted model has one): the
    quantizer calibrates it by name, and the report runs it to compare.
    """

    def __init__(self, path: Path, label: str) -> None:  # noqa: D107 - Source's attributes
        import tfedge

        self.kind = "tflite"
        self.label = label
        self.name = str(path)
        self.saved_model_dir = ""  # no SavedModel: TensorFlow's converter has nothing to read
        self.size_bytes = path.stat().st_size
        self._temps = []
        self._retrace = None
        self.static_batch_note = None
        self.keras_model = None
        self.unroll_note = None
        self._reference = None
        self.content = path.read_bytes()
        try:
            interp = tfedge.Interpreter(self.content, quiet=True)
            specs = interp.input_specs(SIGNATURE)
            outputs = interp.output_specs(SIGNATURE)
        except Exception as exc:  # noqa: BLE001 - tfedge errors, or no such signature
            raise ConversionError(
                f"{label} cannot be used as a source: {first_line(exc)}. It must be a float32 .tflite file "
                f"with a {SIGNATURE!r} signature (as TFLiteConverter writes them)."
            ) from exc
        quantized = [s.name for s in (*specs, *outputs) if s.dtype != np.float32 and s.quantization is not None and len(s.quantization.scales)]
        if quantized:
            raise ConversionError(f"{label} is already quantized (tensor {quantized[0]!r}); give its float32 version.")
        self.inputs = tuple(
            InputSpec(s.name, tuple(None if d < 0 else int(d) for d in s.shape_signature), np.dtype(s.dtype)) for s in specs
        )
        self.outputs = tuple(s.name for s in outputs)
        self._loaded = interp

    def reference(self) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
        """The float32 model itself, through tfedge."""
        interp = self._loaded

        def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return interp.run(dict(inputs), signature=SIGNATURE)

        return run

    @property
    def has_free_batch(self) -> bool:
        """A .tflite source is converted as it is."""
        return False

    def with_static_batch(self, batch: int) -> None:
        """Refused: the graph of a .tflite file is not traced again."""
        raise ConversionError(f"--static-batch cannot change {self.label}: a .tflite source keeps its shapes.")
