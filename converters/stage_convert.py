"""Stage "convert": TensorFlow's converter on the loaded SavedModel, its errors translated.

int8/int16x8 with the TensorFlow engine run in the converter worker (TensorFlow's
calibrator can die of SIGSEGV there, see :mod:`._child`); the other modes, and the float
model the LiteRT engine quantizes next, run here. A ``.tflite`` source passes through.
"""

from __future__ import annotations

import dataclasses
import re

from tfedge.errors import ConversionError

from . import quantize as _quantize
from ._tf import captured_native_output, tf
from .config import ConvertOptions, Engine, Quantize
from .job import Job
from .sources import TfliteSource

__all__ = ["convert_model", "translate_error"]


def convert_model(job: Job) -> Job:
    """``job.content``: the converted model (float32 for the LiteRT engine, which quantizes next).

    Raises:
        ConversionError: TensorFlow's converter failed (translated; its text in ``converter_text``).
    """
    src, opts, data = job.source, job.options, job.data
    assert src is not None and data is not None and opts.quantize is not None
    if isinstance(src, TfliteSource):
        return job.but(content=src.content)
    calib = data.calibration
    litert = opts.engine is Engine.LITERT
    if not litert and opts.quantize.needs_calibration:
        # TensorFlow's calibrator can die of SIGSEGV: in the worker, that is an error message.
        from ._child import ChildFailed, convert_in_child

        try:
            content = convert_in_child(src.saved_model_dir, opts, calib, src.label)
        except ChildFailed as exc:
            raise translate_error(exc.text, opts) from None
        return job.but(content=content)
    t = tf()
    with captured_native_output() as native:
        converter = t.lite.TFLiteConverter.from_saved_model(src.saved_model_dir)
        _quantize.configure(converter, dataclasses.replace(opts, quantize=Quantize.NONE) if litert else opts, calib, native.stderr)
        try:
            content = bytes(converter.convert())
            error = None
        except Exception as exc:  # noqa: BLE001 - ConverterError, ValueError, RuntimeError
            content, error = b"", exc
    if error is not None:
        raise translate_error(f"{error}\n{native.text}", opts) from error
    return job.but(content=content)


_SELECT = re.compile(r"TF Select ops: ([^\n]+)")
_CUSTOM = re.compile(r"Custom ops: ([^\n]+)")


def translate_error(text: str, opts: ConvertOptions) -> ConversionError:
    """The ConversionError for TensorFlow's ``text``: a known failure in the user's terms, else its first line.

    TensorFlow's own text is kept on the error's ``converter_text`` (``--verbose`` prints it).
    """
    error = _translated(text, opts)
    error.converter_text = text
    return error


def _translated(text: str, opts: ConvertOptions) -> ConversionError:
    """The error for the converter's ``text``, without TensorFlow's text attached."""
    from .diagnose import translate

    assert opts.quantize is not None
    known = translate(text, opts, "", None)
    if known is not None:
        return known
    flex = sorted({op.strip() for m in _SELECT.findall(text) for op in m.split(",") if op.strip()})
    custom = sorted({op.strip() for m in _CUSTOM.findall(text) for op in m.split(",") if op.strip()})
    if flex and not opts.allow_select_tf_ops:
        extra = f" It also uses {', '.join(custom)}, which neither TFLite nor Select TF has." if custom else ""
        return ConversionError(
            f"The model needs TensorFlow ops with no TFLite builtin: {', '.join(flex)}. The thin runtime "
            "(tfedge on ai_edge_litert or tflite_runtime) cannot run Select TF (flex) ops. Rewrite "
            f"them with builtin ops, or pass --allow-select-tf-ops to convert anyway (the model then "
            f"needs a runtime built with the Flex delegate).{extra}"
        )
    if custom or flex:
        ops = ", ".join(custom or flex)
        return ConversionError(
            f"The model needs TensorFlow ops that neither TFLite builtins nor Select TF provide: {ops}. "
            "Rewrite them with supported ops."
        )
    lines = [ln.strip() for ln in text.splitlines() if "error:" in ln]
    first = lines[0].split("error:", 1)[1].strip() if lines else (text.strip().splitlines() or ["no message"])[0]
    return ConversionError(f"TFLiteConverter failed ({opts.quantize.value}): {first}")
