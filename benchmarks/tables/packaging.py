"""Table 5: ways to ship the ``tfedge`` command, measured by ``benchmarks/native_packaging.py`` (it builds the binaries)."""

from __future__ import annotations

from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table, ratio

TITLE = "Packaging: the native binary"
_SCRIPT = Path(__file__).resolve().parents[1] / "native_packaging.py"


def table(ctx: Context) -> Section:
    """Size, start, peak RSS and MobileNetV2 latency per packaging, from ``native_packaging.py --json``."""
    if not _SCRIPT.is_file():
        return Section(TITLE, f"Not built yet: `benchmarks/{_SCRIPT.name}` does not exist in this checkout.")
    runs = 3 if ctx.quick else 15
    try:
        results = run_json([str(_SCRIPT), "--json", "--runs", str(runs)], timeout=3600)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return Section(TITLE, f"Not included: `benchmarks/{_SCRIPT.name} --json` failed ({first}).")
    venv = next((r for r in results if r["name"].startswith("venv")), results[-1])
    models = list(venv["latency_ms"])
    rows = [[r["name"], r["backend"], f"{r['size_mb']:.1f} MB", f"{r['build_s']:.0f} s",
             f"{r['start_median_s'] * 1e3:.0f} ms", ratio(r["start_median_s"], venv["start_median_s"]),
             f"{r['peak_rss_mb']:.0f} MB",
             *(f"{r['latency_ms'][m]:.2f} ms ({ratio(r['latency_ms'][m], venv['latency_ms'][m])})" for m in models)]
            for r in results]
    body = markdown_table(["packaging", "backend", "size", "build", "start (median)", "vs venv", "peak RSS",
                           *(f"{m} (vs venv)" for m in models)], rows)
    return Section(TITLE, body + (
        f"\n\nStart: `tfedge info add.tflite`, {runs} warm runs of each, interleaved. Latency: "
        "`tfedge bench MODEL --threads 1 --runs 30`, median of 3 interleaved rounds. By "
        f"`benchmarks/{_SCRIPT.name}` (see its docstring for what is built and how)."
    ))
