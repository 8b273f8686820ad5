"""Writes free_length_conv.tflite (run with TensorFlow installed; the file is committed).

A model of the class of openWakeWord's melspectrogram front end: audio of any length in
(input shape signature ``[-1, -1]``), 400-sample frames every 160 samples out. Its
placeholder shape ``[1, 1]`` cannot be allocated (a frame longer than the audio):
tflite_runtime 2.14 says ``BytesRequired number of elements overflowed``, ai_edge_litert's
XNNPACK ``failed to reshape``. Raw backends run it after ``resize_tensor_input``.

Usage: python tests/data/runtime-cases/make_free_length_conv.py OUT.tflite
"""

import sys

import numpy as np
import tensorflow as tf

kernel = tf.constant(np.random.default_rng(0).standard_normal((1, 400, 1, 8)).astype(np.float32) * 0.1)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")])
def frames(audio: tf.Tensor) -> dict:
    x = tf.expand_dims(tf.expand_dims(audio, 1), -1)  # (batch, 1, n, 1)
    y = tf.nn.conv2d(x, kernel, strides=[1, 1, 160, 1], padding="VALID")  # (batch, 1, (n - 400) // 160 + 1, 8)
    return tf.nn.relu(y)


converter = tf.lite.TFLiteConverter.from_concrete_functions([frames.get_concrete_function()], frames)
with open(sys.argv[1], "wb") as f:
    f.write(converter.convert())
