"""Options: target defaults, explicit overrides, contradictions, and the public surface."""

from __future__ import annotations

import pytest

from tfedge import converters
from tfedge.converters.config import ConvertOptions, IOType, Quantize, resolve_options
from tfedge.errors import ConversionError


def test_public_surface() -> None:
    assert converters.__all__ == sorted(converters.__all__)
    assert all(hasattr(converters, name) for name in converters.__all__)
    assert callable(converters.convert)


def test_target_defaults_and_overrides() -> None:
    tpu = resolve_options(ConvertOptions(target="edgetpu"))
    assert (tpu.quantize, tpu.io_type, tpu.static_batch) == (Quantize.INT8, IOType.UINT8, 1)
    assert resolve_options(ConvertOptions(target="edgetpu", io_type="int8")).io_type is IOType.INT8
    assert resolve_options(ConvertOptions(target="gpu")).quantize is Quantize.FLOAT16
    assert resolve_options(ConvertOptions(target="gpu", quantize="none")).quantize is Quantize.NONE
    cpu = resolve_options(ConvertOptions(quantize="int8"))
    assert cpu.io_type is IOType.FLOAT32 and cpu.per_channel is True and cpu.static_batch is None


@pytest.mark.parametrize(
    "options, message",
    [
        (ConvertOptions(quantize="int4"), "Unknown quantization mode 'int4'. Available: 'none', 'float16', 'dynamic', 'int8', 'int16x8'."),
        (ConvertOptions(quantize="dynamic", io_type="uint8"), "--io-type uint8 needs --quantize int8 (integer IO exists only for full-integer models), got --quantize dynamic."),
        (ConvertOptions(target="edgetpu", quantize="float16"), "--target edgetpu needs an integer-only model (--quantize int8 --io-type uint8 or int8), got --quantize float16 --io-type float32."),
        (ConvertOptions(runtimes=("tflite",)), "Unknown runtime 'tflite'. Available: 'ai_edge_litert', 'tflite_runtime'."),
        (ConvertOptions(engine="litert", quantize="int8", io_type="float32"), "--engine litert makes int8 inputs and outputs for --quantize int8, not float32; use --engine tflite for --io-type float32."),
    ],
)
def test_contradictions_are_refused(options: ConvertOptions, message: str) -> None:
    with pytest.raises(ConversionError) as info:
        resolve_options(options)
    assert str(info.value) == message
