"""Table 2: model formats (float32, float16, dynamic, int8): size, latency, accuracy; and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _timing import interleave
from models import MODES, digits_split, manifest, model_name
from tables import Context, Section, markdown_table, ms, ratio

import tfedge
from tfedge._files import write_atomically

TITLE = "Model formats: size, latency and accuracy per quantization mode"
PLOT = "latency_vs_size.png"
_LABELS = {"digits": "digits CNN", "mobilenet_v2": "MobileNetV2"}
THREADS = (1, 2)
_FLOAT_IO = "int8, float in/out"


def table(ctx: Context) -> Section:
    """Size, latency at 1 and 2 threads, and digits accuracy, of each model in each mode."""
    models = ctx.models()
    families = [f for f in _LABELS if model_name(f, MODES[0]) in models]
    _, _, x_test, y_test = digits_split()
    rows: list[list[str]] = []
    points: dict[str, list[tuple[str, int, dict[int, float]]]] = {}
    for family in families:
        rounds, calls = (5, 50) if ctx.quick else ((41, 200) if family == "digits" else (15, 4))
        interps = {(mode, t): tfedge.Interpreter(models[model_name(family, mode)], num_threads=t)
                   for mode in MODES for t in THREADS}
        spec = interps[(MODES[0], 1)].input_specs()[0]
        # A real digit, or a random image; each model gets it in its own input type (quantized
        # once, here, for int8), so the rows compare the formats, not run()'s quantization.
        x = x_test[:1] if family == "digits" else np.random.default_rng(0).uniform(-1, 1, spec.shape).astype(np.float32)
        feeds = {mode: _native(interps[(mode, 1)], x) for mode in MODES}
        medians: dict[tuple[str, int], float] = {}
        for t in THREADS:  # one thread count at a time: an idle pool's spinning workers would slow the others
            ways = {key: (lambda i=i, f=feeds[key[0]]: i.run(f)) for key, i in interps.items() if key[1] == t}
            if t == 1:
                ways[(_FLOAT_IO, 1)] = lambda i=interps[("int8", 1)]: i.run(x)
            medians.update(interleave(ways, rounds, calls))
        base_size = models[model_name(family, MODES[0])].stat().st_size
        for mode in MODES:
            size = models[model_name(family, mode)].stat().st_size
            lat = {t: medians[(mode, t)] for t in THREADS}
            points.setdefault(family, []).append((mode, size, lat))
            accuracy = "-"
            if family == "digits":
                out = next(iter(interps[(mode, 1)].run(x_test).values()))
                accuracy = f"{np.mean(np.argmax(out, axis=1) == y_test):.1%}"
            rows.append([
                _LABELS[family], mode, f"{size / 1024:,.0f} KiB", ratio(size, base_size),
                ms(lat[1]), ratio(lat[1], medians[(MODES[0], 1)]),
                ms(lat[2]), ratio(lat[2], medians[(MODES[0], 2)]), ratio(lat[1], lat[2]), accuracy,
            ])
        rows.append([_LABELS[family], _FLOAT_IO, "", "", ms(medians[(_FLOAT_IO, 1)]),
                     ratio(medians[(_FLOAT_IO, 1)], medians[(MODES[0], 1)]), "", "", "", ""])
    backend = interps[(MODES[0], 1)]
    record = manifest(ctx.work_dir)
    keras_acc = record.get("digits_keras_accuracy")
    plot = _plot(points, ctx.out_dir / PLOT)
    body = markdown_table(
        ["model", "mode", "size", "size vs f32", "1 thread", "vs f32", "2 threads", "vs f32",
         "2 threads speed-up", "digits accuracy"], rows
    ) + (
        f"\n\nMedian latency of `Interpreter.run()` on one sample ({backend.backend} {backend.backend_version}), "
        "all modes of one model interleaved round by round in one process, one thread count at a time. "
        "*int8* is full-integer (int8 in and out), timed on an int8 input (quantized once beforehand); "
        f"*{_FLOAT_IO}* is the same model given the float input, so `run()` quantizes it on every call. "
        "Outputs are dequantized to float32 in both. *dynamic* is dynamic-range (int8 weights, float "
        "activations); *float16* stores float16 weights. *2 threads speed-up* is 1-thread time over "
        "2-thread time: below 1.00× the second thread made it slower. Converted with `tf.lite.TFLiteConverter` "
        f"from TensorFlow {record.get('tensorflow', '?')} (`benchmarks/_build_models.py`). "
        "Accuracy is on the 450 held-out digits of scikit-learn's `load_digits`"
        + (f" (the Keras model itself: {keras_acc:.1%})" if keras_acc is not None else "")
        + f"; MobileNetV2 has random weights, so it has no accuracy to report.\n\n![latency vs size]({PLOT})"
    )
    return Section(TITLE, body, (plot,))


def _native(interp: tfedge.Interpreter, x: np.ndarray) -> np.ndarray:
    """``x`` in the model's input type: quantized for an integer input, as is for float."""
    spec = interp.input_specs()[0]
    if spec.quantization is None or spec.dtype.kind == "f":
        return x
    return tfedge.quantize(x, spec.quantization, spec.dtype)


def _plot(points: dict[str, list[tuple[str, int, dict[int, float]]]], path: Path) -> Path:
    """Latency against file size, one panel per model, one marker per mode; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    markers = {"float32": "o", "float16": "s", "dynamic": "^", "int8": "D"}
    fig, axes = plt.subplots(1, len(points), figsize=(5.5 * len(points), 4.2), squeeze=False)
    for ax, (family, rows) in zip(axes[0], points.items()):
        for threads, style in ((1, "-"), (2, ":")):
            xs = [size / 1024 for _, size, _ in rows]
            ys = [lat[threads] * 1e3 for _, _, lat in rows]
            ax.plot(xs, ys, style, color="0.6", zorder=1)
            for (mode, _, _), xv, yv in zip(rows, xs, ys):
                ax.scatter(xv, yv, marker=markers[mode], s=60, zorder=2, color=f"C{MODES.index(mode)}",
                           facecolors="none" if threads == 2 else None,
                           label=f"{mode}" if threads == 1 else None)
        ax.set_title(f"{_LABELS[family]} ({len(rows)} modes; hollow markers: 2 threads)", fontsize=9)
        ax.set_xlabel("file size (KiB)")
        ax.set_ylabel("median latency (ms)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        for threads, style in ((1, "-"), (2, ":")):
            handles.append(Line2D([], [], linestyle=style, color="0.6"))
            labels.append(f"{threads} thread{'s' if threads > 1 else ''}")
        ax.legend(handles, labels, fontsize=8)
    fig.suptitle("Latency vs size per quantization mode", fontsize=11)
    fig.tight_layout()
    try:
        write_atomically(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path
