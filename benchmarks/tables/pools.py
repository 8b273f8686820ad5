"""Table 6: threads and interpreter pools, measured by ``benchmarks/pool.py``."""

from __future__ import annotations

import os
from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table, ratio

TITLE = "Threads and pools"
_SCRIPT = Path(__file__).resolve().parents[1] / "pool.py"


def table(ctx: Context) -> Section:
    """Images/s of one interpreter at 1 and 2 threads and of a pool of 2, per model and backend."""
    size, images, rounds = (64, 4, 3) if ctx.quick else (224, 16, 9)
    try:
        rows = run_json([str(_SCRIPT), "--json", "--cache", str(ctx.work_dir / "pool"), "--size", str(size),
                         "--images", str(images), "--rounds", str(rounds)], timeout=1800)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return Section(TITLE, f"Not included: `benchmarks/{_SCRIPT.name} --json` failed ({first}).")
    body = []
    for r in rows:
        model = r["model"].removesuffix(".tflite").removeprefix(f"{size}_")
        if "error" in r:
            body.append([model, r["backend"], "n/a", "n/a", "n/a", r["error"], ""])
            continue
        one, two, pool = r["1x1t img/s"], r["1x2t img/s"], r["pool2 img/s"]
        body.append([model, r["backend"], f"{one:.1f}", f"{two:.1f}", f"{pool:.1f}",
                     ratio(pool, one), ratio(pool, two)])
    table_md = markdown_table(
        ["model", "backend", "1 interpreter, 1 thread (img/s)", "1 interpreter, 2 threads (img/s)",
         "pool of 2 (img/s)", "pool / 1 thread", "pool / 2 threads"], body)
    cores = len(os.sched_getaffinity(0))
    return Section(TITLE, table_md + (
        f"\n\nKeras MobileNetV2 (`weights=None`, {size}x{size}) converted to int8 and float32; {images} images "
        f"per round, {rounds} rounds with the three ways interleaved, median; {cores} cores. "
        "`tfedge.InterpreterPool(size=2)` runs two single-threaded interpreters at once (the backends "
        "release the GIL while a model runs). Target: pool / 1 thread >= 1.7x on 2 cores."
    ))
