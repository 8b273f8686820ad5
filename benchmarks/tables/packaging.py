"""Table 5: ways to ship the ``tfedge`` command, measured by ``benchmarks/native_packaging.py`` (it builds the binaries)."""

from __future__ import annotations

from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table, ratio

TITLE = "Packaging: the native binary"
_SCRIPT = Path(__file__).resolve().parents[1] / "native_packaging.py"


def table(ctx: Context) -> Section:
    """Size, start time and peak RSS per packaging, from ``native_packaging.py --json``; a note if not built."""
    if not _SCRIPT.is_file():
        return Section(TITLE, f"Not built yet: `benchmarks/{_SCRIPT.name}` does not exist in this checkout.")
    runs = 3 if ctx.quick else 15
    try:
        results = run_json([str(_SCRIPT), "--json", "--runs", str(runs)], timeout=3600)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return Section(TITLE, f"Not included: `benchmarks/{_SCRIPT.name} --json` failed ({first}).")
    venv = next((r for r in results if r["name"].startswith("venv")), results[-1])
    rows = [[r["name"], f"{r['size_mb']:.1f} MB", f"{r['build_s']:.0f} s", f"{r['start_median_s'] * 1e3:.0f} ms",
             ratio(r["start_median_s"], venv["start_median_s"]), f"{r['peak_rss_mb']:.0f} MB"] for r in results]
    body = markdown_table(["packaging", "size", "build", "start (median)", f"vs {venv['name']}", "peak RSS"], rows)
    return Section(TITLE, body + (
        f"\n\n`tfedge info add.tflite`, {runs} warm runs of each, interleaved, by "
        f"`benchmarks/{_SCRIPT.name}` (see its docstring for what is built and how)."
    ))
