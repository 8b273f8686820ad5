"""A float32 .tflite file as a source, quantized by litert-quantizer and validated against itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfedge
from tfedge.converters import convert
from tfedge.converters.cli import main
from tfedge.errors import ConversionError

pytest.importorskip("litert_quantizer")


@pytest.fixture(scope="module")
def float_tflite(saved_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tflite-source") / "float.tflite"
    convert(saved_model, path, validate=False)
    return path


def test_float_tflite_quantized_with_litert(float_tflite: Path, calib_npy: Path, eval_x: np.ndarray, cnn: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "int8.tflite"
    argv = [str(float_tflite), "-o", str(out), "--quantize", "int8", "--engine", "litert", "--calibration", str(calib_npy), "--no-progress"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert f"source      {float_tflite} (tflite)" in table  # the path, not the message label (#22)
    interp = tfedge.Interpreter(out, backend="ai_edge_litert")
    assert interp.input_specs()[0].dtype == np.int8
    got = np.concatenate([interp.run(eval_x[i : i + 1])["output_0"] for i in range(len(eval_x))])
    want = cnn.predict(eval_x, verbose=0)  # type: ignore[attr-defined]
    cosine = float(np.sum(got * want) / (np.linalg.norm(got) * np.linalg.norm(want)))
    assert cosine > 0.99
    assert out.stat().st_size < 0.5 * float_tflite.stat().st_size


def test_float_tflite_needs_the_litert_engine(float_tflite: Path, calib_npy: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError) as info:
        convert(float_tflite, tmp_path / "m.tflite", quantize="int8", calibration=calib_npy, progress=False)
    assert str(info.value) == (
        'A .tflite source is quantized by litert-quantizer: add --engine litert (pip install "tfedge[convert-litert]"), '
        "got --engine tflite."
    )


def test_quantized_tflite_is_refused(float_tflite: Path, calib_npy: Path, tmp_path: Path) -> None:
    q = tmp_path / "q.tflite"
    convert(float_tflite, q, quantize="int8", engine="litert", calibration=calib_npy, progress=False)
    with pytest.raises(ConversionError) as info:
        convert(q, tmp_path / "again.tflite", quantize="int8", engine="litert", calibration=calib_npy, progress=False)
    assert str(info.value).startswith(f"Source {str(q)!r} is already quantized (tensor ")
