"""Every quantization mode from one SavedModel: run with tfedge, report checked with numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfedge
from tfedge.converters import convert

CASES = {
    # name: (options, expected input dtype)
    "none": ({"quantize": "none"}, np.float32),
    "float16": ({"quantize": "float16"}, np.float32),
    "dynamic": ({"quantize": "dynamic"}, np.float32),
    "int8": ({"quantize": "int8"}, np.float32),
    "int8-io-int8": ({"quantize": "int8", "io_type": "int8"}, np.int8),
    "int8-io-uint8": ({"quantize": "int8", "io_type": "uint8"}, np.uint8),
    "int8-per-tensor": ({"quantize": "int8", "per_channel": False}, np.float32),
    "int16x8": ({"quantize": "int16x8"}, np.float32),
    "int16x8-io-int16": ({"quantize": "int16x8", "io_type": "int16"}, np.int16),
}


@pytest.fixture(scope="module")
def converted(saved_model: Path, calib: np.ndarray, eval_x: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each case converted once, with its report."""
    out_dir = tmp_path_factory.mktemp("modes")
    results = {}
    for name, (options, _) in CASES.items():
        results[name] = convert(
            saved_model, out_dir / f"{name}.tflite", calibration=calib, eval_data=eval_x, progress=False, **options
        )
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_mode_runs_and_report_matches_numpy(case: str, converted: dict[str, Any], cnn: Any, eval_x: np.ndarray) -> None:
    result = converted[case]
    assert result.passed and Path(result.output).is_file()
    interp = tfedge.Interpreter(result.output, backend="ai_edge_litert")
    (spec,) = interp.input_specs()
    assert spec.dtype == CASES[case][1]
    got = np.concatenate([interp.run(eval_x[i : i + 1])["output_0"] for i in range(len(eval_x))])
    want = cnn.predict(eval_x, verbose=0)
    (metrics,) = result.outputs
    diff = np.abs(got.astype(np.float64) - want)
    cosine = float(np.sum(got * want) / (np.linalg.norm(got) * np.linalg.norm(want)))
    assert metrics.max_abs_error == pytest.approx(diff.max(), rel=1e-3, abs=1e-6)
    assert metrics.mean_abs_error == pytest.approx(diff.mean(), rel=1e-3, abs=1e-7)
    assert metrics.cosine == pytest.approx(cosine, abs=1e-6)
    assert metrics.top1_agreement == pytest.approx(np.mean(got.argmax(1) == want.argmax(1)))
    assert result.eval_samples == len(eval_x) and result.eval_origin.startswith("--eval-data")
    assert result.size_after == Path(result.output).stat().st_size
    assert result.latency_ms is not None and result.latency_ms > 0
    assert any(r.backend == "ai_edge_litert" and r.ok and r.required for r in result.runtimes)


def test_modes_shrink_and_stay_close(converted: dict[str, Any]) -> None:
    size = {k: r.size_after for k, r in converted.items()}
    assert size["float16"] < 0.6 * size["none"]
    for q in ("dynamic", "int8", "int16x8"):
        assert size[q] < 0.4 * size["none"], q
    assert converted["none"].outputs[0].max_abs_error < 1e-5
    assert converted["float16"].outputs[0].max_abs_error < 1e-3
    for name in ("dynamic", "int8", "int16x8", "int8-io-uint8"):
        assert converted[name].outputs[0].cosine > 0.99, name


def test_operators_read_from_the_file(converted: dict[str, Any]) -> None:
    ops = {o.name: o for o in converted["int8"].operators}
    assert {"CONV_2D", "FULLY_CONNECTED", "QUANTIZE", "DEQUANTIZE"} <= set(ops)
    assert ops["FULLY_CONNECTED"].count == 2
    assert "QUANTIZE" not in {o.name for o in converted["none"].operators}
    assert converted["none"].non_builtin_ops == ()


def test_dynamic_mode_says_which_runtimes_load_it(converted: dict[str, Any]) -> None:
    # TF 2.21 writes per-channel dynamic-range FULLY_CONNECTED as version 12; tflite_runtime 2.14 lacks it.
    runtimes = {r.backend: r for r in converted["dynamic"].runtimes}
    assert runtimes["ai_edge_litert"].ok
    assert not runtimes["tflite_runtime"].ok
    assert "needs FULLY_CONNECTED version 12" in runtimes["tflite_runtime"].error
    assert {r.backend: r.ok for r in converted["int8"].runtimes}["tflite_runtime"]


def test_held_out_calibration_part_is_used_without_eval_data(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    result = convert(saved_model, tmp_path / "m.tflite", quantize="int8", calibration=calib, progress=False)
    assert result.eval_samples == 12  # the last fifth of 60, not used to calibrate
    assert "held out of calibration" in result.eval_origin


def test_random_inputs_when_no_data(saved_model: Path, tmp_path: Path) -> None:
    result = convert(saved_model, tmp_path / "m.tflite", quantize="float16")
    assert result.eval_origin.startswith("random inputs")
    assert result.outputs[0].cosine > 0.9999
