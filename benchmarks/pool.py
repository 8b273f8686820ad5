"""Throughput of ``tfedge.InterpreterPool`` against one Interpreter, per backend.

On a Keras MobileNetV2 (``weights=None``: random weights, nothing downloaded) converted
to full-integer int8 (random representative data) and to float32, three ways to push
the same batch of images through, measured side by side in one run with the rounds
interleaved, so that machine noise hits all of them alike:

- ``1x1t``: one Interpreter with ``num_threads=1``, calls one after another;
- ``1x2t``: one Interpreter with ``num_threads=2``, calls one after another;
- ``pool2``: ``InterpreterPool(size=2)`` (1 thread each), ``pool.map(images)``.

The models are built by TensorFlow in a child process (TensorFlow must not be imported
before tflite_runtime in one process) and cached in ``--cache`` (default: a directory
under the system temp dir), so later runs skip that step.

Usage: python benchmarks/pool.py [--backend NAME ...] [--rounds N] [--images N] [--json]

Target (issue "Delegates with fallback, thread safety, and parallel throughput"):
pool2 / 1x1t >= 1.7 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

MODELS = ("mobilenetv2_int8.tflite", "mobilenetv2_float32.tflite")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "tfedge-bench-cache"


def build_models(cache: Path, size: int) -> None:
    """Build and convert MobileNetV2 with TensorFlow (run in a child process)."""
    import tensorflow as tf  # only ever imported in the child process

    from tfedge._files import write_atomically

    cache.mkdir(parents=True, exist_ok=True)
    model = tf.keras.applications.MobileNetV2(weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(0)

    def representative():  # random calibration data: the weights are random too
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]

    for name in MODELS:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if "int8" in name:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        write_atomically(cache / f"{size}_{name}", converter.convert())


def ensure_models(cache: Path, size: int) -> list[Path]:
    """The cached .tflite files, built in a child process when missing."""
    paths = [cache / f"{size}_{name}" for name in MODELS]
    if not all(p.is_file() for p in paths):
        print(f"building MobileNetV2 ({size}x{size}) with TensorFlow into {cache} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, __file__, "--build-only", "--cache", str(cache), "--size", str(size)],
            check=True,
            stdout=sys.stderr,  # whatever TensorFlow prints must not mix with --json on stdout
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    return paths


def _seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(model: Path, backend: str, images: int, rounds: int) -> dict[str, float]:
    """Images per second of the three ways (median over interleaved rounds)."""
    import tfedge

    one = tfedge.Interpreter(model, backend=backend, num_threads=1)
    two = tfedge.Interpreter(model, backend=backend, num_threads=2)
    pool = tfedge.InterpreterPool(model, size=2, backend=backend)
    spec = one.input_specs()[0]
    rng = np.random.default_rng(0)
    batch = [rng.uniform(-1, 1, spec.shape).astype(np.float32) for _ in range(images)]
    ways: dict[str, Callable[[], object]] = {
        "1x1t": lambda: [one.run(x) for x in batch],
        "1x2t": lambda: [two.run(x) for x in batch],
        "pool2": lambda: list(pool.map(batch)),
    }
    for fn in ways.values():  # warm up (first calls allocate and pack weights)
        fn()
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        for name, fn in ways.items():
            times[name].append(_seconds(fn))
    pool.close()
    return {name: images / statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", help="backend(s); default: all installed")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the .tflite files are kept")
    parser.add_argument("--size", type=int, default=224, help="input image size (default 224)")
    parser.add_argument("--images", type=int, default=16, help="images per round (default 16)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_only:
        build_models(args.cache, args.size)
        return 0
    models = ensure_models(args.cache, args.size)
    from tfedge import _backend

    backends = args.backend or [b for b in _backend.available_backends() if b != "tensorflow"]
    rows = []
    for backend in backends:
        for model in models:
            row: dict[str, object] = {"model": model.name, "backend": backend}
            try:
                ips = measure(model, backend, args.images, args.rounds)
            except Exception as exc:  # noqa: BLE001 - a backend that cannot run a model is a row, not a crash
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            else:
                row.update({f"{k} img/s": v for k, v in ips.items()})
                row["pool2/1x1t"] = ips["pool2"] / ips["1x1t"]
                row["pool2/1x2t"] = ips["pool2"] / ips["1x2t"]
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    # The load average says whether the cores were free: with other work on them, no
    # parallel speedup can show.
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"cores available: {len(os.sched_getaffinity(0))}, load average (1/5/15 min) at the end: {load}, "
          f"images/round: {args.images}, rounds: {args.rounds}")
    print(f"{'model':<32} {'backend':<15} {'1x1t img/s':>10} {'1x2t img/s':>10} {'pool2 img/s':>11} "
          f"{'pool2/1x1t':>10} {'pool2/1x2t':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<32} {r['backend']:<15} n/a: {r['error']}")
            continue
        print(f"{r['model']:<32} {r['backend']:<15} {r['1x1t img/s']:10.1f} {r['1x2t img/s']:10.1f} "
              f"{r['pool2 img/s']:11.1f} {r['pool2/1x1t']:10.2f} {r['pool2/1x2t']:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
