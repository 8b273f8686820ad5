"""--engine litert: float32 from TFLiteConverter, quantized by litert-quantizer, same report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfedge
from tfedge.converters import convert
from tfedge.errors import ConversionError

pytest.importorskip("litert_quantizer")


@pytest.mark.parametrize("mode, io", [("dynamic", np.float32), ("int8", np.int8), ("int16x8", np.int16)])
def test_litert_engine(mode: str, io: type, saved_model: Path, calib: np.ndarray, eval_x: np.ndarray, tmp_path: Path) -> None:
    result = convert(
        saved_model, tmp_path / "m.tflite", quantize=mode, engine="litert", calibration=calib, eval_data=eval_x, progress=False
    )
    assert result.options["engine"] == "litert" and result.options["io_type"] == np.dtype(io).name
    float_size = convert(saved_model, tmp_path / "f.tflite", validate=False).size_after
    assert result.size_after < 0.5 * float_size
    assert result.outputs[0].cosine > 0.99
    interp = tfedge.Interpreter(result.output, backend="ai_edge_litert")
    assert interp.input_specs()[0].dtype == io and interp.output_specs()[0].dtype == io
    got = interp.run(eval_x[:1])["output_0"]  # quantized and dequantized by tfedge
    assert got.shape == (1, 10)


def test_litert_engine_refuses_float16(saved_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError) as info:
        convert(saved_model, tmp_path / "m.tflite", quantize="float16", engine="litert")
    assert str(info.value) == (
        "--engine litert quantizes to dynamic, int8 or int16x8; got --quantize float16. Use --engine tflite for float16."
    )
