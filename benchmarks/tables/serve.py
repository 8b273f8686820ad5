"""Table 8: what ``tfedge serve`` costs over the pool in-process, measured by ``benchmarks/serve.py``."""

from __future__ import annotations

from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table

TITLE = "Serve: `tfedge serve` vs `InterpreterPool` in-process, and DeepStack vs `detect()`"
_SCRIPT = Path(__file__).resolve().parents[1] / "serve.py"


def table(ctx: Context) -> Section:
    """Requests/s and p50/p99 through the server next to the pool; DeepStack's cost over decode + detect."""
    rounds, seconds, calls = (2, 1.0, 5) if ctx.quick else (7, 3.0, 50)
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
        p = row["pool"]
        for way, suffix, client in (("server, tritonclient", "_tritonclient", "tritonclient"),
                                    ("server", "", "http.client"), ("server, lean client", "_lean", "lean"),
                                    ("server, C client", "_c", "C")):
            if way not in row:
                continue
            s = row[way]
            rows.append([name, client, f"{s['rps']:.1f}", f"{s['p50_ms']:.2f} ms", f"{s['p99_ms']:.2f} ms",
                         f"{p['rps']:.1f}", f"{p['p50_ms']:.2f} ms", f"{p['p99_ms']:.2f} ms",
                         f"{row['ratio' + suffix]:.2f}×",
                         f"{s['cpu_ms']:.2f} / {s['client_cpu_ms']:.2f} / {p['cpu_ms']:.2f} ms",
                         f"**{row['cpu_ratio' + suffix]:.2f}×**", f"{row['cpu_ratio_with_client' + suffix]:.2f}×",
                         "{:.1f}-{:.1f}".format(*row["load_average"]) if "load_average" in row else ""])
    body = markdown_table(["model", "client", "server req/s", "p50", "p99", "pool req/s", "p50", "p99",
                           "server / pool (wall)", "CPU per request: server / client / pool",
                           "CPU-bound throughput server / pool", "the same, client's CPU counted", "load average"],
                          rows)
    d = r["deepstack"]
    rows = [["wall", f"{d['server']:.2f} ms", f"{d['decode+detect']:.2f} ms", f"{d['detect']:.2f} ms",
             f"{d['ratio']:.2f}×"],
            ["cpu, server process", f"{d['server cpu']:.2f} ms", f"{d['decode+detect cpu']:.2f} ms",
             f"{d['detect cpu']:.2f} ms", f"**{d['cpu_ratio']:.2f}×**"],
            ["cpu, server + client", f"{d['server cpu'] + d['client cpu']:.2f} ms", "", "",
             f"{d['cpu_ratio_with_client']:.2f}×"]]
    if "server, new connection" in d:
        n = ", new connection"
        rows += [["wall, a new connection each", f"{d['server' + n]:.2f} ms", "", "", f"{d['ratio' + n]:.2f}×"],
                 ["cpu, server process, a new connection each", f"{d['server' + n + ' cpu']:.2f} ms", "", "",
                  f"**{d['cpu_ratio' + n]:.2f}×**"],
                 ["cpu, server + client, a new connection each",
                  f"{d['server' + n + ' cpu'] + d['client' + n + ' cpu']:.2f} ms", "", "",
                  f"{d['cpu_ratio_with_client' + n]:.2f}×"]]
    deep = markdown_table(["clock", "DeepStack POST", "JPEG decode + detect()", "detect() alone",
                           "POST / (decode + detect)"], rows)
    load = f" (load average {r['load_average']:.1f} when it started)" if "load_average" in r else ""
    return Section(TITLE, body + (
        f"\n\n`tfedge serve --workers {r['workers']}` in a child process, {r['clients']} client threads on loopback, "
        "each on a keep-alive connection, binary tensors in and out as `tritonclient.http` sends them, outputs "
        "decoded (but by the C client), by up to four clients: **tritonclient** (`tritonclient.http`, Triton's own Python client, a "
        "client per thread, each frame's array set with `set_data_from_numpy` and the outputs read with "
        "`as_numpy`), **http.client** (Python's `http.client`, tritonclient's body with http.client's "
        "own header fields) and **lean** "
        "(the exact bytes tritonclient writes, head and body, encoded once and written to a raw socket, the "
        "answer read by its Content-Length and the outputs decoded, in Python) and **C** "
        "(`benchmarks/loadgen.c`, compiled by the run: the same bytes from one C thread per connection, "
        "each answer read whole and its status checked: what a load generator such as Triton's C++ "
        "perf_analyzer costs, and the nearest this machine comes to a client on another machine), next to "
        f"`InterpreterPool(size={r['workers']})` called by the same number of threads in-process with arrays made "
        f"once (the pool's best case); {rounds} rounds of {seconds:g} s each, all ways interleaved{load}; "
        "req/s the median round, p50/p99 over all requests; the load average at the start and end of each "
        "model's rounds in the last column (other work on the machine slows both sides' wall clock, the "
        "server's more: each request hops between two processes). CPU per request, medians of the rounds: the "
        "server process's, the client's (this process while it posts and decodes; the C client's process), "
        "the pool's (this process). "
        "On this machine the client runs on the server's cores, so the wall-clock ratio charges the server "
        "with the client's CPU and with each hop between the two processes waiting to be scheduled (on a "
        "busy machine, milliseconds), which the pool in-process never pays. The CPU-bound throughput ratio, "
        "pool CPU / server CPU per request, is what the server keeps of the pool's throughput when its "
        f"{r['workers']} workers have the cores and the client runs elsewhere (an NVR on another machine); the "
        "last column counts the client's CPU too (a client on the same device). "
        "Target: server / pool >= 0.8x for MobileNetV2.\n\n" + deep +
        "\n\nOne client, one request at a time: the astronaut (512x512 JPEG) posted as Frigate posts it to "
        "`/v1/vision/detection` (server with 1 worker) on a keep-alive connection and, as Frigate's "
        "`requests.post()` does, on a new connection each time, vs the same JPEG decoded with "
        "Pillow (`convert(\"RGB\")`) and `detect()` on one Interpreter in-process, wall: medians of "
        f"{rounds} interleaved rounds of {calls}; cpu: over all the rounds, the server process's CPU time per "
        "request, and with the client's (which builds the form and reads the answer). The server process sets glibc's "
        "allocator to keep freed memory (`reuse_freed_memory()`); the in-process baseline runs with glibc's "
        "defaults, under which each call's large buffers fault in fresh pages. Target: <= 1.3x. Frigate's "
        "`deepstack` detector waits 0.1 s by default."
    ))
