"""The whole path on a built-in example: train, export, convert in four modes, compare, run.

``python -m tfedge.converters.example [--output-dir DIR]`` trains a small CNN on scikit-learn's
8x8 digits (no download), exports it as a SavedModel, converts it to float32, float16,
dynamic and int8 with :func:`tfedge.converters.convert`, prints accuracy, size and latency per
mode, and runs the int8 model with ``tfedge.Interpreter``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODES = ("none", "float16", "dynamic", "int8")


def digits(test_size: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as (N, 8, 8, 1) float32 in [0, 1]: ``x_train, x_test, y_train, y_test``, split
    with a fixed seed (80/20 by default), stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=0, stratify=y)
    return x_train, x_test, y_train, y_test


def digits_cnn() -> Any:
    """The digits CNN, untrained (seeded): input 'image' (8, 8, 1), softmax over 10 classes.

    The example trains it; the benchmarks time and convert the same architecture.
    """
    from ._tf import tf

    tf()
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax", name="scores"),
        ]
    )


def train_cnn(x: np.ndarray, y: np.ndarray, *, epochs: int = 20) -> Any:
    """:func:`digits_cnn` trained on ``x``, ``y`` (a few seconds on a laptop core)."""
    import keras

    model = digits_cnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def run(output_dir: Path, *, progress: bool = True) -> list[Any]:
    """Train, export, convert in every mode and print the comparison; returns the results."""
    import tfedge

    from .convert import convert

    x_train, x_test, y_train, y_test = digits()
    start = time.perf_counter()
    model = train_cnn(x_train, y_train)
    print(f"trained the digits CNN in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    saved_model = output_dir / "digits_savedmodel"
    model.export(str(saved_model), verbose=False)

    results = []
    for mode in MODES:
        result = convert(
            saved_model,
            output_dir / f"digits_{mode}.tflite",
            quantize=mode,
            calibration=x_train,
            eval_data=x_test,
            eval_labels=y_test,
            eval_samples=len(x_test),
            overwrite=True,
            progress=progress,
        )
        results.append(result)
    print(format_comparison(results))

    interp = tfedge.Interpreter(output_dir / "digits_int8.tflite")
    scores = interp.run(x_test[:8])
    predicted = next(iter(scores.values())).argmax(axis=1)
    print(f"\nint8 model through tfedge.Interpreter ({interp.backend}): predicted {predicted.tolist()}, "
          f"true {y_test[:8].tolist()}")
    return results


def format_comparison(results: Sequence[Any]) -> str:
    """One line per mode: accuracy of both models, drop, size and latency."""
    base = results[0]
    lines = [
        f"{'mode':<9} {'TF acc':>7} {'TFLite acc':>10} {'drop':>7} {'cosine':>9} {'size (bytes)':>13} "
        f"{'vs float32':>10} {'latency':>10}"
    ]
    for r in results:
        cos = min(o.cosine for o in r.outputs)
        lines.append(
            f"{r.options['quantize']:<9} {100 * r.reference_accuracy:>6.2f}% {100 * r.converted_accuracy:>9.2f}% "
            f"{r.accuracy_drop:>+7.2f} {cos:>9.6f} {r.size_after:>13,} {r.size_after / base.size_after:>9.2f}x "
            f"{r.latency_ms:>7.3f} ms"
        )
    lines.append(f"(accuracy on {results[0].eval_samples} held-out digits; drop in points vs TensorFlow; "
                 f"latency per image via tfedge/{results[0].latency_backend})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example."""
    parser = argparse.ArgumentParser(prog="python -m tfedge.converters.example", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, help="where the SavedModel and .tflite files go (default: a temporary directory, deleted)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        run(args.output_dir, progress=not args.no_progress)
        print(f"files in {args.output_dir}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="tfedge-example-") as tmp:
        run(Path(tmp), progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
