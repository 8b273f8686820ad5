"""Table 8: what ``tfedge serve`` costs over the pool in-process, measured by ``benchmarks/serve.py``."""

from __future__ import annotations

from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table

TITLE = "Serve: `tfedge serve` vs `InterpreterPool` in-process, and DeepStack vs `detect()`"
_SCRIPT = Path(__file__).resolve().parents[1] / "serve.py"


def table(ctx: Context) -> Section:
    """Requests/s and p50/p99 through the server next to the pool; DeepStack's cost over decode + detect."""
    rounds, seconds, calls = (2, 1.0, 5) if ctx.quick else (7, 3.0, 20)
    args = [str(_SCRIPT), "--json", "--rounds", str(rounds), "--seconds", str(seconds), "--calls", str(calls)]
    if ctx.quick:
        args.append("--no-mobilenet")
    try:
        r = run_json(args, timeout=3600)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return Section(TITLE, f"Not included: `benchmarks/{_SCRIPT.name} --json` failed ({first}).")
    rows = []
    for name, row in r.items():
        if not isinstance(row, dict) or "server" not in row or not isinstance(row["server"], dict):
            continue
        s, p = row["server"], row["pool"]
        rows.append([name, f"{s['rps']:.1f}", f"{s['p50_ms']:.2f} ms", f"{s['p99_ms']:.2f} ms", f"{p['rps']:.1f}",
                     f"{p['p50_ms']:.2f} ms", f"{p['p99_ms']:.2f} ms", f"{row['ratio']:.2f}×",
                     f"{s['cpu_ms']:.2f} / {p['cpu_ms']:.2f} ms", f"{row['cpu_ratio']:.2f}×"])
    body = markdown_table(["model", "server req/s", "p50", "p99", "pool req/s", "p50", "p99", "server / pool",
                           "CPU per request (server+client / pool)", "CPU ratio"], rows)
    d = r["deepstack"]
    deep = markdown_table(["clock", "DeepStack POST", "JPEG decode + detect()", "detect() alone",
                           "POST / (decode + detect)"],
                          [["wall", f"{d['server']:.2f} ms", f"{d['decode+detect']:.2f} ms", f"{d['detect']:.2f} ms",
                            f"{d['ratio']:.2f}×"],
                           ["cpu", f"{d['server cpu']:.2f} ms", f"{d['decode+detect cpu']:.2f} ms",
                            f"{d['detect cpu']:.2f} ms", f"{d['cpu_ratio']:.2f}×"]])
    return Section(TITLE, body + (
        f"\n\n`tfedge serve --workers {r['workers']}` in a child process, {r['clients']} client threads on loopback "
        "(keep-alive, the bytes `tritonclient.http` sends: binary tensors in and out, outputs decoded) next to "
        f"`InterpreterPool(size={r['workers']})` called by the same threads in-process; {rounds} rounds of "
        f"{seconds:g} s each, the two ways interleaved; req/s the median round, p50/p99 over all requests; CPU per "
        "request: the server's and the client's CPU time over the requests (the pool: this process's). "
        "The client shares the cores with the server, as an NVR on the same device would. "
        "Target: server / pool >= 0.8x for MobileNetV2.\n\n" + deep +
        "\n\nOne client, one request at a time: the astronaut (512x512 JPEG) posted as Frigate posts it to "
        "`/v1/vision/detection` (server with 1 worker) vs the same JPEG decoded with Pillow and `detect()` on one "
        f"Interpreter in-process, medians of {rounds} interleaved rounds of {calls}; `cpu`: the CPU time of the "
        "client and the server per request (steadier on a busy machine: wall time there includes the waits to be "
        "scheduled that each hop between two processes costs). Target: <= 1.3x. Frigate's "
        "`deepstack` detector waits 0.1 s by default."
    ))
