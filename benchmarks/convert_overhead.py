"""Conversion overhead of ``converters.convert()`` against a bare ``TFLiteConverter`` run.

Both convert the same SavedModel with the same settings (and, for int8, the same
calibration samples) and write the file; ``convert`` runs with ``validate=False`` so
the report's extra work (reference runs, runtime probes) is not counted. Rounds are
interleaved so machine noise hits both alike; the medians and their ratio are printed.
The target (issue "Converters") is convert/bare <= 1.2.

Usage: python benchmarks/convert_overhead.py [--rounds N] [--mobilenet] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import tflite_runtime.interpreter  # noqa: F401 - before TensorFlow (see the README's facts)

from tfedge.converters import convert
from tfedge.converters._tf import captured_native_output, tf


def bare(saved_model: Path, output: Path, mode: str, calibration: np.ndarray) -> None:
    """What a user writes by hand: TFLiteConverter with the mode's settings, then write the file."""
    t = tf()
    converter = t.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if mode != "none":
        converter.optimizations = [t.lite.Optimize.DEFAULT]
    if mode == "int8":
        converter.representative_dataset = lambda: ({"image": calibration[i : i + 1]} for i in range(len(calibration)))
    output.write_bytes(converter.convert())


def ours(saved_model: Path, output: Path, mode: str, calibration: np.ndarray) -> None:
    """converters.convert with validation off (the report's comparison is extra work)."""
    convert(saved_model, output, quantize=mode, calibration=calibration, calibration_samples=len(calibration),
            validate=False, overwrite=True, progress=False)


def _time(fn: Callable[[], Any]) -> float:
    """Seconds one call takes (native converter output swallowed)."""
    start = time.perf_counter()
    with captured_native_output():
        fn()
    return time.perf_counter() - start


def measure(saved_model: Path, mode: str, calibration: np.ndarray, rounds: int, out: Path) -> dict[str, float]:
    """Median seconds of both ways over interleaved rounds (after one warm-up each)."""
    ways = {"bare": bare, "convert": ours}
    for name, fn in ways.items():  # warm-up: first conversions pay for lazy imports and tracing
        _time(lambda: fn(saved_model, out / f"{name}.tflite", mode, calibration))
    times: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(rounds):
        order = list(ways) if r % 2 == 0 else list(reversed(ways))
        for name in order:
            times[name].append(_time(lambda: ways[name](saved_model, out / f"{name}.tflite", mode, calibration)))
    result = {f"{name}_s": statistics.median(v) for name, v in times.items()}
    result["ratio"] = result["convert_s"] / result["bare_s"]
    return result


def _digits_cnn(path: Path) -> Path:
    """The example's digits CNN (untrained weights suffice for timing) as a SavedModel."""
    from tfedge.converters.example import digits_cnn

    digits_cnn().export(str(path), verbose=False)
    return path


def _mobilenet(path: Path) -> Path:
    """Keras MobileNetV2(weights=None) with its input named 'image'."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((224, 224, 3), name="image")
    model = keras.Model(inp, keras.applications.MobileNetV2(weights=None)(inp))
    model.export(str(path), verbose=False)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per (model, mode)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mobilenet", action="store_true", help="also MobileNetV2 (224x224; slow)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    tf()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfedge-bench-") as tmp:
        root = Path(tmp)
        models = [("digits_cnn", _digits_cnn(root / "digits"), (8, 8, 1), 100)]
        if args.mobilenet:
            models.append(("mobilenet_v2", _mobilenet(root / "mobilenet"), (224, 224, 3), 16))
        for name, path, shape, samples in models:
            calibration = rng.random((samples, *shape)).astype(np.float32)
            rounds = args.rounds if name == "digits_cnn" else max(2, args.rounds // 2)
            for mode in ("none", "dynamic", "int8"):
                row = {"model": name, "mode": mode, **measure(path, mode, calibration, rounds, root)}
                rows.append(row)
                if not args.json:
                    print(f"{name:<13} {mode:<8} bare {row['bare_s']:7.3f} s   convert {row['convert_s']:7.3f} s   "
                          f"ratio {row['ratio']:.3f}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    worst = max(r["ratio"] for r in rows)
    print(f"worst ratio {worst:.3f} (target <= 1.2)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
