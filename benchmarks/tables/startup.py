"""Table 4: start-up: importing each runtime, and the time to a first inference."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _timing import TEST_MODELS, subprocess_env
from tables import Context, Section, markdown_table, ms, ratio

TITLE = "Start-up: import time and time to first inference"

_TIMED = "import time\n_t = time.perf_counter()\n{body}\nprint(time.perf_counter() - _t)\n"
_TFEDGE_FIRST = (
    "import numpy as np, tfedge\n"
    "i = tfedge.Interpreter({model!r}, backend={backend!r}, num_threads=1)\n"
    "s = i.input_specs()[0]\n"
    "i.run(np.zeros(s.shape, s.dtype))"
)
_RAW_FIRST = (
    "import numpy as np\n"
    "from ai_edge_litert.interpreter import Interpreter\n"
    "i = Interpreter(model_path={model!r}, num_threads=1)\n"
    "i.allocate_tensors()\n"
    "d = i.get_input_details()[0]\n"
    "i.set_tensor(d['index'], np.zeros(d['shape'], d['dtype']))\n"
    "i.invoke()\n"
    "i.get_tensor(i.get_output_details()[0]['index'])"
)


def table(ctx: Context) -> Section:
    """Median in-process time and whole-process wall time of each snippet, in fresh processes."""
    repeats = 2 if ctx.quick else 7
    model = str(ctx.models()["mobilenet_v2-float32"]) if not ctx.quick else str(TEST_MODELS / "add.tflite")
    label = "MobileNetV2 float32" if not ctx.quick else "add.tflite"
    snippets = {
        "`python -c pass` (baseline)": "pass",
        "`import tfedge`": "import tfedge",
        "`import ai_edge_litert.interpreter`": "import ai_edge_litert.interpreter",
        "`import tflite_runtime.interpreter`": "import tflite_runtime.interpreter",
        "`import tensorflow`": "import tensorflow",
        f"first inference, tfedge + ai_edge_litert ({label})": _TFEDGE_FIRST.format(model=model, backend="ai_edge_litert"),
        f"first inference, raw ai_edge_litert ({label})": _RAW_FIRST.format(model=model),
        f"first inference, tfedge + tflite_runtime ({label})": _TFEDGE_FIRST.format(model=model, backend="tflite_runtime"),
        f"first inference, tfedge + tf.lite ({label})": _TFEDGE_FIRST.format(model=model, backend="tensorflow"),
    }
    inside: dict[str, list[float]] = {k: [] for k in snippets}
    wall: dict[str, list[float]] = {k: [] for k in snippets}
    env = subprocess_env()
    for _ in range(repeats):  # round-robin, so that a busy moment hits every row alike
        for key, body in snippets.items():
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _TIMED.format(body=body)], capture_output=True,
                                  text=True, env=env, check=True, timeout=300)
            wall[key].append(time.perf_counter() - start)
            inside[key].append(float(proc.stdout.strip().splitlines()[-1]))
    base = statistics.median(inside["`import tfedge`"])
    rows = [[key, ms(statistics.median(inside[key])),
             ratio(statistics.median(inside[key]), base) if body != "pass" else "-",
             ms(statistics.median(wall[key]))] for key, body in snippets.items()]
    body = markdown_table(["what", "in-process", "vs import tfedge", "whole process"], rows) + (
        f"\n\nMedian of {repeats} fresh processes per row, rows interleaved. *in-process*: from the first "
        "line of the script to the end of the snippet; *whole process*: from spawning Python to its "
        "exit (interpreter start-up and shutdown included). `import tfedge` imports numpy but no "
        "backend; the backend is imported when the first Interpreter is made. First inference "
        "includes imports, loading, allocating and one `run()` on zeros with 1 thread."
    )
    return Section(TITLE, body)
