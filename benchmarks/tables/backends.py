"""Table 3: the same models on ai_edge_litert, tflite_runtime and tf.lite."""

from __future__ import annotations

import re
from pathlib import Path

from _timing import run_json
from models import MODES, model_name
from tables import Context, Section, markdown_table, ms, ratio

from tfedge import _backend

TITLE = "Backends: ai_edge_litert vs tflite_runtime vs tf.lite"
BASE = "ai_edge_litert"
OTHERS = ("tflite_runtime", "tensorflow")
_WORKER = Path(__file__).resolve().parents[1] / "_bench_worker.py"
_OP_VERSION = re.compile(r"needs (\w+) version (\d+)")


def table(ctx: Context) -> Section:
    """Median latency per backend and model; each backend side by side with ai_edge_litert."""
    models = ctx.models()
    names = [model_name(f, m) for f in ("digits", "mobilenet_v2") for m in MODES if model_name(f, m) in models]
    # ai_edge_litert runs next to each other backend in one process (interleaved), so each
    # ratio is measured side by side; tflite_runtime and tensorflow cannot share a process.
    pairs: dict[str, dict[str, dict]] = {}
    for other in OTHERS:
        pairs[other] = {}
        for family_names, (rounds, calls) in _groups(names, ctx.quick):
            out = run_json([str(_WORKER), "--backends", f"{BASE},{other}", "--rounds", str(rounds),
                            "--calls", str(calls), *(str(models[n]) for n in family_names)])
            pairs[other].update({name: out[str(models[name])] for name in family_names})
    rows = []
    for name in names:
        base = pairs[OTHERS[0]][name].get(BASE)
        cells = [name, _cell(base)]
        for other in OTHERS:
            row = pairs[other][name]
            value, mine = row.get(other), row.get(BASE)
            cells.append(_cell(value) + (f" ({ratio(value, mine)})" if isinstance(value, float)
                                         and isinstance(mine, float) else ""))
        rows.append(cells)
    versions = {b: _version(b) for b in (BASE, *OTHERS)}
    body = markdown_table(["model", *(f"{b} {versions[b]}" for b in (BASE, *OTHERS))], rows) + (
        "\n\nMedian time per `Interpreter.run()` call, 1 thread, seeded random input in the model's own "
        f"types. {BASE} runs interleaved round by round with each other backend in a process of their "
        "own (tflite_runtime and TensorFlow cannot share one), and each ratio is against the "
        f"{BASE} measured beside it (above 1.00× is slower); the {BASE} column is from the "
        "tflite_runtime pair. The models are the ones of the formats table."
    )
    return Section(TITLE, body)


def _groups(names: list[str], quick: bool) -> list[tuple[list[str], tuple[int, int]]]:
    """The models split by family, with (rounds, calls) that fit each one's speed."""
    digits = [n for n in names if n.startswith("digits")]
    mobilenet = [n for n in names if n.startswith("mobilenet")]
    groups = [(digits, (5, 50) if quick else (61, 100))]
    if mobilenet:
        groups.append((mobilenet, (15, 3)))
    return [g for g in groups if g[0]]


def _cell(value: object) -> str:
    """A median, or a failure as a table cell: ``cannot load (FULLY_CONNECTED v12)``."""
    if isinstance(value, float):
        return ms(value)
    if isinstance(value, dict):
        return _short(value["error"])
    return "not measured"


def _short(message: str) -> str:
    """A failure message in a few words."""
    found = _OP_VERSION.search(message)
    if found:
        return f"cannot load ({found.group(1)} v{found.group(2)})"
    return "error: " + message[:60].replace("|", "/")


def _version(backend: str) -> str:
    """A backend's version, without importing TensorFlow into this process."""
    from importlib.metadata import PackageNotFoundError, version

    if backend != "tensorflow":
        return _backend.get_backend(backend).version
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "?"
