"""Issue #22: tfedge-convert on models and data no one here made (Keras 3 exports, bad data).

Each finding of the issue has a test: bad calibration data refused before TensorFlow starts,
keep-float auto on a SavedModel, the report's runtime rows from child processes, one line
and exit 1 for any failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfedge.converters import convert
from tfedge.converters.cli import main
from tfedge.errors import ConversionError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

NAN_MESSAGE = (
    "Calibration data {path!r} has NaN in sample 3 (1 of 40 samples hold NaN or inf): calibration and "
    "validation need finite values. Drop or fix those samples (keep x[np.isfinite(x).reshape(len(x), -1).all(axis=1)])."
)


def build_mlp() -> Any:
    """A Keras 3 MLP of three Dense layers (the issue's model), seeded."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16,), name="x"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def mlp_sm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MLP exported with Keras 3's model.export() (what a new user has)."""
    path = tmp_path_factory.mktemp("mlp") / "sm"
    build_mlp().export(str(path), verbose=False)
    return path


@pytest.fixture(scope="module")
def mlp_x() -> np.ndarray:
    return np.random.default_rng(0).random((40, 16)).astype(np.float32)


def cli_child(args: list[str], cwd: Path, *, check_tf: bool = True) -> subprocess.CompletedProcess[str]:
    """tfedge-convert in a fresh process (as a user runs it); prints whether TensorFlow was imported."""
    code = (
        "import sys\nfrom tfedge.converters.cli import main\n"
        f"code = main({[*args, '--no-progress']!r})\n"
        + ("print('tensorflow imported:', 'tensorflow' in sys.modules)\n" if check_tf else "")
        + "raise SystemExit(code)\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_bad_data_is_refused_before_tensorflow_starts(mlp_sm: Path, mlp_x: np.ndarray, tmp_path: Path) -> None:
    """Finding 1 and 6: NaN, inf and a missing file are one line, exit 1, no TensorFlow, no file."""
    nan = mlp_x.copy()
    nan[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    inf = mlp_x.copy()
    inf[7:9, 0] = np.inf
    np.savez(tmp_path / "inf.npz", x=inf)
    cases = {
        "nan.npy": NAN_MESSAGE.format(path="nan.npy"),
        "inf.npz": "Calibration data for input 'x' has inf in sample 7 (2 of 40 samples hold NaN or inf): calibration "
        "and validation need finite values. Drop or fix those samples (keep x[np.isfinite(x).reshape(len(x), -1).all(axis=1)]).",
        "missing.npy": "Calibration data 'missing.npy' does not exist.",
    }
    for name, message in cases.items():
        proc = cli_child([str(mlp_sm), "-o", "out.tflite", "--quantize", "int8", "--calibration", name], tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"tfedge-convert: error: {message}"]
        assert proc.stdout.strip() == "tensorflow imported: False"
        assert not (tmp_path / "out.tflite").exists()


def test_all_nan_on_a_cnn_is_an_error_not_a_segfault(saved_model: Path, tmp_path: Path) -> None:
    """Finding 1: an all-NaN set crashed TensorFlow's calibrator on a CNN (exit 139, nothing printed)."""
    np.save(tmp_path / "allnan.npy", np.full((40, 8, 8, 1), np.nan, np.float32))
    proc = cli_child([str(saved_model), "-o", "out.tflite", "--quantize", "int8", "--calibration", "allnan.npy"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "tfedge-convert: error: Calibration data 'allnan.npy' has NaN in sample 0 (40 of 40 samples hold NaN or inf): "
        "calibration and validation need finite values. Drop or fix those samples "
        "(keep x[np.isfinite(x).reshape(len(x), -1).all(axis=1)])."
    ]


def test_nan_from_an_iterable_names_the_input(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    """Data that can only be checked once read (an iterable) is checked before the conversion too."""
    bad = calib[:10].copy()
    bad[4, 0, 0, 0] = -np.inf
    with pytest.raises(ConversionError) as info:
        convert(saved_model, tmp_path / "m.tflite", quantize="int8", calibration=iter(list(bad)), progress=False)
    assert str(info.value).startswith("Calibration data for input 'image' has inf in sample 4 (1 of 10 samples")
    assert not (tmp_path / "m.tflite").exists()


def test_one_sample_is_warned_and_the_report_says_what_validated(mlp_sm: Path, mlp_x: np.ndarray, tmp_path: Path) -> None:
    """Finding 1: 1 sample got no warning, and the report claimed random inputs."""
    result = convert(mlp_sm, tmp_path / "m.tflite", quantize="int8", calibration=mlp_x[:1], progress=False)
    assert result.eval_origin == "the only calibration sample (given arrays), also used to calibrate"
    assert result.eval_samples == 1
    assert (
        "only 1 calibration sample for --quantize int8: activation ranges measured on so few may not cover real "
        "inputs; give at least 100 representative samples (200 are used by default)."
    ) in result.warnings
    three = convert(mlp_sm, tmp_path / "m3.tflite", quantize="int8", calibration=mlp_x[:3], progress=False)
    assert any(w.startswith("only 2 calibration samples for --quantize int8") for w in three.warnings)
    assert three.eval_samples == 1
    plenty = convert(mlp_sm, tmp_path / "f16.tflite", quantize="float16", calibration=mlp_x[:3], progress=False)
    assert not any("calibration sample" in w for w in plenty.warnings)  # float16 calibrates nothing


def test_keep_float_auto_on_a_keras3_export(mlp_sm: Path, mlp_x: np.ndarray, tmp_path: Path) -> None:
    """Finding 2: a budget only float meets denylisted every layer: TensorFlow's debugger raised ValueError."""
    result = convert(
        mlp_sm, tmp_path / "m.tflite", quantize="int8", keep_float=("auto",), calibration=mlp_x,
        min_cosine=0.9999999, progress=False,
    )
    assert result.passed and (tmp_path / "m.tflite").is_file()
    assert len(result.kept_float) >= 3  # the three Dense layers (and more) left in float
    assert min(o.cosine for o in result.outputs) >= 0.9999999


def test_keep_float_auto_on_a_tf_function_export(tmp_path: Path, mlp_x: np.ndarray) -> None:
    """Finding 2 for SavedModels that tf.saved_model.save wrote from a tf.function."""
    rng = np.random.default_rng(0)
    module = tf.Module()
    module.w1 = tf.Variable(rng.normal(size=(16, 24)).astype(np.float32))
    module.w2 = tf.Variable(rng.normal(size=(24, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((None, 16), tf.float32, name="x")])
    def serve(x: Any) -> Any:
        return {"y": tf.matmul(tf.nn.relu(tf.matmul(x, module.w1)), module.w2)}

    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": serve})
    result = convert(
        tmp_path / "sm", tmp_path / "m.tflite", quantize="int8", keep_float=("auto",), calibration=mlp_x,
        min_cosine=0.9999999, progress=False,
    )
    assert result.passed and result.kept_float


def test_report_runtime_rows_come_from_child_processes(mlp_sm: Path, tmp_path: Path) -> None:
    """Finding 5 and 6: in a process that imported TensorFlow, tflite_runtime still runs the model (a child
    checks it); the JSON report names the source by its path; no XNNPACK INFO line."""
    pytest.importorskip("tflite_runtime")
    proc = cli_child([str(mlp_sm), "-o", "m.tflite", "--json"], tmp_path, check_tf=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    rows = {r["backend"]: r for r in report["runtimes"]}
    assert rows["tflite_runtime"]["ok"], rows["tflite_runtime"]["error"]
    assert rows["tflite_runtime"]["version"] == "2.14.0"
    assert rows["ai_edge_litert"]["ok"] and rows["ai_edge_litert"]["required"]
    assert report["source"] == str(mlp_sm)
    assert "INFO: Created TensorFlow Lite XNNPACK" not in proc.stderr


def test_an_untranslated_failure_is_one_line(mlp_sm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything TensorFlow raises that nothing translated: one line, exit 1; --verbose adds the traceback."""
    import importlib

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("Please check if the quantized model is in debug mode")

    monkeypatch.setattr(importlib.import_module("tfedge.converters.stage_validate"), "model_operators", broken)
    code = main([str(mlp_sm), "-o", str(tmp_path / "m.tflite"), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        "tfedge-convert: error: The conversion failed unexpectedly (ValueError: Please check if the quantized model "
        "is in debug mode); nothing was written. Rerun with --verbose for the details and report it to tfedge."
    ]
    assert not (tmp_path / "m.tflite").exists()
    code = main([str(mlp_sm), "-o", str(tmp_path / "m.tflite"), "--no-progress", "--verbose"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("tfedge-convert: error:")


def test_quantize_auto_picks_the_smallest_that_meets_the_budget(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    """Finding 4: auto took the first mode that met the budget (int8 keeping every layer in float,
    bigger than float32) and never reached float16. Now every candidate is measured."""
    from tfedge.converters.auto import convert_auto

    auto = convert_auto(saved_model, tmp_path / "auto.tflite", calibration=calib, min_cosine=0.99999, progress=False)
    table = auto.format_table()
    assert [t.mode for t in auto.tries] == ["int8", "dynamic", "int8 --keep-float auto", "float16", "none (float32)"]
    met = [t for t in auto.tries if t.passed]
    assert {"float16", "none (float32)"} <= {t.mode for t in met}
    chosen = next(t for t in auto.tries if t.mode == auto.chosen)
    assert all(chosen.size_bytes <= t.size_bytes for t in met if t.size_bytes is not None)  # never bigger than one it passed over
    assert auto.result.size_after == chosen.size_bytes == (tmp_path / "auto.tflite").stat().st_size
    for t in auto.tries:
        assert t.mode in table
    assert f"{chosen.mode:<24}" in table and "met (chosen)" in table


def unrolled_lstm_sm(path: Path) -> Path:
    """A SavedModel of an LSTM whose loop was not unrolled: TensorFlow's calibrator dies of SIGSEGV on it (batch 1)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 3), name="seq"), keras.layers.LSTM(4), keras.layers.Dense(2)])
    model.export(str(path), verbose=False)
    return path


def lstm_samples() -> Any:
    from tfedge.converters.calibration import Samples

    return Samples({"seq": np.random.default_rng(0).random((8, 5, 3)).astype(np.float32)}, "test")


def test_a_calibrator_crash_is_an_error_message(tmp_path: Path) -> None:
    """TensorFlow's calibrator dies of SIGSEGV on a recurrent loop: in the child it runs in, that is one line."""
    from tfedge.converters._child import convert_in_child
    from tfedge.converters.config import ConvertOptions, resolve_options
    from tfedge.converters.sources import load_source

    with load_source(unrolled_lstm_sm(tmp_path / "sm")) as src:
        src.with_static_batch(1)  # what the converter does before it would calibrate the loop
        with pytest.raises(ConversionError) as info:
            convert_in_child(src.saved_model_dir, resolve_options(ConvertOptions(quantize="int8", progress=False)), lstm_samples(), src.label)
    assert str(info.value) == (
        f"TensorFlow's calibrator crashed (SIGSEGV) converting Source {str(tmp_path / 'sm')!r} to int8; nothing was "
        "written. Check the calibration data looks like real inputs, or try --quantize dynamic or float16, or --engine litert."
    )


def test_a_calibrator_crash_in_the_quantization_debugger_is_an_error_message(tmp_path: Path) -> None:
    """--keep-float's debugger calibrates too: in the worker, its SIGSEGV is one line, and the next debugger works."""
    from tfedge.converters import _child
    from tfedge.converters.config import ConvertOptions, resolve_options
    from tfedge.converters.sources import load_source

    opts = resolve_options(ConvertOptions(quantize="int8", keep_float=("auto",), progress=False))
    with load_source(unrolled_lstm_sm(tmp_path / "sm")) as src:
        src.with_static_batch(1)
        with pytest.raises(ConversionError) as info:
            _child.DebuggerInWorker(src.saved_model_dir, opts, lstm_samples(), src.label, "--keep-float")
    assert str(info.value) == (
        f"TensorFlow's calibrator crashed (SIGSEGV) measuring the layers of Source {str(tmp_path / 'sm')!r} for "
        "--keep-float; nothing was written. Check the calibration data looks like real inputs, or convert without --keep-float."
    )
    assert _child._worker is None  # the dead worker is let go; the next job starts another


def test_the_quantization_debugger_runs_in_the_worker(mlp_sm: Path, mlp_x: np.ndarray) -> None:
    """The debugger calibrates in the worker (its pid), keeps its session there, and hands models back."""
    from tfedge.converters import _child
    from tfedge.converters.calibration import Samples
    from tfedge.converters.config import ConvertOptions, resolve_options
    from tfedge.converters.sources import load_source
    from tfedge.converters.validate import model_operators

    opts = resolve_options(ConvertOptions(quantize="int8", keep_float=("auto",), progress=False))
    with load_source(mlp_sm) as src, _child.DebuggerInWorker(
        src.saved_model_dir, opts, Samples({"x": mlp_x}, "test"), src.label, "--keep-float"
    ) as dbg:
        assert _child._worker is not None and dbg.pid == _child._worker.proc.pid != os.getpid()
        layers = dbg.layers()
        assert sum(r.op == "FULLY_CONNECTED" for r in layers) == 3
        base, kept = dbg.model([]), dbg.model([layers[0].tensor])
        assert sum(o.count for o in model_operators(base) if o.name == "FULLY_CONNECTED") == 3
        assert "DEQUANTIZE" in {o.name for o in model_operators(kept)} and len(kept) > len(base)
        session = dbg.session
    with pytest.raises(_child.ChildFailed, match="No quantization debugger session"):  # closed in the worker
        with _child._job({"kind": "debug-model", "session": session, "denylisted": []}, None, "asking", ""):
            pass


def test_calibrating_conversions_share_one_worker(saved_model: Path, calib: np.ndarray, tmp_path: Path) -> None:
    """The calibrating conversions of a process run in one worker (one TensorFlow import), replaced after a crash."""
    from tfedge.converters import _child

    pids = []
    for name in ("a", "b"):
        convert(saved_model, tmp_path / f"{name}.tflite", calibration=calib, quantize="int8", validate=False, progress=False)
        assert _child._worker is not None and _child._worker.proc.poll() is None
        pids.append(_child._worker.proc.pid)
    assert pids[0] == pids[1]
    _child._worker.proc.kill()  # as a calibrator crash would end it
    _child._worker.proc.wait()
    convert(saved_model, tmp_path / "c.tflite", calibration=calib, quantize="int8", validate=False, progress=False)
    assert _child._worker.proc.pid != pids[0] and (tmp_path / "c.tflite").is_file()


def test_poor_agreement_is_called_out_in_the_report() -> None:
    """An output that drifted from TensorFlow is never a silent exit 0: the report warns (NaN too)."""
    from tfedge.converters.report import OutputMetrics
    from tfedge.converters.stage_validate import LOW_COSINE, agreement_warnings

    good = OutputMetrics("scores", 0.01, 0.001, 0.9995, None)
    poor = OutputMetrics("embedding", 0.8, 0.2, 0.845, None)
    broken = OutputMetrics("logits", float("nan"), float("nan"), float("nan"), None)
    assert agreement_warnings([good]) == []
    warnings = agreement_warnings([good, poor, broken])
    assert len(warnings) == 2
    assert warnings[0] == (
        f"output 'embedding' agrees with TensorFlow only to cosine 0.845000 (under {LOW_COSINE}): its answers may "
        "be wrong. Check that the calibration data is representative, or use a milder mode (int16x8, dynamic, "
        "float16); --min-cosine makes this an error."
    )
    assert warnings[1].startswith("output 'logits' agrees with TensorFlow only to cosine nan")
