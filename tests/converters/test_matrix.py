"""The conversion matrix: source kinds x modes x model families (issue #22).

Each cell converts and validates, or fails with one line; the test asserts which, from
rules stated in ``expected_error``. The CI part (not slow) covers every source kind, every
mode and every family at least once; the full product is marked slow.
``python -m pytest tests/converters/test_matrix.py -m slow -s`` prints the whole table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

from tfedge.converters import convert
from tfedge.converters.auto import convert_auto
from tfedge.errors import ConversionError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

KINDS = ("saved_model", "function", "keras", "h5", "tflite")
MODES = ("none", "float16", "dynamic", "int8", "int16x8", "keep-float auto", "auto")
FAMILIES = ("cnn", "mlp", "lstm", "gru", "bidirectional", "multi_input", "multi_output", "embedding")
RECURRENT = ("lstm", "gru", "bidirectional")

#: The CI part: every kind, mode and family at least once (14 cells of 280).
FAST = (
    ("saved_model", "mlp", "keep-float auto"),
    ("saved_model", "cnn", "auto"),
    ("saved_model", "lstm", "int8"),
    ("function", "multi_input", "int8"),
    ("function", "lstm", "float16"),
    ("function", "gru", "int16x8"),
    ("keras", "lstm", "int8"),
    ("keras", "multi_output", "int16x8"),
    ("h5", "embedding", "dynamic"),
    ("h5", "gru", "none"),
    ("tflite", "cnn", "int8"),
    ("tflite", "bidirectional", "dynamic"),
    ("tflite", "lstm", "keep-float auto"),
    ("tflite", "mlp", "float16"),
)


def build(family: str) -> Any:
    """A tiny seeded Keras model of ``family``."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    if family == "cnn":
        x = keras.Input((8, 8, 1), name="image")
        y = layers.Dense(4, activation="softmax")(layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(x)))
        return keras.Model(x, y)
    if family == "mlp":
        x = keras.Input((12,), name="x")
        return keras.Model(x, layers.Dense(3)(layers.Dense(16, activation="relu")(x)))
    if family in RECURRENT:
        x = keras.Input((5, 3), name="seq")
        rnn = {"lstm": lambda: layers.LSTM(6), "gru": lambda: layers.GRU(6),
               "bidirectional": lambda: layers.Bidirectional(layers.LSTM(4))}[family]()
        return keras.Model(x, layers.Dense(2)(rnn(x)))
    if family == "multi_input":
        a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
        return keras.Model([a, b], layers.Dense(3)(layers.Concatenate()([layers.Dense(5)(a), b])))
    if family == "multi_output":
        x = keras.Input((10,), name="x")
        h = layers.Dense(8, activation="relu")(x)
        return keras.Model(x, [layers.Dense(2, name="left")(h), layers.Dense(3, name="right")(h)])
    if family == "embedding":
        x = keras.Input((7,), name="tokens", dtype="int32")
        return keras.Model(x, layers.Dense(2)(layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(x))))
    raise AssertionError(family)


def data(model: Any, count: int = 24) -> dict[str, np.ndarray]:
    """Seeded samples for every input of ``model``, by input name."""
    rng = np.random.default_rng(0)
    out = {}
    for spec in model.inputs:
        shape = (count, *spec.shape[1:])
        name = spec.name.split(":")[0]
        out[name] = rng.integers(0, 20, shape).astype(np.int32) if "int" in str(spec.dtype) else rng.random(shape).astype(np.float32)
    return out


def export(model: Any, kind: str, folder: Path) -> Path:
    """``model`` as a source of ``kind`` under ``folder``."""
    if kind == "saved_model":
        model.export(str(folder / "sm"), verbose=False)
        return folder / "sm"
    if kind in ("keras", "h5"):
        path = folder / f"m.{kind}"
        model.save(path)
        return path
    if kind == "function":
        names = [s.name.split(":")[0] for s in model.inputs]
        specs = [tf.TensorSpec((None, *s.shape[1:]), s.dtype, name=n) for s, n in zip(model.inputs, names)]
        module = tf.Module()
        module.model = model

        @tf.function(input_signature=specs)
        def serve(*args: Any) -> Any:
            out = model(list(args) if len(args) > 1 else args[0])
            return {f"out{i}": o for i, o in enumerate(out)} if isinstance(out, (list, tuple)) else {"out": out}

        module.serve = serve
        module.weights = [w.value for w in model.weights]  # Keras 3 variables are tracked through their tf.Variable
        tf.saved_model.save(module, str(folder / "fn"), signatures={"serving_default": serve})
        return folder / "fn"
    if kind == "tflite":
        saved = export(model, "saved_model", folder)
        convert(saved, folder / "float.tflite", validate=False, progress=False)
        return folder / "float.tflite"
    raise AssertionError(kind)


#: Cells that convert but agree poorly with TensorFlow (the report must warn): litert-quantizer's
#: int8 of an embedding table (cosine 0.845 measured; TensorFlow's calibrator gives 0.999 on the
#: same model from its SavedModel).
POOR = {("tflite", "embedding", "int8")}


def expected_error(kind: str, family: str, mode: str) -> Optional[str]:
    """The start of the one-line error a cell must fail with, or None when it must convert and validate."""
    calibrates = mode in ("int8", "int16x8", "keep-float auto")
    if kind == "tflite":
        if mode == "float16":
            return "--engine litert quantizes to dynamic, int8 or int16x8; got --quantize float16."
        if mode == "keep-float auto":
            return "--keep-float and --debug-quantization need --quantize int8 with --engine tflite"
        if family in RECURRENT and calibrates:
            return f"--quantize {mode} cannot calibrate Source"
    elif family == "embedding" and mode == "int16x8":
        # TensorFlow's int16x8 calibration records no range for an integer input (the token ids).
        return "TFLiteConverter failed (int16x8): Max and min for dynamic tensors should be recorded during calibration"
    return None


def run_cell(kind: str, family: str, mode: str, folder: Path) -> tuple[str, Any]:
    """Convert one cell: ``("ok", result)`` or ``("error", first line)``."""
    model = build(family)
    source = export(model, kind, folder)
    settings: dict[str, Any] = {"calibration": data(model), "progress": False, "eval_samples": 8}
    if kind == "tflite":
        settings["engine"] = "litert"
        pytest.importorskip("litert_quantizer")
    out = folder / "out.tflite"
    call: Callable[..., Any]
    if mode == "auto":
        call = convert_auto
    else:
        call = convert
        settings["quantize"] = "int8" if mode == "keep-float auto" else mode
        if mode == "keep-float auto":
            settings["keep_float"] = ("auto",)
    try:
        result = call(source, out, **settings)
    except ConversionError as exc:
        assert not out.exists(), "a failed conversion left its output"
        return "error", str(exc).splitlines()[0]
    return "ok", result


def check(kind: str, family: str, mode: str, folder: Path) -> str:
    """Run one cell and assert its outcome; returns the table's entry."""
    outcome, value = run_cell(kind, family, mode, folder)
    want = expected_error(kind, family, mode)
    if want is not None:
        assert outcome == "error", f"{kind}/{family}/{mode} converted; expected: {want}"
        assert value.startswith(want), value
        assert "\n" not in value and "Traceback" not in value
        return "refused"
    assert outcome == "ok", f"{kind}/{family}/{mode} failed: {value}"
    result = value.result if mode == "auto" else value
    assert result.passed and Path(result.output).is_file()
    assert result.outputs and all(np.isfinite(o.cosine) for o in result.outputs), result.outputs
    if (kind, family, mode) in POOR:  # converts, and the report says its answers drifted
        assert any("agrees with TensorFlow only to cosine" in w for w in result.warnings), result.warnings
    else:
        assert all(o.cosine > 0.9 for o in result.outputs), result.outputs
    rows = {r.backend: r for r in result.runtimes}
    assert rows and all(r.ok for r in rows.values() if r.required), rows
    for row in rows.values():  # each runtime checked in a child: never "cannot work in this process"
        assert "in this process" not in (row.error or ""), row.error
    return f"ok ({value.chosen})" if mode == "auto" else "ok"


@pytest.mark.parametrize(("kind", "family", "mode"), FAST)
def test_matrix_ci(kind: str, family: str, mode: str, tmp_path: Path) -> None:
    check(kind, family, mode, tmp_path)


def test_ci_part_covers_every_kind_mode_and_family() -> None:
    assert {k for k, _, _ in FAST} == set(KINDS)
    assert {m for _, _, m in FAST} == set(MODES)
    assert {f for _, f, _ in FAST} == set(FAMILIES)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_matrix_full(kind: str, tmp_path: Path) -> None:
    """Every family and mode for one source kind; prints the row block of the table."""
    failures = []
    lines: list[str] = []
    print(flush=True)
    for family in FAMILIES:
        cells = []
        for mode in MODES:
            folder = tmp_path / f"{family}-{mode.replace(' ', '_')}"
            folder.mkdir()
            try:
                cells.append(check(kind, family, mode, folder))
            except AssertionError as exc:
                cells.append("WRONG")
                failures.append(f"{kind}/{family}/{mode}: {str(exc).splitlines()[0]}")
        lines.append(f"| {kind} | {family} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    assert not failures, "\n".join(failures)
