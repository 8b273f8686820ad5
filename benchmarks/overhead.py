"""Per-call overhead of ``tfedge.Interpreter.run()`` against the backends' own APIs.

Three ways to run the same model with the same input, measured side by side in one
process, rounds interleaved so that machine noise hits all three alike:

- ``lean``: the backend's ``set_tensor`` / ``invoke`` / ``get_tensor`` loop with the
  tensor indices looked up once (the fastest an app can do with the public API);
- ``tfedge``: ``tfedge.Interpreter(...).run(x)``;
- ``runner``: the backend's ``get_signature_runner()`` (call by name, like ``run()``).

Usage: python benchmarks/overhead.py [MODEL ...] [--backend NAME] [--json]

The default is ``add.tflite`` from tests/data/litert-testdata. The targets (issue: "The runtime")
are run/lean <= 1.10 and runner/run >= 1.8 on a tiny model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from _timing import TEST_MODELS, interleave, script_dir_last

script_dir_last(__file__)  # before tensorflow (--backend tensorflow) imports `packaging`

import numpy as np  # noqa: E402

import tfedge  # noqa: E402
from tfedge import _backend  # noqa: E402


def measure(model: Path, backend: str, rounds: int = 31, calls: int = 2000) -> dict[str, float]:
    """Median seconds per call of the three ways, on one model and backend."""
    interp = tfedge.Interpreter(model, backend=backend, num_threads=1)
    raw = _backend.get_backend(backend).interpreter_class(model_path=str(model), num_threads=1)
    raw.allocate_tensors()
    rng = np.random.default_rng(0)
    specs = interp.input_specs()
    xs = [rng.random(s.shape).astype(s.dtype) if s.dtype.kind == "f" else
          rng.integers(-5, 5, s.shape).astype(s.dtype) for s in specs]
    in_idx = [d["index"] for d in raw.get_input_details()]
    out_idx = [d["index"] for d in raw.get_output_details()]
    # A signature runner holds a reference that makes the backend's invoke() refuse to
    # run ("at least 1 reference to internal data"), so it gets an interpreter of its own.
    raw2 = _backend.get_backend(backend).interpreter_class(model_path=str(model), num_threads=1)
    sig = raw2.get_signature_list()
    runner = raw2.get_signature_runner(next(iter(sig))) if len(sig) == 1 else None
    keys = [s.name for s in specs]

    def lean() -> object:
        for i, x in zip(in_idx, xs):
            raw.set_tensor(i, x)
        raw.invoke()
        return [raw.get_tensor(o) for o in out_idx]

    feed = xs[0] if len(xs) == 1 else xs
    ways: dict[str, Callable[[], object]] = {"lean": lean, "tfedge": lambda: interp.run(feed)}
    if runner is not None:
        named = dict(zip(keys, xs))
        ways["runner"] = lambda: runner(**named)
    return interleave(ways, rounds, calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=[TEST_MODELS / "add.tflite"])
    parser.add_argument("--backend", action="append", help="backend(s); default: all installed")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    backends = args.backend or [b for b in _backend.available_backends() if b != "tensorflow"]
    rows = []
    for model in args.models:
        for backend in backends:
            t = measure(model, backend, args.rounds, args.calls)
            row = {"model": model.name, "backend": backend, **{k: v * 1e6 for k, v in t.items()},
                   "run_vs_lean": t["tfedge"] / t["lean"]}
            if "runner" in t:
                row["runner_vs_run"] = t["runner"] / t["tfedge"]
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<24} {'backend':<15} {'lean us':>8} {'run us':>8} {'runner us':>10} "
          f"{'run/lean':>9} {'runner/run':>11}")
    for r in rows:
        runner = f"{r['runner']:10.2f}" if "runner" in r else f"{'-':>10}"
        ratio = f"{r['runner_vs_run']:11.2f}" if "runner_vs_run" in r else f"{'-':>11}"
        print(f"{r['model']:<24} {r['backend']:<15} {r['lean']:8.2f} {r['tfedge']:8.2f} {runner} "
              f"{r['run_vs_lean']:9.2f} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
