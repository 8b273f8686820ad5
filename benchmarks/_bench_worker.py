"""Benchmark models with one backend in a process of its own, for tables that compare backends.

Usage: python benchmarks/_bench_worker.py --backend NAME [--threads N] [--runs N] MODEL...

Prints a JSON list: ``tfedge.bench.BenchResult.to_dict()`` per model, or
``{"model": ..., "error": message}`` when the backend cannot load or run it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _timing import script_dir_last

script_dir_last(__file__)

from tfedge.bench import benchmark  # noqa: E402
from tfedge.errors import TfedgeError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        try:
            rows.append(benchmark(model, runs=args.runs, warmup=args.warmup, threads=args.threads,
                                  backend=args.backend).to_dict())
        except TfedgeError as exc:
            rows.append({"model": str(model), "error": str(exc)})
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
