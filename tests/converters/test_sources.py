"""Every source kind converts, and the converted model computes what the source computes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfedge
from tfedge.converters import convert

tf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize("kind", ["saved_model", "keras", "h5", "keras_model"])
def test_keras_sources(kind: str, request: pytest.FixtureRequest, cnn: Any, eval_x: np.ndarray, tmp_path: Path) -> None:
    source = {
        "saved_model": lambda: request.getfixturevalue("saved_model"),
        "keras": lambda: request.getfixturevalue("keras_file"),
        "h5": lambda: request.getfixturevalue("h5_file"),
        "keras_model": lambda: cnn,
    }[kind]()
    result = convert(source, tmp_path / "m.tflite", validate=False)
    assert result.source_kind == kind
    assert result.eval_origin is None and result.runtimes == ()
    interp = tfedge.Interpreter(result.output, backend="ai_edge_litert")
    assert [s.name for s in interp.input_specs()] == ["image"]
    got = interp.run(eval_x)["output_0"]  # a batch on a batch-free model: resized
    np.testing.assert_allclose(got, cnn.predict(eval_x, verbose=0), atol=1e-5)


def test_tf_function_source(tmp_path: Path) -> None:
    @tf.function(
        input_signature=[tf.TensorSpec((None, 4), tf.float32, name="a"), tf.TensorSpec((None, 4), tf.float32, name="b")]
    )
    def fn(a: Any, b: Any) -> Any:
        return {"sum": a + 2.0 * b, "prod": tf.reduce_sum(a * b, axis=1)}

    rng = np.random.default_rng(0)
    data = {"a": rng.random((40, 4), np.float32), "b": rng.random((40, 4), np.float32)}
    result = convert(fn, tmp_path / "f.tflite", quantize="int8", calibration=data, progress=False)
    assert result.source_kind == "function"
    assert [o.name for o in result.outputs] == ["prod", "sum"]
    assert all(o.cosine > 0.999 for o in result.outputs)
    out = tfedge.Interpreter(result.output, backend="ai_edge_litert").run({"a": data["a"][:1], "b": data["b"][:1]})
    np.testing.assert_allclose(out["sum"], data["a"][:1] + 2 * data["b"][:1], atol=0.05)


def test_tf_function_without_signature_is_refused(tmp_path: Path) -> None:
    from tfedge.errors import ConversionError

    @tf.function
    def fn(x: Any) -> Any:
        return x + 1.0

    with pytest.raises(ConversionError, match="has no input_signature"):
        convert(fn, tmp_path / "f.tflite")
    assert not (tmp_path / "f.tflite").exists()


def test_iterable_calibration_like_a_representative_dataset(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    def dataset() -> Any:
        for x in calib[:30]:
            yield [x[None]]

    result = convert(saved_model, tmp_path / "m.tflite", quantize="int8", calibration=dataset(), progress=False)
    assert result.eval_samples == 6 and result.outputs[0].cosine > 0.99


def test_edgetpu_target_is_integer_only_with_a_static_batch(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    result = convert(saved_model, tmp_path / "tpu.tflite", target="edgetpu", calibration=calib, progress=False)
    assert result.options["quantize"] == "int8" and result.options["io_type"] == "uint8"
    (spec,) = tfedge.Interpreter(result.output, backend="ai_edge_litert").input_specs()
    assert spec.dtype == np.uint8 and spec.shape_signature == (1, 8, 8, 1)
    assert {o.name for o in result.operators} <= {"CONV_2D", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX", "QUANTIZE"}
    if result.edgetpu_model is None:
        assert any("edgetpu_compiler -s -o" in w for w in result.warnings)


def test_explicit_flags_override_the_target(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    result = convert(saved_model, tmp_path / "gpu.tflite", target="gpu", validate=False)
    assert result.options["quantize"] == "float16"
    result = convert(saved_model, tmp_path / "gpu32.tflite", target="gpu", quantize="none", validate=False)
    assert result.options["quantize"] == "none"


def test_select_tf_ops_pass_with_a_warning_when_allowed(flex_function: Any, tmp_path: Path) -> None:
    result = convert(flex_function, tmp_path / "flex.tflite", allow_select_tf_ops=True)
    assert result.non_builtin_ops == ("FlexMatrixDeterminant",)
    assert any("Select TF ops FlexMatrixDeterminant" in w for w in result.warnings)
    # No installed runtime has the Flex delegate (not even TF 2.21's tf.lite): nothing to compare.
    assert result.outputs == ()
    assert any(w.startswith("the converted model could not be run here") for w in result.warnings)
    assert result.runtimes and not any(r.ok for r in result.runtimes)
    assert Path(result.output).is_file()
