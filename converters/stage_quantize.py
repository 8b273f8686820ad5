"""Stage "quantize": what TensorFlow's converter did not do, and the model's last bytes.

litert-quantizer quantizes a float ``.tflite`` source, or the float model of
``--engine litert``; ``--keep-float`` chooses layers to leave in float32 and
``--debug-quantization`` writes the per-layer table (TensorFlow's quantization debugger, run
in the converter worker, where a calibrator crash is an error message);
the TFLite Metadata goes in last, so that what is validated next is what is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Optional

from tfedge.errors import ConversionError

from . import quantize as _quantize
from ._tf import captured_native_output
from .config import Engine, Quantize
from .job import Job
from .metadata import add_metadata
from .sources import TfliteSource
from .validate import evaluate, model_operators

__all__ = ["KEEP_FLOAT_MAX_DROP", "KEEP_FLOAT_MIN_COSINE", "quantize"]

#: The budget --keep-float auto meets when none is given.
KEEP_FLOAT_MAX_DROP = 0.5
KEEP_FLOAT_MIN_COSINE = 0.99


def quantize(job: Job) -> Job:
    """``job.content`` quantized as the options ask, with its metadata; ``job.kept_float``.

    Raises:
        ConversionError: litert-quantizer missing or failing, a mode it cannot do, or
            ``--keep-float`` / ``--debug-quantization`` without what they need.
    """
    opts, src = job.options, job.source
    assert opts.quantize is not None and src is not None and job.data is not None
    content, kept = job.content, job.kept_float
    selective = bool(opts.keep_float or opts.debug_quantization)
    if selective and (opts.quantize is not Quantize.INT8 or opts.engine is not Engine.TFLITE
                      or job.data.calibration is None or isinstance(src, TfliteSource)):
        raise ConversionError(
            "--keep-float and --debug-quantization need --quantize int8 with --engine tflite, --calibration "
            "data and a TensorFlow source (not .tflite)."
        )
    if isinstance(src, TfliteSource):
        content = _quantize_tflite(job, src)
    elif opts.engine is Engine.LITERT and opts.quantize is not Quantize.NONE:
        with captured_native_output():
            content = _quantize.litert_quantize(content, opts, job.data.calibration)
    if selective:
        content, kept = _keep_float(job.but(content=content))
    if job.info is not None:
        content = add_metadata(content, job.info)  # before validation: what is checked is what is written
    return job.but(content=content, kept_float=kept)


def _quantize_tflite(job: Job, src: TfliteSource) -> bytes:
    """A float32 .tflite source quantized with litert-quantizer (TensorFlow's converter cannot read it)."""
    opts = job.options
    assert opts.quantize is not None and job.data is not None
    if opts.quantize is Quantize.NONE:
        return job.content
    if opts.quantize.needs_calibration and any(o.name == "WHILE" for o in model_operators(job.content)):
        raise ConversionError(
            f"--quantize {opts.quantize.value} cannot calibrate {src.label}: litert-quantizer cannot calibrate the "
            "WHILE loop its recurrent layers became. Convert the Keras model or its SavedModel instead (tfedge "
            "unrolls the layers), or use --quantize dynamic."
        )
    if opts.engine is not Engine.LITERT:
        raise ConversionError(
            f"A .tflite source is quantized by litert-quantizer: add --engine litert (pip install "
            f'"tfedge[convert-litert]"), got --engine {opts.engine.value}.'
        )
    with captured_native_output():
        return _quantize.litert_quantize(job.content, opts, job.data.calibration)


def _keep_float(job: Job) -> tuple[bytes, tuple[Any, ...]]:
    """--debug-quantization's table, and --keep-float's model with layers left in float32.

    TensorFlow's quantization debugger calibrates, so it runs in the converter worker (a crash
    there is an error message); the models it makes are scored here.
    """
    from . import selective
    from ._child import ChildFailed, DebuggerInWorker
    from .stage_convert import translate_error

    src, opts, data = job.source, job.options, job.data
    assert src is not None and data is not None
    calib = data.calibration
    assert calib is not None  # quantize() checked it
    flag = "--keep-float" if opts.keep_float else "--debug-quantization"
    try:
        with DebuggerInWorker(src.saved_model_dir, dataclasses.replace(opts, progress=False), calib, src.label, flag) as dbg:
            if not opts.keep_float:
                assert opts.debug_quantization is not None
                selective.write_layer_table(opts.debug_quantization, dbg.layers())
                return job.content, ()
            chosen = selective.select(dbg, opts, _scorer(job))
    except ChildFailed as exc:
        raise translate_error(exc.text, opts) from None
    if opts.debug_quantization:
        selective.write_layer_table(opts.debug_quantization, chosen.layers)
    return chosen.content, chosen.kept


def _scorer(job: Job) -> Callable[[bytes], tuple[float, bool, Optional[float]]]:
    """``model -> (accuracy or cosine, budget met, latency ms)`` against the source, for --keep-float."""
    src, opts, data = job.source, job.options, job.data
    assert src is not None and data is not None
    samples = data.evaluation if data.evaluation is not None else data.calibration
    assert samples is not None
    reference = src.reference()
    labels = data.labels

    def score(model: bytes) -> tuple[float, bool, Optional[float]]:
        ev = evaluate(model, reference, samples, labels, latency_runs=20)
        if labels is not None and ev.converted_accuracy is not None and ev.reference_accuracy is not None:
            budget = opts.max_accuracy_drop if opts.max_accuracy_drop is not None else KEEP_FLOAT_MAX_DROP
            drop = 100.0 * (ev.reference_accuracy - ev.converted_accuracy)
            return ev.converted_accuracy, drop <= budget, ev.latency_ms
        floor = opts.min_cosine if opts.min_cosine is not None else KEEP_FLOAT_MIN_COSINE
        worst = min(o.cosine for o in ev.outputs)
        return worst, worst >= floor, ev.latency_ms

    return score
