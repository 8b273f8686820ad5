"""Table 1: what ``tfedge.Interpreter.run()`` costs over the backends' own APIs."""

from __future__ import annotations

from pathlib import Path

from _timing import TEST_MODELS, run_json
from overhead import measure
from tables import Context, Section, markdown_table, ms, ratio

from tfedge import _backend

TITLE = "Runtime overhead: `Interpreter.run()` vs the raw loop vs the signature runner"
_OVERHEAD = Path(__file__).resolve().parents[1] / "overhead.py"


def table(ctx: Context) -> Section:
    """Per-call time of the three ways on add.tflite and MobileNetV2, per backend."""
    cases = [("add.tflite", TEST_MODELS / "add.tflite", 7 if ctx.quick else 61, 300 if ctx.quick else 1000)]
    if not ctx.quick:
        cases.append(("MobileNetV2 float32", ctx.models()["mobilenet_v2-float32"], 15, 4))
    in_process = [b for b in ("ai_edge_litert", "tflite_runtime") if b in _backend.available_backends()]
    rows = []
    for label, path, rounds, calls in cases:
        results = {b: measure(path, b, rounds, calls) for b in in_process}
        # tf.lite runs in a process of its own: importing TensorFlow here would break tflite_runtime.
        (tf_row,) = run_json([str(_OVERHEAD), str(path), "--backend", "tensorflow", "--json",
                              "--rounds", str(rounds), "--calls", str(calls)])
        results["tensorflow"] = {k: tf_row[k] / 1e6 for k in ("lean", "tfedge", "runner") if k in tf_row}
        for backend, t in results.items():
            runner = t.get("runner")
            rows.append([label, backend, ms(t["lean"]), ms(t["tfedge"]), ms(runner) if runner else "-",
                         ratio(t["tfedge"], t["lean"]), ratio(runner, t["tfedge"]) if runner else "-"])
    body = markdown_table(
        ["model", "backend", "raw loop", "tfedge run()", "signature runner", "run / raw", "runner / run"], rows
    ) + (
        "\n\nMedian time per call, 1 thread, the three ways interleaved round by round in one process "
        "(tf.lite in its own process). *raw loop*: the backend's `set_tensor`/`invoke`/`get_tensor` "
        "with indices looked up once; *signature runner*: the backend's `get_signature_runner()` on an "
        "interpreter of its own. `run / raw` below 1.00 means `run()` is faster than the public raw API "
        "(it calls the backend's wrapper directly). Made by `benchmarks/overhead.py`'s `measure()`."
    )
    return Section(TITLE, body)
