"""What verify_model costs next to loading the model.

Two measurements, per installed backend:

1. Per model: the median time of ``verify_model`` and of the backend's own
   ``Interpreter(model_content=...)`` + ``allocate_tensors()`` from bytes already in memory,
   back to back in one process. Models: the LiteRT test files the backend loads, and a
   Keras MobileNetV2 (``weights=None``, float32, about 14 MB).
2. MobileNetV2 end to end, ``tfedge.Interpreter(path)`` with ``verify`` on and off, as an
   app loads it:

   - *first load*: the model's first load in a fresh process (the backend imported
     beforehand, so its import is not counted), file in the page cache; alternating
     verify off/on, one process each;
   - *first load, page cache dropped* (root on Linux only): the same after dropping the
     page cache, as after a boot;
   - *reload*: the same process loading it again and again, each Interpreter dropped
     before the next. The allocator then hands back the pages the last one freed, which
     makes this the cheapest load there is.

   The share quoted is verify's own time (measured alone, precise: in the first-load rows,
   its first call in a fresh process, which is slower) over the load with verify off; the
   measured difference on − off, noisier, is printed beside it.

Run from the repository root::

    python benchmarks/verify_cost.py [--backend NAME] [--repeat 20] [--processes 7] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _timing import ROOT, TEST_MODELS, script_dir_last, subprocess_env

script_dir_last(__file__)  # before tensorflow (--build-mobilenet) imports `packaging`

DEFAULT_MOBILENET = Path(tempfile.gettempdir()) / "tfedge-bench" / "mobilenet_v2_float32.tflite"
BACKENDS = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
}


def build_mobilenet(path: Path) -> None:
    """Convert a Keras MobileNetV2 (random weights) to float32 TFLite at `path`."""
    import tensorflow as tf

    from tfedge._files import write_atomically

    model = tf.keras.applications.MobileNetV2(weights=None)
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)  # a failed build leaves no half file


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` calls, after one warm-up call."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _drop_page_cache() -> bool:
    """Empty Linux's page cache (root only); False when this process may not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def _child(path: Path, backend: str, verify: bool) -> None:
    """In a fresh process: import everything, then time the model's first load (JSON)."""
    import tfedge
    from tfedge import _backend

    _backend.get_backend(backend)  # the backend's import is not part of a load
    start = time.perf_counter()
    interp = tfedge.Interpreter(path, backend=backend, verify=verify)
    seconds = time.perf_counter() - start
    first_verify = None
    if not verify:  # verify_model's first call in a process, slower than later ones
        from tfedge.verify import verify_model

        start = time.perf_counter()
        verify_model(interp.model_content)
        first_verify = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "first_verify": first_verify}))


def first_loads(path: Path, backend: str, processes: int, cold: bool) -> dict[str, float] | None:
    """Median first load in fresh processes, verify "off" and "on" alternating, and
    verify_model's first call in those processes ("first_verify"); None if `cold` and the
    page cache cannot be dropped."""
    times: dict[bool, list[float]] = {False: [], True: []}
    verifies: list[float] = []
    for _ in range(processes):
        for verify in (False, True):
            if cold and not _drop_page_cache():
                return None
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), backend, str(int(verify))],
                capture_output=True, text=True, check=True, env=subprocess_env(),
            ).stdout
            child = json.loads(out.strip().splitlines()[-1])
            times[verify].append(child["seconds"])
            if child["first_verify"] is not None:
                verifies.append(child["first_verify"])
    return {"off": statistics.median(times[False]), "on": statistics.median(times[True]),
            "first_verify": statistics.median(verifies)}


def reloads(path: Path, backend: str, repeat: int) -> dict[str, float]:
    """Median load of the same model again and again in this process, verify "off" and "on"."""
    import tfedge

    times: dict[bool, list[float]] = {False: [], True: []}
    tfedge.Interpreter(path, backend=backend, verify=False)
    for _ in range(max(3, repeat // 2)):
        for verify in (False, True):
            start = time.perf_counter()
            tfedge.Interpreter(path, backend=backend, verify=verify)
            times[verify].append(time.perf_counter() - start)
    return {"on" if v else "off": statistics.median(t) for v, t in times.items()}


def measure(backend: str, mobilenet: Path | None, repeat: int, processes: int) -> dict[str, Any]:
    """Everything this script measures on one backend, as plain data."""
    from tfedge.errors import ModelError
    from tfedge.verify import verify_model

    interpreter = importlib.import_module(BACKENDS[backend]).Interpreter

    def load(data: bytes) -> None:
        interpreter(model_content=data).allocate_tensors()

    paths = sorted(TEST_MODELS.glob("*.tflite")) + ([mobilenet] if mobilenet else [])
    models, rejected = [], []
    for path in paths:
        data = path.read_bytes()  # the last one, MobileNetV2's, is used again below
        try:
            load(data)
        except (ValueError, RuntimeError):
            continue  # the backend refuses it: nothing to compare
        try:
            verify = median_seconds(lambda: verify_model(data), repeat)
        except ModelError as exc:
            rejected.append(f"{path.name}: {exc}")
            continue
        loading = median_seconds(lambda: load(data), max(3, repeat // 4))
        models.append({"model": path.name, "bytes": len(data), "verify_s": verify, "load_s": loading})
    result: dict[str, Any] = {"backend": backend, "models": models, "rejected": rejected}
    if mobilenet:
        result["mobilenet"] = {
            "verify_s": median_seconds(lambda: verify_model(data), repeat),
            "first_load": first_loads(mobilenet, backend, processes, cold=False),
            "first_load_cold": first_loads(mobilenet, backend, processes, cold=True),
            "reload": reloads(mobilenet, backend, repeat),
        }
    return result


def _print(result: dict[str, Any]) -> None:
    """The human-readable report of one backend."""
    print(f"\n{result['backend']}: verify_model vs the backend's load from bytes in memory")
    print(f"{'model':<40}{'KiB':>8}{'verify ms':>11}{'load ms':>10}{'ratio':>8}")
    for m in result["models"]:
        print(f"{m['model']:<40}{m['bytes'] / 1024:>8.1f}{m['verify_s'] * 1e3:>11.3f}"
              f"{m['load_s'] * 1e3:>10.3f}{m['verify_s'] / m['load_s']:>8.1%}")
    for line in result["rejected"]:
        print(f"REJECTED (the backend loads it): {line}")
    mob = result.get("mobilenet")
    if not mob:
        return
    verify = mob["verify_s"]
    print(f"tfedge.Interpreter(MobileNetV2 float32) on {result['backend']}; verify_model alone "
          f"{verify * 1e3:.2f} ms")
    for key, label in (("first_load", "first load, page cache warm"),
                       ("first_load_cold", "first load, page cache dropped"),
                       ("reload", "reload in the same process")):
        times = mob[key]
        if times is None:
            print(f"  {label}: not measured (dropping the page cache needs root)")
            continue
        off, on = times["off"], times["on"]
        cost = times.get("first_verify", verify)
        print(f"  {label}: verify off {off * 1e3:.2f} ms, on {on * 1e3:.2f} ms (difference "
              f"{(on - off) * 1e3:+.2f} ms); verify {cost * 1e3:.2f} ms = {cost / off:.1%} of the load")


def main(argv: Sequence[str] | None = None) -> int:
    """Print (or emit as JSON) the cost tables; exit 1 if a model the backend loads is rejected."""
    from tfedge.cli import _whole_number
    from tfedge.errors import ModelError
    from tfedge.verify import verify_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), action="append",
                        help="backend to measure (repeatable; default: every installed one)")
    parser.add_argument("--repeat", type=_whole_number, default=20)
    parser.add_argument("--processes", type=_whole_number, default=7,
                        help="fresh processes per way for the first-load rows (default 7)")
    parser.add_argument("--mobilenet", type=Path, default=DEFAULT_MOBILENET,
                        help="the float32 MobileNetV2 .tflite; built with TensorFlow when missing")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--build-mobilenet", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_mobilenet:
        build_mobilenet(args.build_mobilenet)
        return 0
    if args.child:
        _child(Path(args.child[0]), args.child[1], args.child[2] == "1")
        return 0
    backends = args.backend or [b for b in BACKENDS if importlib.util.find_spec(b.split(".")[0])]
    if not backends:
        parser.error("no TFLite backend installed (ai-edge-litert or tflite-runtime)")
    mobilenet: Path | None = args.mobilenet
    if not mobilenet.exists():
        # TensorFlow in a child: it must not share a process with the TFLite backend.
        print("building MobileNetV2 with TensorFlow...", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--build-mobilenet", str(mobilenet)],
                       check=False, capture_output=True)
    if not mobilenet.exists():
        print("TensorFlow is not installed: no MobileNetV2 rows", file=sys.stderr)
        mobilenet = None
    else:
        try:  # before a backend loads it: a damaged file can crash tflite_runtime
            verify_model(mobilenet.read_bytes())
        except ModelError as exc:
            parser.error(f"--mobilenet {mobilenet}: {exc}")
    # One child per backend: tflite_runtime and ai_edge_litert should not share a process.
    results = []
    for backend in backends:
        if len(backends) == 1:
            results.append(measure(backend, mobilenet, args.repeat, args.processes))
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--json", "--backend", backend, "--repeat", str(args.repeat),
             "--processes", str(args.processes), "--mobilenet", str(args.mobilenet)],
            capture_output=True, text=True, check=True, env=subprocess_env(),
        ).stdout
        results.extend(json.loads(out))
    if args.json:
        print(json.dumps(results, default=str))
    else:
        for result in results:
            _print(result)
    return 1 if any(r["rejected"] for r in results) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the tfedge of this checkout
    raise SystemExit(main())
