"""Time models on several backends side by side in a process of its own (for the backends table).

Usage: python benchmarks/_bench_worker.py --backends A,B --rounds R --calls C MODEL...

For each model, one ``tfedge.Interpreter`` (1 thread) per backend runs the same seeded
random input (in the model's own input types), the backends interleaved round by round.
Prints JSON ``{model: {backend: median seconds per call, or {"error": message}}}``.
tflite_runtime and tensorflow cannot share a process (importing TensorFlow breaks
tflite_runtime), so the table runs this twice: ai_edge_litert with each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from _timing import interleave, script_dir_last

script_dir_last(__file__)

import numpy as np  # noqa: E402

import tfedge  # noqa: E402
from tfedge._inputs import random_input  # noqa: E402
from tfedge.errors import TfedgeError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--backends", required=True, help="comma-separated backend names")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args(argv)
    result: dict[str, dict[str, Any]] = {}
    for model in args.models:
        row: dict[str, Any] = {}
        ways: dict[str, Callable[[], object]] = {}
        for backend in args.backends.split(","):
            try:
                interp = tfedge.Interpreter(model, backend=backend, num_threads=1)
                rng = np.random.default_rng(0)
                feed = [random_input(spec, rng) for spec in interp.input_specs()]
                interp.run(feed)
            except TfedgeError as exc:
                row[backend] = {"error": str(exc)}
                continue
            ways[backend] = lambda i=interp, f=feed: i.run(f)
        row.update(interleave(ways, args.rounds, args.calls) if ways else {})
        result[str(model)] = row
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
