"""Table 3: the same models on ai_edge_litert, tflite_runtime and tf.lite."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from _timing import run_json
from models import MODES, model_name
from tables import Context, Section, markdown_table, ms, ratio

TITLE = "Backends: ai_edge_litert vs tflite_runtime vs tf.lite"
BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_WORKER = Path(__file__).resolve().parents[1] / "_bench_worker.py"
_OP_VERSION = re.compile(r"needs (\w+) version (\d+)")


def table(ctx: Context) -> Section:
    """Median latency per backend and model, each backend in a fresh process, in rounds."""
    models = ctx.models()
    names = [model_name(f, m) for f in ("digits", "mobilenet_v2") for m in MODES if model_name(f, m) in models]
    rounds, runs = (1, 10) if ctx.quick else (3, 30)
    medians: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], str] = {}
    info: dict[str, str] = {}
    for r in range(rounds):
        # A fresh process per backend (importing TensorFlow breaks tflite_runtime in-process);
        # the order turns each round so that no backend always runs first.
        for backend in BACKENDS[r % 3:] + BACKENDS[:r % 3]:
            out = run_json([str(_WORKER), "--backend", backend, "--threads", "1", "--runs", str(runs),
                            *(str(models[n]) for n in names)])
            for name, row in zip(names, out):
                if "error" in row:
                    errors[(name, backend)] = row["error"]
                else:
                    medians.setdefault((name, backend), []).append(row["median_ms"] / 1e3)
                    info[backend] = f"{backend} {row['backend_version']}"
    rows = []
    for name in names:
        base = medians.get((name, BACKENDS[0]))
        cells = [name]
        for backend in BACKENDS:
            values = medians.get((name, backend))
            if values is None:
                cells.append(_short(errors.get((name, backend), "not measured")))
                continue
            value = statistics.median(values)
            cells.append(ms(value) + (f" ({ratio(value, statistics.median(base))})" if base and backend != BACKENDS[0] else ""))
        rows.append(cells)
    body = markdown_table(["model", *(info.get(b, b) for b in BACKENDS)], rows) + (
        f"\n\nMedian latency of `tfedge.bench.benchmark()` (1 thread, {runs} timed runs after 3 warm-up), "
        f"each backend in a process of its own, {rounds} round(s) with the backends' order turned each "
        "round; the median over rounds. Ratios are against ai_edge_litert (above 1.00× is slower). "
        "The models are the ones of the formats table."
    )
    return Section(TITLE, body)


def _short(message: str) -> str:
    """A failure as a table cell: ``cannot load (FULLY_CONNECTED v12)``."""
    found = _OP_VERSION.search(message)
    if found:
        return f"cannot load ({found.group(1)} v{found.group(2)})"
    return "error: " + message[:60].replace("|", "/")
