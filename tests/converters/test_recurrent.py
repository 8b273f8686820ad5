"""Recurrent models (LSTM, GRU, Bidirectional LSTM, stateful GRU) in every mode, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfedge
from tfedge.converters import convert
from tfedge.errors import ConversionError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

STEPS, FEATURES, UNITS = 6, 3, 4
MODES = ("none", "dynamic", "int8", "int16x8")
ROOT = Path(__file__).resolve().parents[2]


def build(kind: str) -> Any:
    """A seeded, untrained recurrent classifier on (STEPS, FEATURES) sequences."""
    keras.utils.set_random_seed(0)
    layers = {
        "lstm": lambda: keras.layers.LSTM(UNITS),
        "gru": lambda: keras.layers.GRU(UNITS),
        "bilstm": lambda: keras.layers.Bidirectional(keras.layers.LSTM(UNITS)),
        "stateful_gru": lambda: keras.layers.GRU(UNITS, stateful=True),
    }
    inp = keras.Input((STEPS, FEATURES), name="seq", batch_size=1 if kind.startswith("stateful") else None)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(layers[kind]()(inp)))


@pytest.fixture(scope="module")
def sequences() -> tuple[np.ndarray, np.ndarray]:
    """Calibration and evaluation sequences."""
    rng = np.random.default_rng(0)
    return rng.random((40, STEPS, FEATURES)).astype(np.float32), rng.random((12, STEPS, FEATURES)).astype(np.float32)


class Converted:
    """Each kind converted in every mode on first use (so deselected kinds cost nothing)."""

    def __init__(self, sequences: tuple[np.ndarray, np.ndarray], out: Path) -> None:
        self.sequences, self.out = sequences, out
        self.models: dict[str, Any] = {}
        self.results: dict[tuple[str, str], Any] = {}
        self.tflite_runtime: dict[str, Any] = {}

    def get(self, kind: str, mode: str) -> tuple[Any, Any, np.ndarray]:
        """(report, Keras model, outputs of the model on tflite_runtime)."""
        if kind not in self.models:
            calib, ev = self.sequences
            self.models[kind] = model = build(kind)
            for m in MODES:
                self.results[kind, m] = convert(
                    model, self.out / f"{kind}-{m}.tflite", calibration=calib, eval_data=ev, quantize=m, progress=False
                )
            self.tflite_runtime[kind] = run_on_tflite_runtime({m: self.results[kind, m].output for m in MODES}, ev, self.out / kind)
        return self.results[kind, mode], self.models[kind], self.tflite_runtime[kind][mode]


@pytest.fixture(scope="module")
def converted(sequences: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Converted:
    return Converted(sequences, tmp_path_factory.mktemp("recurrent"))


def reference(model: Any, ev: np.ndarray) -> np.ndarray:
    """Keras outputs one sequence at a time (a stateful layer's state carries over, as in TFLite)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    return np.concatenate([np.asarray(model(ev[i : i + 1])) for i in range(len(ev))])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


#: Run every model on tflite_runtime in a child process (it cannot load TF 2.21 models after TensorFlow).
_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tfedge
    paths, ev = json.loads(sys.argv[1]), np.load(sys.argv[2])
    out = {}
    for key, path in paths.items():
        interp = tfedge.Interpreter(path, backend="tflite_runtime")
        out[key] = np.concatenate([interp.run(ev[i : i + 1])["output_0"] for i in range(len(ev))])
    np.savez(sys.argv[3], **out)
    """
)


def run_on_tflite_runtime(paths: dict[str, str], ev: np.ndarray, tmp: Path) -> Any:
    """Outputs of each model on tflite_runtime, run in a child process that never imports TensorFlow."""
    tmp.mkdir()
    np.save(tmp / "ev.npy", ev)
    env = {"PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(paths), str(tmp / "ev.npy"), str(tmp / "out.npz")],
        check=True, env=env, capture_output=True, timeout=300,
    )
    return dict(np.load(tmp / "out.npz"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kind",
    # Each kind costs four conversions (about a minute on a busy CI machine): two run by default.
    ["lstm", "stateful_gru", pytest.param("gru", marks=pytest.mark.slow), pytest.param("bilstm", marks=pytest.mark.slow)],
)
def test_recurrent_model_matches_tensorflow_on_both_backends(
    kind: str, mode: str, converted: Converted, sequences: tuple[np.ndarray, np.ndarray]
) -> None:
    result, model, other = converted.get(kind, mode)
    ev = sequences[1]
    assert result.passed and result.non_builtin_ops == ()
    ops = {o.name for o in result.operators}
    assert not ops & {"FlexTensorListReserve", "CUSTOM"}
    want = reference(model, ev)
    interp = tfedge.Interpreter(result.output, backend="ai_edge_litert")
    got = np.concatenate([interp.run(ev[i : i + 1])["output_0"] for i in range(len(ev))])
    floor = 0.999 if mode in ("none", "dynamic") else 0.99
    assert cosine(got, want) >= floor and cosine(other, want) >= floor, (cosine(got, want), cosine(other, want))
    assert result.outputs[0].cosine == pytest.approx(cosine(got, want), abs=1e-5)
    if mode in ("int8", "int16x8"):
        # TensorFlow's calibrator crashes on WHILE loops: the layers were unrolled.
        assert "WHILE" not in ops and result.recurrent.startswith("recurrent layers unrolled over their time steps")
        assert "QUANTIZE" in ops
    else:
        assert "WHILE" in ops and "WHILE loop" in result.recurrent
    if kind != "stateful_gru" and mode in ("none", "dynamic"):
        assert result.static_batch_note == "batch fixed to 1 by tracing the keras_model source again"
        assert "batch       batch fixed to 1" in result.format_table()


def test_saved_model_with_a_free_batch_is_patched(sequences: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    model = build("gru")
    model.export(str(tmp_path / "sm"), verbose=False)
    result = convert(tmp_path / "sm", tmp_path / "m.tflite", eval_data=sequences[1], progress=False)
    assert result.static_batch_note == (
        "batch fixed to 1 in the SavedModel's signature and its recurrent loops' TensorList shapes"
    )
    assert result.outputs[0].cosine > 0.99999
    assert tfedge.Interpreter(result.output).input_specs()[0].shape == (1, STEPS, FEATURES)


@pytest.mark.parametrize("engine", ["tflite", "litert"])
def test_saved_model_loops_are_unrolled_to_calibrate(engine: str, sequences: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """Neither calibrator handles the loop (TensorFlow's segfaults, litert-quantizer fails): the graph is unrolled.

    TensorFlow's calibrator then converts it; litert-quantizer still cannot read the unrolled
    float model's tensors, and says so in one line.
    """
    model = build("lstm")
    model.export(str(tmp_path / "sm"), verbose=False)
    calib, ev = sequences
    if engine == "litert":
        pytest.importorskip("litert_quantizer")
        with pytest.raises(ConversionError) as info:
            convert(tmp_path / "sm", tmp_path / "m.tflite", calibration=calib, quantize="int8", engine=engine, progress=False)
        assert str(info.value).splitlines() == [
            "litert-quantizer failed: Tensor data is null. Run allocate_tensors() first. Try --engine tflite "
            "(TensorFlow's calibrator)."
        ]
        assert not (tmp_path / "m.tflite").exists()
        return
    result = convert(tmp_path / "sm", tmp_path / "m.tflite", calibration=calib, eval_data=ev, quantize="int8", engine=engine, progress=False)
    assert result.recurrent.startswith(
        "recurrent layers unrolled over their time steps in the SavedModel's graph for calibration: "
    ) and f"({STEPS} steps)" in result.recurrent
    ops = {o.name for o in result.operators}
    assert "WHILE" not in ops and "QUANTIZE" in ops
    got = np.concatenate([tfedge.Interpreter(result.output).run(ev[i : i + 1])["output_0"] for i in range(len(ev))])
    assert cosine(got, reference(model, ev)) >= 0.99
    assert result.outputs[0].cosine == pytest.approx(cosine(got, reference(model, ev)), abs=1e-5)


def test_saved_model_with_a_free_sequence_length_is_refused(sequences: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """No fixed number of time steps: the loop cannot be unrolled, and the line says what to do."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, FEATURES), name="seq")
    keras.Model(inp, keras.layers.Dense(3)(keras.layers.LSTM(UNITS)(inp))).export(str(tmp_path / "sm"), verbose=False)
    with pytest.raises(ConversionError) as info:
        convert(tmp_path / "sm", tmp_path / "m.tflite", calibration=sequences[0], quantize="int8", progress=False)
    assert str(info.value).splitlines()[0].startswith(
        f"Source {str(tmp_path / 'sm')!r}: the loop of 'functional"
    )
    assert str(info.value).splitlines()[0].endswith(
        "has no fixed number of steps (its sequence length is free), so it cannot be unrolled to calibrate. Export the "
        "model with a fixed sequence length (keras.Input((STEPS, FEATURES))), or use --quantize dynamic or float16."
    )
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_and_batch_option(suffix: str, sequences: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    model = build("lstm")
    path = tmp_path / f"m{suffix}"
    model.save(path)
    result = convert(path, tmp_path / "m.tflite", eval_data=sequences[1][:8], batch=4, progress=False)
    kind = "keras" if suffix == ".keras" else "h5"
    assert result.static_batch_note == f"batch fixed to 4 by tracing the {kind} source again"
    interp = tfedge.Interpreter(result.output, backend="ai_edge_litert")
    assert interp.input_specs()[0].shape == (4, STEPS, FEATURES)
    got = interp.run(sequences[1][:4])["output_0"]
    assert cosine(got, np.asarray(model(sequences[1][:4]))) > 0.99999
    assert result.eval_samples == 8 and result.outputs[0].cosine > 0.99999
