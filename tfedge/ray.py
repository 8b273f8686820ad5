"""Batch inference on Ray Data: one tfedge Interpreter per actor, batches in, columns out.

Needs ``pip install "tfedge[ray]"``; ``import tfedge`` alone never imports Ray. The
usual pipeline in one call::

    import ray
    import tfedge.ray

    ds = ray.data.read_parquet("s3://bucket/frames/")        # columns "id", "image"
    out = tfedge.ray.predict(ds, "model.tflite", actors=2, keep=["id"])
    out.write_parquet("s3://bucket/scores/")

or, with Ray's own knobs in hand::

    out = ds.map_batches(
        tfedge.ray.Predictor,
        fn_constructor_kwargs={"model": "model.tflite", "keep": ["id"]},
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=1,
        batch_size=256,
    )

How columns meet the model's inputs: a column named like an input (its ``run()`` name
or its tensor name) feeds that input; ``columns={"pixels": "image"}`` names them
explicitly; a one-input model with no column of its name takes the batch's only column
that is not kept (``keep``). Each row holds one sample without the batch axis (shape
``(8, 8, 3)`` for an input of ``(1, 8, 8, 3)``); rows that carry the model's batch axis
of 1 are accepted too. Outputs come back as columns named by output, one row per input
row, next to the kept columns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

import numpy as np

import ray
import ray.data

from .embedded import resolve_model
from .errors import InputError, ModelError
from .interpreter import Interpreter, TensorSpec
from .quant import QUANTIZED_DTYPES

if TYPE_CHECKING:
    from ray.data import Dataset

__all__ = ["Predictor", "predict"]

ModelArg = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
Actors = Union[int, Tuple[int, int], None]

#: Characters of a kept column's value shown when a row is reported.
_SHOWN = 80


def _ray_cpus() -> Optional[int]:
    """Whole CPUs Ray reserved for this actor or task; None outside a Ray worker."""
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - the driver, or Ray not started: no reservation to follow
        return None
    if cpus is None:
        return None
    return max(1, int(cpus))


def _load_source(model: ModelArg) -> Union[str, bytes]:
    """A path, ``embedded:NAME`` or bytes as ``Interpreter`` takes them."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, os.PathLike):
        return os.fspath(model)
    if isinstance(model, str):
        return resolve_model(model)[0]
    raise TypeError(f"model must be a path, embedded:NAME or bytes, got {type(model).__name__}.")


def _columns(batch: Any) -> Dict[str, np.ndarray]:
    """A batch as Ray hands it (dict of arrays, pandas DataFrame, pyarrow Table) as numpy columns."""
    if isinstance(batch, Mapping):
        return {str(k): _as_column(v) for k, v in batch.items()}
    from ray.data.block import BlockAccessor

    try:
        accessor = BlockAccessor.for_block(batch)
    except TypeError as exc:
        raise InputError(
            f"A batch must be a dict of numpy arrays, a pandas DataFrame or a pyarrow Table, "
            f"got {type(batch).__name__}."
        ) from exc
    return {str(k): _as_column(v) for k, v in accessor.to_batch_format("numpy").items()}


def _as_column(value: Any) -> np.ndarray:
    """One column as an array; rows of different shapes become an object array of rows."""
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except ValueError:  # ragged rows (numpy >= 1.24 refuses to guess)
        rows = list(value)
        column = np.empty(len(rows), dtype=object)
        for i, row in enumerate(rows):
            column[i] = np.asarray(row)
        return column


def _row_shape_fits(shape: Tuple[int, ...], row_signature: Tuple[int, ...]) -> bool:
    """Whether one row's shape fits an input's shape without its batch axis."""
    return len(shape) == len(row_signature) and all(s < 0 or s == d for s, d in zip(row_signature, shape))


class Predictor:
    """A callable class for ``Dataset.map_batches``: one model per actor.

    Ray builds it once in each actor (so the model loads once per actor) and calls it
    with every batch the actor receives.

    Args:
        model: A path to a .tflite file (it must exist on every node: a shared
            filesystem, or the file baked into the image), ``embedded:NAME`` (a model
            embedded in a native build), or the model's bytes (shipped to each actor
            with the task; fine up to some tens of MB).
        columns: ``{column: input}`` for columns whose names are not the inputs'.
            Default: by name, see the module docstring.
        outputs: The outputs to return (default all), or ``{output: column}`` to
            choose and rename them.
        keep: Columns passed through unchanged (an id or a path, to join results back
            to their rows; also named in the error for a bad row).
        signature: The signature to run (see :meth:`tfedge.Interpreter.run`).
        raw: Pass integers to and from a quantized model untouched (see ``run``).
        num_threads: Threads for the CPU kernels. Default: the CPUs Ray reserved for
            the actor (``num_cpus=`` of ``map_batches``), at least 1; outside Ray,
            the Interpreter's default.
        backend: The TFLite backend (see :class:`tfedge.Interpreter`).
        delegates: Delegate preference list (see :class:`tfedge.Interpreter`).
        strict: Raise instead of falling back when a delegate fails.

    Raises:
        ModelError: the model cannot be loaded, or an input has a fixed batch larger
            than 1 (rows cannot be batched into it). In an actor this fails its start,
            and Ray raises it from the ``map_batches`` call that consumes the dataset.
        ValueError: ``outputs``, ``columns`` or ``keep`` name something that does
            not exist, or clash.
    """

    def __init__(
        self,
        model: ModelArg,
        *,
        columns: Optional[Mapping[str, str]] = None,
        outputs: Union[Sequence[str], Mapping[str, str], None] = None,
        keep: Sequence[str] = (),
        signature: Optional[str] = None,
        raw: bool = False,
        num_threads: Optional[int] = None,
        backend: Optional[str] = None,
        delegates: Optional[Sequence[Any]] = None,
        strict: bool = False,
    ) -> None:
        if num_threads is None:
            num_threads = _ray_cpus()
        self._interp = Interpreter(
            _load_source(model), num_threads=num_threads, backend=backend, delegates=delegates, strict=strict
        )
        if self._interp.keeps_state:
            raise ModelError(
                f"{self._interp.model.source} keeps state from one call to the next "
                f"({', '.join(self._interp.keeps_state)}): rows are independent samples, spread over actors in no "
                "fixed order, so each row's outputs would depend on the rows run before it. Run a stream in order "
                "on one tfedge.Interpreter instead."
            )
        self._signature = signature
        self._raw = raw
        specs = self._interp.input_specs(signature)
        for spec in specs:
            sig = spec.shape_signature
            if not sig:
                raise ModelError(f"Input {spec.name!r} is a scalar: it has no batch axis to put rows on.")
            if sig[0] not in (1, -1):
                raise ModelError(
                    f"Input {spec.name!r} has a fixed batch of {sig[0]} ({spec.describe()}): rows cannot be "
                    "batched into it. Convert the model with batch 1 or a free batch dimension."
                )
        self._specs = {s.name: s for s in specs}
        self._by_tensor = {s.tensor_name: s.name for s in specs}
        self._columns = self._check_columns(columns)
        self._outputs = self._check_outputs(outputs)
        if isinstance(keep, str):
            raise ValueError(f"keep must be a list of column names, got the string {keep!r}: use keep=[{keep!r}].")
        self._keep = tuple(keep)
        clash = sorted(set(self._keep) & {column for _, column in self._outputs})
        if clash:
            raise ValueError(
                f"Kept column(s) {', '.join(repr(c) for c in clash)} have the name of an output. "
                "Rename the output with outputs={name: new_name}."
            )

    @property
    def interpreter(self) -> Interpreter:
        """The actor's Interpreter (for ``input_specs()``, ``num_threads``, ``delegates_used``)."""
        return self._interp

    def _input_name(self, name: str) -> Optional[str]:
        """The ``run()`` name of an input given by its name or tensor name."""
        return name if name in self._specs else self._by_tensor.get(name)

    def _check_columns(self, columns: Optional[Mapping[str, str]]) -> Optional[Dict[str, str]]:
        """``{column: input name}`` checked against the model, or None for by-name matching."""
        if columns is None:
            return None
        checked: Dict[str, str] = {}
        for column, name in columns.items():
            resolved = self._input_name(name)
            if resolved is None:
                known = ", ".join(repr(n) for n in self._specs)
                raise ValueError(f"columns maps {column!r} to unknown input {name!r}. Inputs: {known}.")
            checked[column] = resolved
        return checked

    def _check_outputs(self, outputs: Union[Sequence[str], Mapping[str, str], None]) -> List[Tuple[str, str]]:
        """``[(output name, column)]`` in the model's order unless chosen."""
        names = [s.name for s in self._interp.output_specs(self._signature)]
        if outputs is None:
            return [(n, n) for n in names]
        if isinstance(outputs, str):
            outputs = [outputs]
        pairs = list(outputs.items()) if isinstance(outputs, Mapping) else [(n, n) for n in outputs]
        for name, _ in pairs:
            if name not in names:
                raise ValueError(f"Unknown output {name!r}. Outputs: {', '.join(repr(n) for n in names)}.")
        return pairs

    def _plan(self, cols: Mapping[str, np.ndarray]) -> List[Tuple[str, str]]:
        """``[(input name, column)]`` for this batch's columns."""
        available = ", ".join(repr(c) for c in cols) or "none"
        if self._columns is not None:
            missing = [c for c in self._columns if c not in cols]
            if missing:
                raise InputError(f"No column {missing[0]!r} in the batch (columns=...). Columns: {available}.")
            plan = [(name, column) for column, name in self._columns.items()]
            fed = {name for name, _ in plan}
        else:
            plan, fed = [], set()
        for column in cols:
            name = self._input_name(column)
            if name is not None and name not in fed and (self._columns is None or column not in self._columns):
                plan.append((name, column))
                fed.add(name)
        unfed = [n for n in self._specs if n not in fed]
        if unfed and len(self._specs) == 1:
            spare = [c for c in cols if c not in self._keep]
            if len(spare) == 1:
                return [(unfed[0], spare[0])]
        if unfed:
            raise InputError(
                f"No column for input(s) {', '.join(repr(n) for n in unfed)}; the batch has columns {available}. "
                "Name the columns like the inputs, or map them: columns={'column': 'input'}."
            )
        return plan

    def _rows(self, spec: TensorSpec, column: np.ndarray) -> Union[np.ndarray, List[np.ndarray]]:
        """The column's rows without a batch axis: an array ``(N, *row)``, or a list of ragged rows."""
        sig = spec.shape_signature
        if column.dtype != object or spec.dtype.kind in "OSU":
            if column.ndim == len(sig) + 1 and column.shape[1] == 1:
                return column.reshape(column.shape[:1] + column.shape[2:])  # rows with the batch axis of 1
            return column
        rows = [np.asarray(r) for r in column]
        rows = [r[0] if r.ndim == len(sig) and r.shape[:1] == (1,) else r for r in rows]
        if rows and all(r.shape == rows[0].shape and r.dtype == rows[0].dtype for r in rows):
            return np.stack(rows)
        return rows

    def __call__(self, batch: Any) -> Dict[str, np.ndarray]:
        """Run one batch: ``{column: array}`` (or a DataFrame or Table) in, outputs and kept columns out.

        Raises:
            InputError: no column for an input, a kept column missing, or a row that
                does not fit (the message names the row's index in this batch, the
                kept columns' values for it, and tfedge's own InputError text).
        """
        cols = _columns(batch)
        missing = [k for k in self._keep if k not in cols]
        if missing:
            raise InputError(
                f"No column {missing[0]!r} to keep in the batch. Columns: {', '.join(repr(c) for c in cols)}."
            )
        plan = self._plan(cols)
        n = len(cols[plan[0][1]])
        rows = {name: self._rows(self._specs[name], cols[column]) for name, column in plan}
        result: Dict[str, np.ndarray]
        if n == 0:
            result = {column: self._empty(name) for name, column in self._outputs}
        elif all(isinstance(r, np.ndarray) for r in rows.values()):
            try:
                out = self._interp.run(rows, signature=self._signature, raw=self._raw)
            except InputError:
                out = self._run_rows(cols, rows, n)  # raises for the first bad row, naming it
            result = self._select(out, n)
        else:
            result = self._select(self._run_rows(cols, rows, n), n)
        for key in self._keep:
            result[key] = cols[key]
        return result

    def _run_rows(
        self, cols: Mapping[str, np.ndarray], rows: Mapping[str, Any], n: int
    ) -> Dict[str, np.ndarray]:
        """Run row by row (ragged rows, or to find the row a batch failed on); outputs stacked when they agree."""
        per_output: Dict[str, List[np.ndarray]] = {}
        for i in range(n):
            sample = {name: np.asarray(r[i])[np.newaxis] for name, r in rows.items()}
            try:
                out = self._interp.run(sample, signature=self._signature, raw=self._raw)
            except InputError as exc:
                raise InputError(f"Row {i} of this batch{self._describe_row(cols, i)}: {exc}") from exc
            for name, value in out.items():
                per_output.setdefault(name, []).append(value[0])
        stacked = {}
        for name, values in per_output.items():
            if all(v.shape == values[0].shape for v in values):
                stacked[name] = np.stack(values)
            else:
                column = np.empty(len(values), dtype=object)
                for i, v in enumerate(values):
                    column[i] = v
                stacked[name] = column
        return stacked

    def _describe_row(self, cols: Mapping[str, np.ndarray], i: int) -> str:
        """`` (id=17)``: the kept columns' values for row ``i``, to find it in the dataset."""
        parts = []
        for key in self._keep:
            value = cols[key][i]
            if isinstance(value, np.generic):
                value = value.item()
            text = repr(value)
            parts.append(f"{key}={text if len(text) <= _SHOWN else text[:_SHOWN] + '...'}")
        return f" ({', '.join(parts)})" if parts else ""

    def _select(self, out: Mapping[str, np.ndarray], n: int) -> Dict[str, np.ndarray]:
        """The chosen outputs as columns; ModelError for an output without a row per input row."""
        result = {}
        for name, column in self._outputs:
            value = out[name]
            if value.ndim == 0 or len(value) != n:
                raise ModelError(
                    f"Output {name!r} has shape {value.shape} for a batch of {n} rows: it has no row per "
                    "input row, so it cannot be a column. Choose other outputs with outputs=[...]."
                )
            result[column] = value
        return result

    def _empty(self, name: str) -> np.ndarray:
        """A column of zero rows for output ``name``."""
        spec = next(s for s in self._interp.output_specs(self._signature) if s.name == name)
        dequantized = spec.dtype in QUANTIZED_DTYPES and spec.quantization is not None and not self._raw
        return np.empty((0, *[max(d, 0) for d in spec.shape_signature[1:]]), np.float32 if dequantized else spec.dtype)


def _compute(actors: Actors) -> Any:
    """Ray's ActorPoolStrategy for ``actors``: a fixed count, ``(min, max)``, or None (1 up to the cluster)."""
    if actors is None:
        return ray.data.ActorPoolStrategy(min_size=1, max_size=None)
    if isinstance(actors, int) and not isinstance(actors, bool):
        if actors < 1:
            raise ValueError(f"actors must be >= 1, got {actors}.")
        return ray.data.ActorPoolStrategy(size=actors)
    if (
        isinstance(actors, tuple)
        and len(actors) == 2
        and all(isinstance(a, int) and not isinstance(a, bool) for a in actors)
        and 1 <= actors[0] <= actors[1]
    ):
        return ray.data.ActorPoolStrategy(min_size=actors[0], max_size=actors[1])
    raise ValueError(
        f"actors must be a whole number >= 1, a (min, max) pair for an autoscaling pool, or None, got {actors!r}."
    )


def predict(
    dataset: Union[Dataset, np.ndarray],
    model: ModelArg,
    *,
    actors: Actors = None,
    batch_size: int = 256,
    num_cpus: float = 1,
    columns: Optional[Mapping[str, str]] = None,
    outputs: Union[Sequence[str], Mapping[str, str], None] = None,
    keep: Sequence[str] = (),
    signature: Optional[str] = None,
    raw: bool = False,
    num_threads: Optional[int] = None,
    backend: Optional[str] = None,
    delegates: Optional[Sequence[Any]] = None,
    strict: bool = False,
    batch_format: str = "numpy",
) -> Dataset:
    """Run ``model`` over ``dataset`` with a pool of :class:`Predictor` actors; lazy.

    Nothing runs until the result is consumed (``write_parquet``, ``iter_batches``,
    ``take_all``, ``materialize``), as everywhere in Ray Data.

    Args:
        dataset: A Ray Dataset (from ``read_parquet``, ``read_images``, ...), or a
            numpy array of rows (made a Dataset with ``ray.data.from_numpy``: one
            column, ``data``).
        model: As :class:`Predictor` takes it.
        actors: Actors (each with one model): a number, ``(min, max)`` for an
            autoscaling pool, or None for 1 up to what the cluster has room for.
        batch_size: Rows per call. A batch-1 model runs them one by one inside the
            actor, so this only trades per-batch overhead against memory.
        num_cpus: CPUs each actor reserves; the kernels use that many threads.
        columns, outputs, keep, signature, raw, num_threads, backend, delegates,
            strict: As :class:`Predictor` takes them.
        batch_format: How Ray hands batches to the actors (``"numpy"``, ``"pandas"``,
            ``"pyarrow"``); the outputs are numpy columns whichever it is.

    Returns:
        The lazy Dataset of outputs (one column per output) and kept columns.

    Raises:
        ValueError: ``actors`` or ``batch_size`` is not usable.
        TypeError: ``dataset`` is neither a Dataset nor an array.
    """
    if not isinstance(dataset, (np.ndarray, ray.data.Dataset)):
        raise TypeError(f"dataset must be a ray.data.Dataset or a numpy array, got {type(dataset).__name__}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    compute = _compute(actors)
    if isinstance(dataset, np.ndarray):
        dataset = ray.data.from_numpy(dataset)
    return dataset.map_batches(
        Predictor,
        fn_constructor_kwargs={
            "model": model,
            "columns": columns,
            "outputs": outputs,
            "keep": list(keep),
            "signature": signature,
            "raw": raw,
            "num_threads": num_threads,
            "backend": backend,
            "delegates": delegates,
            "strict": strict,
        },
        compute=compute,
        batch_size=batch_size,
        num_cpus=num_cpus,
        batch_format=batch_format,
    )
