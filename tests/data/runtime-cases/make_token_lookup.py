"""Writes token_lookup.tflite (run with TensorFlow installed; the file is committed).

A text model's front end: token ids in (int32, ``[1, 4]``), an embedding table of 10 rows
looked up with GATHER, the mean over the tokens out. Ids at or above 10 make GATHER fail at
invoke ("gather index out of bounds") on both backends: what a vocabulary mismatch
between a tokenizer and its model does.

Usage: python tests/data/runtime-cases/make_token_lookup.py OUT.tflite
"""

import sys

import numpy as np
import tensorflow as tf

table = tf.constant(np.arange(20, dtype=np.float32).reshape(10, 2))


@tf.function(input_signature=[tf.TensorSpec([1, 4], tf.int32, name="tokens")])
def lookup(tokens: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.gather(table, tokens), axis=1)


converter = tf.lite.TFLiteConverter.from_concrete_functions([lookup.get_concrete_function()], lookup)
with open(sys.argv[1], "wb") as f:
    f.write(converter.convert())
