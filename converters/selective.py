"""Accuracy-first int8: per-layer quantization error, and the most sensitive layers kept in float.

Built on TensorFlow's ``tf.lite.experimental.QuantizationDebugger``: it calibrates once,
measures each quantized layer against its float twin on the calibration data (the
``NumericVerify`` ops), and re-quantizes with ``denylisted_nodes`` (layers left in float)
without calibrating again. ``--keep-float auto`` ranks the layers by RMSE over their
quantization scale (TensorFlow's own sensitivity measure) and keeps the worst in float,
fewest first, until the validation budget holds.

The debugger calibrates, and TensorFlow's calibrator can die of SIGSEGV: it runs in the
converter worker (:class:`._child.DebuggerInWorker`, where a crash is an error message), which
keeps it between the requests of :func:`select`; the models it returns are scored here.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Protocol


from tfedge._files import write_atomically
from tfedge.errors import ConversionError

from ._tf import captured_native_output, tf
from .calibration import Samples
from .config import ConvertOptions, Quantize
from .report import KeptLayer

__all__ = ["Debugger", "KeptLayer", "LayerError", "SelectiveResult", "select", "write_layer_table"]

AUTO = "auto"


@dataclass(frozen=True)
class LayerError:
    """How much one quantized layer's output differs from float, on the calibration data."""

    tensor: str
    op: str
    rmse_over_scale: float
    max_abs_error: float
    mean_squared_error: float
    scale: float
    zero_point: int


@dataclass(frozen=True)
class SelectiveResult:
    """What ``select`` chose."""

    content: bytes
    kept: tuple[KeptLayer, ...]
    layers: tuple[LayerError, ...]
    #: Each try: (layers kept in float, size, accuracy or cosine, budget met).
    tries: tuple[tuple[int, int, float, bool], ...]


class Debugger(Protocol):
    """A quantization debugger that has calibrated: its layers, and models with some left in float."""

    def layers(self) -> tuple[LayerError, ...]:
        """Per-layer statistics, most sensitive first."""

    def model(self, denylisted: Sequence[str]) -> bytes:
        """The quantized model with ``denylisted`` layers (output tensor names) left in float."""


class _Debugger:
    """A QuantizationDebugger over a configured converter (calibrates once); run in the converter worker."""

    def __init__(self, converter: Any, calibration: Samples) -> None:
        t = tf()
        self._samples = calibration
        self._order: Optional[list[str]] = None
        with captured_native_output():
            self.debugger = t.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=self._dataset
            )

    def _dataset(self) -> Any:
        details = self.debugger._quant_interpreter.get_input_details()  # noqa: SLF001 - input order
        names = list(self._samples.arrays)
        order: list[str] = []
        for d in details:
            match = [n for n in names if d["name"] in (n, f"serving_default_{n}:0")]
            order.append(match[0] if match else names[len(order)])
        for sample in self._samples.one_by_one():
            yield [sample[n] for n in order]

    def layers(self) -> tuple[LayerError, ...]:
        """Per-layer statistics, most sensitive first."""
        with captured_native_output():
            self.debugger.run()
            buffer = io.StringIO()
            self.debugger.layer_statistics_dump(buffer)
        rows = []
        for row in csv.DictReader(io.StringIO(buffer.getvalue())):
            mse, scale = float(row["mean_squared_error"]), float(row["scale"])
            ratio = math.sqrt(mse) / scale if scale > 0 else float("inf")
            rows.append(
                LayerError(row["tensor_name"], row["op_name"], ratio, float(row["max_abs_error"]), mse, scale, int(row["zero_point"]))
            )
        return tuple(sorted(rows, key=lambda r: -r.rmse_over_scale if not math.isnan(r.rmse_over_scale) else 0.0))

    def model(self, denylisted: Sequence[str]) -> bytes:
        """The quantized model with ``denylisted`` layers (output tensor names) left in float."""
        t = tf()
        with captured_native_output():
            # Not the ``options`` setter: it also rebuilds the debug model, which raises "Please check
            # if the quantized model is in debug mode" once every quantized layer is denylisted
            # (no NumericVerify op left), as on a three-Dense MLP. The non-debug model reads only
            # these options.
            self.debugger._debug_options = t.lite.experimental.QuantizationDebugOptions(  # noqa: SLF001
                denylisted_nodes=list(denylisted)
            )
            return bytes(self.debugger.get_nondebug_quantized_model())


def write_layer_table(path: str, layers: Sequence[LayerError]) -> None:
    """The per-layer table as JSON (``.json``) or CSV (anything else), written atomically."""
    rows = [asdict(r) for r in layers]
    if Path(path).suffix.lower() == ".json":
        data = json.dumps(rows, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, list(rows[0]) if rows else [f for f in LayerError.__dataclass_fields__])
        writer.writeheader()
        writer.writerows(rows)
        data = buffer.getvalue()
    write_atomically(Path(path), data.encode())


def select(
    dbg: Debugger,
    opts: ConvertOptions,
    score: Callable[[bytes], tuple[float, bool, Optional[float]]],
) -> SelectiveResult:
    """Keep layers in float: the named ones, or (``auto``) the most sensitive until ``score`` passes.

    Args:
        dbg: The debugger, calibrated for int8 on the calibration samples.
        opts: ``keep_float`` is ``("auto",)`` or layer (output tensor) names.
        score: ``model -> (accuracy or cosine, budget met, latency ms)``.

    Raises:
        ConversionError: a named layer does not exist, or no choice meets the budget.
    """
    if opts.quantize is not Quantize.INT8:
        raise ConversionError(f"--keep-float needs --quantize int8, got --quantize {opts.quantize.value}.")  # type: ignore[union-attr]
    layers = dbg.layers()
    names = {r.tensor: r for r in layers}
    wanted = list(opts.keep_float or ())
    tries: list[tuple[int, int, float, bool]] = []
    base = dbg.model([])
    base_value, base_ok, base_latency = score(base)
    tries.append((0, len(base), base_value, base_ok))
    if wanted != [AUTO]:
        missing = [n for n in wanted if n not in names]
        if missing:
            known = ", ".join(repr(r.tensor) for r in layers[:8])
            raise ConversionError(
                f"--keep-float: no quantized layer named {', '.join(repr(m) for m in missing)}. Layers, most "
                f"sensitive first: {known}{' ...' if len(layers) > 8 else ''} (--debug-quantization FILE lists all)."
            )
        chosen, content = wanted, dbg.model(wanted)
        value, ok, latency = score(content)
        tries.append((len(chosen), len(content), value, ok))
    else:
        chosen, content, ok, latency = [], base, base_ok, base_latency
        k = 0
        while not ok and k < len(layers):
            k += 1
            chosen = [r.tensor for r in layers[:k]]
            content = dbg.model(chosen)
            value, ok, latency = score(content)
            tries.append((k, len(content), value, ok))
        if not ok:
            raise ConversionError(
                f"--keep-float auto: even with all {len(layers)} quantized layers in float the budget is not "
                "met; use --quantize float16 or none."
            )
    kept = []
    prev_size, prev_latency = len(base), base_latency
    for i, name in enumerate(chosen):
        # What each layer cost: the step from keeping the ones before it to keeping it too.
        step = content if i == len(chosen) - 1 else dbg.model(chosen[: i + 1])
        size = len(step)
        step_latency = latency if i == len(chosen) - 1 else score(step)[2]
        cost_latency = None if step_latency is None or prev_latency is None else step_latency - prev_latency
        r = names[name]
        kept.append(KeptLayer(name, r.op, r.rmse_over_scale, size - prev_size, cost_latency))
        prev_size, prev_latency = size, step_latency
    return SelectiveResult(content, tuple(kept), layers, tuple(tries))
