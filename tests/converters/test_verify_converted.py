"""verify_model accepts what TensorFlow's converter writes (float32, int8, LSTM, MobileNetV2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf

from tfedge.verify import verify_model


def _small_cnn() -> tf.keras.Model:
    """A small conv net on 32x32x3 images."""
    return tf.keras.Sequential([
        tf.keras.Input((32, 32, 3)),
        tf.keras.layers.Conv2D(8, 3, activation="relu"),
        tf.keras.layers.DepthwiseConv2D(3, activation="relu6"),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])


def _lstm() -> tf.keras.Model:
    """An LSTM over 12 steps of 6 features."""
    return tf.keras.Sequential([
        tf.keras.Input((12, 6), batch_size=1),
        tf.keras.layers.LSTM(16),
        tf.keras.layers.Dense(3),
    ])


def _float32(model: tf.keras.Model) -> bytes:
    """Convert without optimizations."""
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _dynamic_range(model: tf.keras.Model) -> bytes:
    """int8 weights, float activations."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _int8(model: tf.keras.Model) -> bytes:
    """Full-integer quantization with int8 inputs and outputs."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    shape = (1, *model.input_shape[1:])
    converter.representative_dataset = lambda: (
        [rng.random(shape, dtype=np.float32)] for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _check(data: bytes) -> None:
    """The converted model passes the verifier and loads in TensorFlow's interpreter."""
    summary = verify_model(data)
    tf.lite.Interpreter(model_content=data).allocate_tensors()
    assert summary.num_tensors > 0 and summary.operator_counts


@pytest.mark.parametrize(
    ("build", "convert"),
    # Full-integer LSTM is left out: TensorFlow 2.21's calibrator crashes converting it.
    [(_small_cnn, _float32), (_small_cnn, _int8), (_lstm, _float32), (_lstm, _dynamic_range)],
    ids=["cnn-float32", "cnn-int8", "lstm-float32", "lstm-dynamic-range"],
)
def test_converted_keras_models_pass(
    build: Callable[[], tf.keras.Model], convert: Callable[[tf.keras.Model], bytes]
) -> None:
    _check(convert(build()))


def test_int8_model_reports_quantized_ops() -> None:
    summary = verify_model(_int8(_small_cnn()))
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(summary.op_versions)
    assert summary.op_versions["CONV_2D"] >= 3  # int8 kernels


def test_mobilenet_v2_passes() -> None:
    data = _float32(tf.keras.applications.MobileNetV2(weights=None))
    assert len(data) > 10_000_000
    _check(data)
