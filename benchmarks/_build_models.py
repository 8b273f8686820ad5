"""Build the benchmark models with TensorFlow (run by models.build_models in a subprocess).

Usage: python benchmarks/_build_models.py WORK_DIR --fingerprint F [--no-mobilenet]

Writes WORK_DIR/{digits,mobilenet_v2}-{float32,float16,dynamic,int8}.tflite, each
atomically, then WORK_DIR/manifest.json (versions, Keras accuracy of the digits CNN).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from _timing import script_dir_last

script_dir_last(__file__)

import numpy as np  # noqa: E402
from models import MODES, digits_split, model_name  # noqa: E402

from tfedge.converters.example import train_cnn  # noqa: E402
from tfedge._files import write_atomically  # noqa: E402

import tensorflow as tf  # noqa: E402  (this script exists to import it, away from the measuring process)

keras = tf.keras


def _digits_model() -> tuple[Any, np.ndarray, float]:
    """A small CNN trained a few epochs on the digits; its calibration data and test accuracy."""
    x_train, y_train, x_test, y_test = digits_split()
    model = train_cnn(x_train, y_train)  # the example's CNN, trained as the example trains it
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
    return model, x_train[:200], accuracy


def _mobilenet() -> tuple[Any, np.ndarray]:
    """MobileNetV2 with random weights (nothing is downloaded) and random calibration images."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 224, 224, 3)).astype(np.float32)
    return model, calibration


def _convert(model: Any, mode: str, calibration: np.ndarray) -> bytes:
    """One TFLite conversion of a Keras model in ``mode``."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        def samples() -> Iterator[list[np.ndarray]]:
            for x in calibration:
                yield [x[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("--fingerprint", required=True)
    parser.add_argument("--no-mobilenet", action="store_true")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"tensorflow": tf.__version__, "keras": keras.__version__, "seconds": {}}
    builders: list[tuple[str, Callable[[], tuple[Any, ...]]]] = [("digits", _digits_model)]
    if not args.no_mobilenet:
        builders.append(("mobilenet_v2", _mobilenet))
    for name, build in builders:
        start = time.perf_counter()
        model, calibration, *extra = build()
        if extra:
            record["digits_keras_accuracy"] = extra[0]
        for mode in MODES:
            write_atomically(args.work_dir / f"{model_name(name, mode)}.tflite", _convert(model, mode, calibration))
        record["seconds"][name] = round(time.perf_counter() - start, 1)
    record["fingerprint"] = args.fingerprint
    write_atomically(args.work_dir / "manifest.json", json.dumps(record, indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
