"""Throughput of tfedge on Ray Data (1 and 2 actors) next to InterpreterPool and one Interpreter.

Same model, same rows, measured side by side in one run with the rounds interleaved, so
that machine noise hits every way alike:

- ``interpreter``: one ``tfedge.Interpreter`` (``num_threads=1``), rows one after another;
- ``pool2``: ``tfedge.InterpreterPool(model, size=2).map(rows)`` (1 thread each);
- ``ray1`` / ``ray2``: ``ds.map_batches(tfedge.ray.Predictor, ...)`` with 1 or 2 actors
  (``num_cpus=1`` each, so 1 kernel thread each) on a local Ray cluster of 2 CPUs, over a
  materialized ``ray.data.from_numpy(rows)``, the outputs consumed with ``iter_batches``.

A Ray round starts a new actor pool, as every Ray job does, so its rows/s include the
actors' start-up and the model load; ``steady rows/s`` leaves out everything before the
first output batch arrived (rows after it / time after it). Ray's own start (``ray.init``)
is not counted. Every way's outputs are checked against the single Interpreter's.

Needs ``pip install "tfedge[ray]"`` (a venv of its own: Ray brings numpy 2). The model:
``--model PATH``; by default MediaPipe's face landmark model (192x192x3 in, 1404 floats
out, about 6 ms a call on one core) from an installed ``mediapipe`` package.

Usage: python benchmarks/ray_throughput.py [--model PATH] [--rows N] [--rounds N] [--batch-size N] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from _timing import script_dir_last

WAYS = ("interpreter", "pool2", "ray1", "ray2")
FACE_LANDMARK = Path("modules") / "face_landmark" / "face_landmark.tflite"


def default_model() -> Optional[Path]:
    """face_landmark.tflite inside an installed mediapipe package (found without importing it)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / FACE_LANDMARK
        if path.is_file():
            return path
    return None


def _ray_way(ds: Any, model: bytes, actors: int, batch_size: int) -> Callable[[], Tuple[float, float, int, np.ndarray]]:
    """One Ray round: (total seconds, seconds to the first output batch, rows after it, first output)."""
    import ray.data

    import tfedge.ray

    def run() -> Tuple[float, float, int, np.ndarray]:
        start = time.perf_counter()
        first_at, after, outputs = 0.0, 0, []
        pipeline = ds.map_batches(
            tfedge.ray.Predictor,
            fn_constructor_kwargs={"model": model, "keep": ["id"]},
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            batch_size=batch_size,
        )
        for batch in pipeline.iter_batches(batch_size=None, batch_format="numpy"):
            if not first_at:
                first_at = time.perf_counter() - start
            else:
                after += len(batch["id"])
            outputs.append(batch)
        total = time.perf_counter() - start
        ids = np.concatenate([b["id"] for b in outputs])
        first_output = next(k for k in outputs[0] if k != "id")
        values = np.concatenate([b[first_output] for b in outputs])[np.argsort(ids)]
        return total, first_at, after, values

    return run


def measure(model_path: Path, rows: int, rounds: int, batch_size: int) -> Dict[str, Dict[str, float]]:
    """Rows per second of every way: median over the rounds, plus steady rows/s for Ray."""
    import ray
    import ray.data

    import tfedge

    model = model_path.read_bytes()
    one = tfedge.Interpreter(model, num_threads=1)
    spec = one.input_specs()[0]
    first_output = one.output_specs()[0].name
    x = np.random.default_rng(0).uniform(-1, 1, (rows, *spec.shape[1:])).astype(spec.dtype)
    singles = [x[i : i + 1] for i in range(rows)]
    reference = np.concatenate([one.run(s)[first_output] for s in singles])
    pool = tfedge.InterpreterPool(model, size=2)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.wait_for_min_actors_s = 120
    ds = ray.data.from_items([{"id": i, spec.name: x[i]} for i in range(rows)]).materialize()

    def local(fn: Callable[[], List[Dict[str, np.ndarray]]]) -> Callable[[], Tuple[float, float, int, np.ndarray]]:
        def run() -> Tuple[float, float, int, np.ndarray]:
            start = time.perf_counter()
            outs = fn()
            total = time.perf_counter() - start
            return total, 0.0, rows, np.concatenate([o[first_output] for o in outs])

        return run

    ways = {
        "interpreter": local(lambda: [one.run(s) for s in singles]),
        "pool2": local(lambda: list(pool.map(singles))),
        "ray1": _ray_way(ds, model, 1, batch_size),
        "ray2": _ray_way(ds, model, 2, batch_size),
    }
    totals: Dict[str, List[float]] = {k: [] for k in ways}
    steady: Dict[str, List[float]] = {k: [] for k in ways}
    for fn in ways.values():  # warm-up (and the output check)
        values = fn()[3]
        np.testing.assert_array_equal(values.reshape(reference.shape), reference)
    for _ in range(rounds):
        for name, fn in ways.items():
            total, first_at, after, _ = fn()
            totals[name].append(rows / total)
            steady[name].append(after / (total - first_at) if total > first_at else float("nan"))
    pool.close()
    ray.shutdown()
    return {
        name: {"rows/s": statistics.median(totals[name]), "steady rows/s": statistics.median(steady[name])}
        for name in ways
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .tflite model (default: mediapipe's face_landmark.tflite)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=100, help="rows per map_batches call (default 100)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = parser.parse_args(argv)
    model = args.model or default_model()
    if model is None:
        parser.error("no --model given and no mediapipe package installed: pass --model PATH to a .tflite file")
    if importlib.util.find_spec("ray") is None:
        print('Ray is not installed here: pip install "tfedge[ray]" (in a venv of its own).', file=sys.stderr)
        return 1
    for name in ("rows", "rounds", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    result = measure(model, args.rows, args.rounds, args.batch_size)
    base = result["interpreter"]["rows/s"]
    if args.json:
        print(json.dumps({"model": str(model), "rows": args.rows, "rounds": args.rounds,
                          "batch_size": args.batch_size, "ways": result}, indent=2))
        return 0
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"model: {model.name}, rows/round: {args.rows}, rounds: {args.rounds}, batch size: {args.batch_size}, "
          f"cores available: {len(os.sched_getaffinity(0))}, load average (1/5/15 min) at the end: {load}")
    print(f"{'way':<12} {'rows/s':>9} {'steady rows/s':>14} {'vs interpreter':>15}")
    for name, r in result.items():
        steady = "" if name in ("interpreter", "pool2") else f"{r['steady rows/s']:.1f}"
        print(f"{name:<12} {r['rows/s']:9.1f} {steady:>14} {r['rows/s'] / base:14.2f}x")
    return 0


if __name__ == "__main__":
    script_dir_last(__file__)
    sys.exit(main())
