"""Writes audio_tones.tflite (run with TensorFlow installed; the file is committed).

An audio classifier of the class of BirdNET: one input of shape ``(None, 1600)`` (0.1 s at
16 kHz), logits out (no activation inside the model), 3 labels in its metadata: "low"
(250 Hz), "mid" (1 kHz), "high" (4 kHz). No training: the first layer projects each window
on a cosine and a sine at each frequency, the logit is the log of the energy found there.

Usage: python tests/data/tfedge/make_audio_tones.py OUT.tflite
"""

import sys

import numpy as np
import tensorflow as tf

from tfedge.converters import convert

RATE, WINDOW, TONES = 16000, 1600, (250.0, 1000.0, 4000.0)
t = np.arange(WINDOW) / RATE
basis = np.stack([f(2 * np.pi * hz * t) for hz in TONES for f in (np.cos, np.sin)], axis=1) / WINDOW
pairs = np.kron(np.eye(3), np.ones((2, 1)))  # (6, 3): cosine and sine energy of each tone

inputs = tf.keras.Input((WINDOW,), name="audio")
x = tf.keras.layers.Dense(6, use_bias=False, trainable=False, name="project")(inputs)
x = tf.keras.layers.Lambda(tf.square)(x)
x = tf.keras.layers.Dense(3, use_bias=False, trainable=False, name="energy")(x)
x = tf.keras.layers.Lambda(lambda e: tf.math.log(e + 1e-6), name="logits")(x)
model = tf.keras.Model(inputs, x)
model.get_layer("project").set_weights([basis.astype(np.float32)])
model.get_layer("energy").set_weights([pairs.astype(np.float32)])
convert(model, sys.argv[1], labels=["low", "mid", "high"],
        metadata={"name": "Audio tones", "description": "Which of 250 Hz, 1 kHz, 4 kHz a 0.1 s window holds (logits)."})
