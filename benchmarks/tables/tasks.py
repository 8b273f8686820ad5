"""Table 7: what ``tfedge.tasks.detect`` costs over ``run()``, measured by ``benchmarks/tasks.py``."""

from __future__ import annotations

from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table, ms

TITLE = "Tasks: `detect()` vs `run()` on MediaPipe's face detector"
_SCRIPT = Path(__file__).resolve().parents[1] / "tasks.py"


def table(ctx: Context) -> Section:
    """Per-call cost of run() and of detect() at the input size and on the 512x512 photo."""
    rounds, calls = (3, 20) if ctx.quick else (41, 50)
    try:
        r = run_json([str(_SCRIPT), "--json", "--rounds", str(rounds), "--calls", str(calls)], timeout=1800)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return Section(TITLE, f"Not included: `benchmarks/{_SCRIPT.name} --json` failed ({first}).")
    rows = []
    for clock in ("wall", "cpu"):
        rows.append([clock, ms(r[f"run us ({clock})"] / 1e6), ms(r[f"detect 128x128 us ({clock})"] / 1e6),
                     f"{r[f'detect 128x128 / run ({clock})']:.2f}×", ms(r[f"detect 512x512 us ({clock})"] / 1e6),
                     f"{r[f'detect 512x512 / run ({clock})']:.2f}×"])
    body = markdown_table(["clock", "run()", "detect() 128x128", "/ run", "detect() 512x512", "/ run"], rows)
    return Section(TITLE, body + (
        f"\n\n`face_detection_short_range.tflite` (128x128 input, 896 anchors) on scikit-image's `astronaut()`, "
        f"1 thread, ai_edge_litert; {rounds} rounds of {calls} calls, the three ways back to back in each round: "
        "times are medians over rounds, each ratio the median of its per-round ratios (the machine's drift "
        "cancels within a round). "
        "`run()` gets the tensor already resized and normalized; `detect()` at 128x128 adds normalization, "
        "the SSD decode against the anchors, weighted NMS and the boxes in image pixels; at 512x512 also the "
        "letterbox resize (numpy bilinear). `cpu` is this process's CPU time (steadier on a busy machine). "
        "Target: detect 128x128 / run <= 1.15x."
    ))
