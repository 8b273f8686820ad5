"""Quantization settings for each mode, for both engines.

``configure`` sets a ``TFLiteConverter`` up for a mode (the TensorFlow engine);
``litert_quantize`` quantizes a float32 model with litert-quantizer (the LiteRT engine).
"""

from __future__ import annotations

from typing import Any, Optional

from tfedge.errors import ConversionError, first_line

from .calibration import Samples, _progress
from .config import ConvertOptions, IOType, Quantize
from .sources import SIGNATURE
from ._tf import tf

__all__ = ["configure", "litert_available", "litert_quantize"]


def configure(converter: Any, options: ConvertOptions, calibration: Optional[Samples], stream: Any = None) -> None:
    """Set ``converter`` up for ``options`` (resolved) with ``calibration`` samples.

    Raises:
        ConversionError: the mode needs calibration data and there is none.
    """
    t = tf()
    mode = options.quantize
    ops = [t.lite.OpsSet.TFLITE_BUILTINS]
    if mode is not Quantize.NONE:
        converter.optimizations = [t.lite.Optimize.DEFAULT]
    if mode is Quantize.FLOAT16:
        converter.target_spec.supported_types = [t.float16]
    if mode is not None and mode.needs_calibration:
        if calibration is None:
            raise ConversionError(
                f"--quantize {mode.value} needs calibration data: pass --calibration with a .npy, "
                ".npz or image directory (about 100-500 samples)."
            )
        converter.representative_dataset = _representative(calibration, options.progress, stream)
    if mode is Quantize.INT8 and options.io_type is not IOType.FLOAT32:
        # Integer-only: no float fallback kernels, integer inputs and outputs.
        ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = t.int8 if options.io_type is IOType.INT8 else t.uint8
        converter.inference_input_type = io
        converter.inference_output_type = io
    elif mode is Quantize.INT16X8:
        ops = [t.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if options.io_type is IOType.INT16:
            converter.inference_input_type = t.int16
            converter.inference_output_type = t.int16
    if options.allow_select_tf_ops:
        ops.append(t.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if not options.per_channel:
        # The public API has no switch; this attribute is read by every TF 2.x converter.
        converter._experimental_disable_per_channel = True


def _representative(calibration: Samples, progress: bool, stream: Any) -> Any:
    """A representative_dataset callable yielding ``{input name: batch-1 array}``."""

    def dataset() -> Any:
        yield from _progress(calibration.one_by_one(), progress, stream, "calibrating", total=len(calibration))

    return dataset


def litert_available() -> Optional[str]:
    """None when litert-quantizer imports, else the reason it cannot be used."""
    try:
        import litert_quantizer  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install raises anything
        return f"{type(exc).__name__}: {exc}"
    return None


def _recipe(options: ConvertOptions) -> list[dict[str, Any]]:
    """A litert-quantizer recipe (its JSON form) for a mode."""
    granularity = "CHANNELWISE" if options.per_channel else "TENSORWISE"
    weights = {"num_bits": 8, "symmetric": True, "granularity": granularity, "dtype": "INT"}
    config: dict[str, Any] = {
        "weight_tensor_config": weights,
        "compute_precision": "INTEGER",
        "explicit_dequantize": False,
        "skip_checks": False,
        "min_weight_elements": 0,
    }
    if options.quantize is Quantize.INT8:
        config["activation_tensor_config"] = {"num_bits": 8, "symmetric": False, "granularity": "TENSORWISE", "dtype": "INT"}
    elif options.quantize is Quantize.INT16X8:
        config["activation_tensor_config"] = {"num_bits": 16, "symmetric": True, "granularity": "TENSORWISE", "dtype": "INT"}
    return [{"regex": ".*", "operation": "*", "algorithm_key": "min_max_uniform_quantize", "op_config": config}]


def litert_quantize(float_model: bytes, options: ConvertOptions, calibration: Optional[Samples]) -> bytes:
    """Quantize a float32 TFLite model with litert-quantizer.

    Raises:
        ConversionError: litert-quantizer is missing or fails, or calibration is missing.
    """
    reason = litert_available()
    if reason is not None:
        raise ConversionError(
            f"--engine litert needs litert-quantizer, which cannot be imported ({reason}). "
            'Install it: pip install "tfedge[convert-litert]", or use --engine tflite.'
        )
    from litert_quantizer import Quantizer

    quantizer = Quantizer(bytearray(float_model), _recipe(options))
    try:
        result = None
        if quantizer.need_calibration:
            if calibration is None:
                raise ConversionError(
                    f"--quantize {options.quantize.value} needs calibration data: pass --calibration."  # type: ignore[union-attr]
                )
            samples = list(calibration.one_by_one())
            result = quantizer.calibrate({SIGNATURE: samples}, num_threads=1)
        out = quantizer.quantize(result, enable_progress_report=False)
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the quantizer raises anything on unsupported graphs
        raise ConversionError(
            f"litert-quantizer failed: {first_line(exc).rstrip('.')}. Try --engine tflite (TensorFlow's calibrator)."
        ) from exc
    if out.quantized_model is None:
        raise ConversionError("litert-quantizer returned no model.")
    return bytes(out.quantized_model)
