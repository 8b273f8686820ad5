"""Per-call overhead of ``tfedge.Interpreter.run()`` against the backends' own APIs.

The ways to run the same model with the same inputs, measured side by side in one
process, rounds interleaved so that machine noise hits all of them alike:

- ``lean``: the backend's ``set_tensor`` / ``invoke`` / ``get_tensor`` loop with the
  tensor indices looked up once (the fastest an app can do with the public API);
- ``array``, ``list``, ``dict``: ``tfedge.Interpreter.run()`` with one array (one-input
  models), a list in input order, and ``{name: array}``;
- ``runner``: the backend's ``get_signature_runner()`` (call by name, like ``run(dict)``).

``--quantized MODEL`` adds the cost of quantizing inside ``run()``: a float32 input to a
full-int8 model against the same input already quantized to the model's int8.

Usage: python benchmarks/overhead.py [MODEL ...] [--backend NAME] [--quantized MODEL] [--json]

The defaults are ``add.tflite`` (one input) and ``multi_add.tflite`` (four inputs) from
tests/data/litert-testdata. The targets (issue "Runtime: right on every real model"):
every form of ``run()`` at most 1.10x the lean loop, the signature runner at least 1.8x
``run(dict)``, and quantizing inside ``run()`` at most 1.05x feeding int8.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from _timing import TEST_MODELS, interleave, script_dir_last

script_dir_last(__file__)  # before tensorflow (--backend tensorflow) imports `packaging`

import numpy as np  # noqa: E402

import tfedge  # noqa: E402
from tfedge import _backend  # noqa: E402
from tfedge.quant import quantize  # noqa: E402

FORMS = ("array", "list", "dict")


def _inputs(specs: Any) -> list[np.ndarray]:
    """Seeded inputs that fit ``specs`` (floats in [0, 1), small integers)."""
    rng = np.random.default_rng(0)
    return [rng.random(s.shape).astype(s.dtype) if s.dtype.kind == "f" else
            rng.integers(-5, 5, s.shape).astype(s.dtype) for s in specs]


def measure(model: Path, backend: str, rounds: int = 31, calls: int = 2000) -> dict[str, float]:
    """Median seconds per call of every way, on one model and backend."""
    interp = tfedge.Interpreter(model, backend=backend, num_threads=1)
    raw = _backend.get_backend(backend).interpreter_class(model_path=str(model), num_threads=1)
    raw.allocate_tensors()
    specs = interp.input_specs()
    xs = _inputs(specs)
    # input_specs() is in get_input_details() order, so the lean loop and run(list) agree.
    in_idx = [d["index"] for d in raw.get_input_details()]
    out_idx = [d["index"] for d in raw.get_output_details()]
    # A signature runner holds a reference that makes the backend's invoke() refuse to
    # run ("at least 1 reference to internal data"), so it gets an interpreter of its own.
    raw2 = _backend.get_backend(backend).interpreter_class(model_path=str(model), num_threads=1)
    sig = raw2.get_signature_list()
    runner = raw2.get_signature_runner(next(iter(sig))) if len(sig) == 1 else None
    named = {s.name: x for s, x in zip(specs, xs)}

    def lean() -> object:
        for i, x in zip(in_idx, xs):
            raw.set_tensor(i, x)
        raw.invoke()
        return [raw.get_tensor(o) for o in out_idx]

    ways: dict[str, Callable[[], object]] = {"lean": lean}
    if len(xs) == 1:
        ways["array"] = lambda: interp.run(xs[0])
    ways["list"] = lambda: interp.run(xs)
    ways["dict"] = lambda: interp.run(named)
    if runner is not None:
        ways["runner"] = lambda: runner(**named)
    return interleave(ways, rounds, calls)


def measure_quantized(model: Path, backend: str, rounds: int = 15, calls: int = 20) -> dict[str, float]:
    """Median seconds of ``run(float32)`` (quantized inside) and ``run(int8)`` on a full-int8 model."""
    interp = tfedge.Interpreter(model, backend=backend, num_threads=1)
    (spec,) = interp.input_specs()
    if spec.quantization is None:
        raise SystemExit(f"overhead.py: error: --quantized {model}: its input is not quantized")
    x = np.random.default_rng(0).uniform(-1, 1, spec.shape).astype(np.float32)
    q = quantize(x, spec.quantization, spec.dtype)
    ways = {"quantized": lambda: interp.run(q), "float": lambda: interp.run(x)}
    return interleave(ways, rounds, calls)


def rows_for(models: list[Path], backends: list[str], rounds: int, calls: int) -> list[dict[str, Any]]:
    """One row per model and backend: microseconds per way and the ratios the targets name."""
    rows = []
    for model in models:
        for backend in backends:
            t = measure(model, backend, rounds, calls)
            row: dict[str, Any] = {"model": model.name, "backend": backend, **{k: v * 1e6 for k, v in t.items()}}
            for form in FORMS:
                if form in t:
                    row[f"{form}_vs_lean"] = t[form] / t["lean"]
            if "runner" in t:
                row["runner_vs_dict"] = t["runner"] / t["dict"]
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path,
                        default=[TEST_MODELS / "add.tflite", TEST_MODELS / "multi_add.tflite"])
    parser.add_argument("--backend", action="append", help="backend(s); default: all installed")
    parser.add_argument("--quantized", type=Path, metavar="MODEL",
                        help="also time float32 vs int8 inputs on this full-int8 model")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    backends = args.backend or [b for b in _backend.available_backends() if b != "tensorflow"]
    rows = rows_for(args.models, backends, args.rounds, args.calls)
    quant_rows = []
    if args.quantized:
        for backend in backends:
            t = measure_quantized(args.quantized, backend)
            quant_rows.append({"model": args.quantized.name, "backend": backend, "int8_ms": t["quantized"] * 1e3,
                               "float_ms": t["float"] * 1e3, "float_vs_int8": t["float"] / t["quantized"]})
    if args.json:
        print(json.dumps({"forms": rows, "quantized": quant_rows}, indent=2))
        return 0

    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        return format(row[key], fmt) if key in row else "-"

    print(f"{'model':<18} {'backend':<15} {'lean us':>8} {'array':>8} {'list':>8} {'dict':>8} {'runner':>8}"
          f" {'array/lean':>10} {'list/lean':>9} {'dict/lean':>9} {'runner/dict':>11}")
    for r in rows:
        print(f"{r['model']:<18} {r['backend']:<15} {r['lean']:8.2f} {cell(r, 'array', '8.2f'):>8} "
              f"{r['list']:8.2f} {r['dict']:8.2f} {cell(r, 'runner', '8.2f'):>8} "
              f"{cell(r, 'array_vs_lean', '10.2f'):>10} {r['list_vs_lean']:9.2f} {r['dict_vs_lean']:9.2f} "
              f"{cell(r, 'runner_vs_dict', '11.2f'):>11}")
    for r in quant_rows:
        print(f"\n{r['model']} {r['backend']}: run(int8) {r['int8_ms']:.2f} ms, run(float32) {r['float_ms']:.2f} ms "
              f"(quantized inside run): {r['float_vs_int8']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
