"""What verify_model costs next to loading the model in the backend.

For each model: the median time of ``verify_model`` and of the backend's
``Interpreter(model_content=...)`` + ``allocate_tensors()``, and their ratio. Models are the
LiteRT test files the backend loads, plus a Keras MobileNetV2 (weights=None, float32, about
14 MB) converted with TensorFlow in a child process when TensorFlow is installed; the
.tflite is cached in the temp directory. Run from the repository root::

    python benchmarks/verify_cost.py [--backend tflite_runtime] [--repeat 20]

After the table, the MobileNetV2 row is measured end to end as apps load it,
``tfedge.Interpreter(path)`` with ``verify`` on and off, interleaved: with the file in
the page cache (a reload), and, when run as root on Linux, after dropping the page cache
before each load (the first load after a boot, where the file is read from storage).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "tests" / "data" / "litert-testdata"
MOBILENET = Path(tempfile.gettempdir()) / "tfedge-bench" / "mobilenet_v2_float32.tflite"
BACKENDS = {
    "tflite_runtime": "tflite_runtime.interpreter",
    "ai_edge_litert": "ai_edge_litert.interpreter",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Print the cost table; exit 1 if the verifier rejects a model the backend loads."""
    from tfedge.errors import ModelError
    from tfedge.verify import verify_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="tflite_runtime")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--build-mobilenet", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_mobilenet:
        build_mobilenet(args.build_mobilenet)
        return 0
    interpreter = importlib.import_module(BACKENDS[args.backend]).Interpreter

    models = sorted(MODELS_DIR.glob("*.tflite"))
    if not MOBILENET.exists():
        # TensorFlow in a child: it must not share a process with the TFLite backend.
        print("building MobileNetV2 with TensorFlow...", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--build-mobilenet", str(MOBILENET)],
                       check=False, capture_output=True)
    if MOBILENET.exists():
        models.append(MOBILENET)
    else:
        print("TensorFlow is not installed: no MobileNetV2 row", file=sys.stderr)

    def load(data: bytes) -> None:
        interpreter(model_content=data).allocate_tensors()

    print(f"{'model':<40}{'KiB':>8}{'verify ms':>11}{'load ms':>10}{'ratio':>8}")
    failed = False
    for path in models:
        data = path.read_bytes()
        try:
            load(data)
        except (ValueError, RuntimeError):
            continue  # the backend refuses it: nothing to compare
        try:
            verify = median_seconds(lambda: verify_model(data), args.repeat)
        except ModelError as exc:
            print(f"{path.name}: rejected: {exc}", file=sys.stderr)
            failed = True
            continue
        loading = median_seconds(lambda: load(data), max(3, args.repeat // 4))
        print(f"{path.name:<40}{len(data) / 1024:>8.1f}{verify * 1e3:>11.3f}"
              f"{loading * 1e3:>10.3f}{verify / loading:>8.1%}")
    if MOBILENET.exists():
        content = MOBILENET.read_bytes()
        end_to_end(MOBILENET, args.backend, args.repeat, median_seconds(lambda: verify_model(content), args.repeat))
    return 1 if failed else 0


def _drop_page_cache() -> bool:
    """Empty Linux's page cache (root only); False when this process may not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def end_to_end(path: Path, backend: str, repeat: int, verify_s: float) -> None:
    """``tfedge.Interpreter(path)`` with and without verify, warm and (as root) cold.

    The share quoted is ``verify_s`` (timed on its own, precise) over the load without
    verify; the measured difference is printed too, but cold loads are too noisy for it.
    """
    import tfedge

    def load(verify: bool) -> None:
        tfedge.Interpreter(path, backend=backend, verify=verify)

    for cold in (False, True):
        if cold and not _drop_page_cache():
            print("cold loads not measured: dropping the page cache needs root", file=sys.stderr)
            return
        times: dict[bool, list[float]] = {False: [], True: []}
        load(False)
        for _ in range(max(3, repeat // 2)):
            for verify in (False, True):
                if cold:
                    _drop_page_cache()
                start = time.perf_counter()
                load(verify)
                times[verify].append(time.perf_counter() - start)
        off, on = (statistics.median(times[v]) for v in (False, True))
        print(f"tfedge.Interpreter({path.name}) on {backend}, page cache {'dropped' if cold else 'warm'}: "
              f"verify=False {off * 1e3:.2f} ms, verify=True {on * 1e3:.2f} ms; verify {verify_s * 1e3:.2f} ms "
              f"= {verify_s / off:.1%} of the load")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the tfedge of this checkout
    raise SystemExit(main())
