"""Table 1: what ``tfedge.Interpreter.run()`` costs over the backends' own APIs."""

from __future__ import annotations

from pathlib import Path

from _timing import TEST_MODELS, run_json
from overhead import FORMS, measure, measure_quantized
from tables import Context, Section, markdown_table, ms, ratio

from tfedge import _backend

TITLE = "Runtime overhead: `Interpreter.run()` vs the raw loop vs the signature runner"
_OVERHEAD = Path(__file__).resolve().parents[1] / "overhead.py"


def table(ctx: Context) -> Section:
    """Per-call time of every way on a one-input and a four-input model (and MobileNetV2), per backend."""
    rounds, calls = (7, 300) if ctx.quick else (61, 1000)
    cases = [("add.tflite", TEST_MODELS / "add.tflite", rounds, calls),
             ("multi_add.tflite (4 inputs)", TEST_MODELS / "multi_add.tflite", rounds, calls)]
    if not ctx.quick:
        cases.append(("MobileNetV2 float32", ctx.models()["mobilenet_v2-float32"], 15, 4))
    in_process = [b for b in _backend.available_backends() if b != "tensorflow"]
    rows = []
    for label, path, n_rounds, n_calls in cases:
        results = {b: measure(path, b, n_rounds, n_calls) for b in in_process}
        # tf.lite runs in a process of its own: importing TensorFlow here would break tflite_runtime.
        tf_rows = run_json([str(_OVERHEAD), str(path), "--backend", "tensorflow", "--json",
                            "--rounds", str(n_rounds), "--calls", str(n_calls)])["forms"]
        results["tensorflow"] = {k: v / 1e6 for k, v in tf_rows[0].items() if k in ("lean", "runner", *FORMS)}
        for backend, t in results.items():
            runner = t.get("runner")
            forms = [ms(t[f]) if f in t else "-" for f in FORMS]
            worst = max(t[f] for f in FORMS if f in t)
            rows.append([label, backend, ms(t["lean"]), *forms, ms(runner) if runner else "-",
                         ratio(worst, t["lean"]), ratio(runner, t["dict"]) if runner else "-"])
    body = markdown_table(
        ["model", "backend", "raw loop", "run(array)", "run(list)", "run(dict)", "signature runner",
         "slowest run / raw", "runner / run(dict)"], rows
    ) + (
        "\n\nMedian time per call, 1 thread, every way interleaved round by round in one process "
        "(tf.lite in its own process). *raw loop*: the backend's `set_tensor`/`invoke`/`get_tensor` "
        "with indices looked up once; *signature runner*: the backend's `get_signature_runner()` on an "
        "interpreter of its own. `slowest run / raw` is the slowest of the three call forms against the "
        "raw loop (target: at most 1.10); below 1.00 `run()` is faster than the public raw API (it calls "
        "the backend's wrapper directly). Made by `benchmarks/overhead.py`'s `measure()`."
    )
    if not ctx.quick:
        quant_rows = []
        for backend in in_process:
            t = measure_quantized(ctx.models()["mobilenet_v2-int8"], backend)
            quant_rows.append([backend, ms(t["quantized"]), ms(t["float"]), ratio(t["float"], t["quantized"])])
        body += "\n\n" + markdown_table(
            ["MobileNetV2 int8, backend", "run(int8 input)", "run(float32 input)", "float / int8"], quant_rows
        ) + (
            "\n\nA float32 image to the full-int8 MobileNetV2 is quantized inside `run()` (into buffers made "
            "once; target: at most 1.05x feeding it already quantized). `benchmarks/overhead.py --quantized`."
        )
    return Section(TITLE, body)
