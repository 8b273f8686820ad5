"""TensorFlow converter failures translated: one line in the user's terms, TensorFlow's text behind --verbose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfedge.converters import convert
from tfedge.converters.cli import main
from tfedge.converters.diagnose import translate
from tfedge.converters.config import ConvertOptions, resolve_options
from tfedge.errors import ConversionError

tf = pytest.importorskip("tensorflow")

X = np.random.default_rng(0).random((20, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def sin_function() -> Any:
    """SIN has float and int8 kernels in TFLite, but no int16x8 one, and integer-only keeps it float."""

    @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32, name="x")])
    def sin(x: Any) -> Any:
        return {"y": tf.sin(x) * 2.0}

    return sin


@pytest.fixture(scope="module")
def branch_function() -> Any:
    """An IF whose true branch only inputs summing above 100 take (calibration never does)."""
    w = tf.constant(np.random.default_rng(1).random((4, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32, name="x")])
    def branch(x: Any) -> Any:
        big = tf.reduce_sum(x) > 100.0
        return {"y": tf.cond(big, lambda: tf.nn.relu(tf.matmul(x, w) * 3.0), lambda: tf.matmul(x, w))}

    return branch


def test_no_int16x8_kernel(sin_function: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConversionError) as info:
        convert(sin_function, tmp_path / "m.tflite", calibration=X, quantize="int16x8", progress=False)
    assert str(info.value).splitlines()[0] == (
        "--quantize int16x8: TFLite has no int16x8 kernel for SIN. Use --quantize int8 (which keeps SIN in "
        "float32 with float inputs/outputs), dynamic or float16."
    )
    assert "Quantization to 16x8-bit not yet supported for op: 'SIN'" in info.value.converter_text


def test_integer_only_model_with_a_float_op(sin_function: Any, tmp_path: Path) -> None:
    with pytest.raises(ConversionError) as info:
        convert(sin_function, tmp_path / "m.tflite", calibration=X, quantize="int8", io_type="int8", progress=False)
    assert str(info.value).splitlines()[0] == (
        "--io-type int8: TFLite has no int8 kernel for SIN, so the integer-only model would still compute it "
        "in float32 (tensor 'Sin'). Use --io-type float32 to accept the float fallback, or replace the op."
    )
    assert not (tmp_path / "m.tflite").exists()
    # With float IO the float fallback is what the user asked for: no error.
    assert convert(sin_function, tmp_path / "f.tflite", calibration=X, quantize="int8", progress=False).passed


def test_calibration_that_never_reaches_a_branch(branch_function: Any, tmp_path: Path) -> None:
    with pytest.raises(ConversionError) as info:
        convert(branch_function, tmp_path / "m.tflite", calibration=X, quantize="int8", io_type="int8", progress=False)
    first = str(info.value).splitlines()[0]
    assert first.startswith("--io-type int8: calibration never reached branch 'cond_true_")
    assert first.endswith(
        "so its ops (BATCH_MATMUL, MUL) have no activation ranges and stay float32 in an integer-only model. "
        "Add calibration samples that take that branch."
    )
    result = convert(branch_function, tmp_path / "f.tflite", calibration=X, quantize="int8", progress=False)
    (warning,) = [w for w in result.warnings if "never reached" in w]
    assert warning.startswith("calibration never reached branch 'cond_true_") and warning.endswith(
        "(BATCH_MATMUL, MUL): with no activation ranges its ops stay float32; add calibration samples that take it"
    )


def test_dynamic_rnn_shape_names_the_layer() -> None:
    # TensorFlow 2.21's text for a Keras 3 LSTM with a free batch (a SavedModel the patch could not fix).
    text = (
        'loc(callsite(fused["TensorListReserve:", "functional_4_1/lstm_1/TensorArrayV2_1@__inference___call___709"] '
        "at ...)): error: 'tf.TensorListReserve' op requires element_shape to be static during TF Lite "
        "transformation pass"
    )
    error = translate(text, resolve_options(ConvertOptions()), "", "batch fixed to 1 in the SavedModel's signature")
    assert error is not None and str(error) == (
        "Layer 'lstm_1' cannot be converted: its recurrent loop needs a static batch dimension and still has a "
        "free one (batch fixed to 1 in the SavedModel's signature). Convert the .keras/.h5 file or the Keras "
        "model instead (tfedge traces it again with --batch 1), re-export with model.export(DIR, "
        "input_signature=[tf.TensorSpec((1, ...), ...)]), or build the layer with unroll=True."
    )


def test_verbose_prints_tensorflows_text(sin_function: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sm"
    holder = tf.Module()
    holder.fn = sin_function
    tf.saved_model.save(holder, str(path), signatures={"serving_default": sin_function.get_concrete_function()})
    np.save(tmp_path / "x.npy", X)
    argv = [str(path), "-o", str(tmp_path / "m.tflite"), "--quantize", "int16x8", "--calibration", str(tmp_path / "x.npy"), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "TensorFlow's converter said" not in err
    assert err.strip().splitlines()[-1].startswith("tfedge-convert: error: --quantize int16x8: TFLite has no int16x8 kernel for SIN.")
    assert main(argv + ["--verbose"]) == 1
    err = capsys.readouterr().err
    assert "TensorFlow's converter said:\nQuantization to 16x8-bit not yet supported for op: 'SIN'." in err
