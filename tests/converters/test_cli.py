"""tfedge-convert through main(): each bad input is one error line, exit 1, no file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfedge.converters.cli import main

tf = pytest.importorskip("tensorflow")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one main() call."""
    code = main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str, out_dir: Path, message: str) -> None:
    """Exit 1, a single 'tfedge-convert: error:' line equal to ``message``, nothing left in out_dir."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("INFO: Created TensorFlow Lite")]
    assert code == 1
    assert lines == [f"tfedge-convert: error: {message}"]
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


@pytest.fixture()
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_missing_source(tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, _, err = run_cli([str(missing), "-o", str(out_dir / "m.tflite")], capsys)
    assert_one_error(code, err, out_dir, f"Source {str(missing)!r} does not exist. Pass a SavedModel directory, a .keras or a .h5 file.")


def test_directory_that_is_not_a_saved_model(tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli([str(empty), "-o", str(out_dir / "m.tflite")], capsys)
    assert_one_error(
        code, err, out_dir,
        f"Source {str(empty)!r} is a directory without saved_model.pb, so not a SavedModel. Export one "
        "with model.export(DIR) (Keras 3) or tf.saved_model.save(obj, DIR).",
    )


def test_truncated_keras_file(keras_file: Path, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Keras itself says "File not found" for a file that is there; the message names the real problem."""
    cut = tmp_path / "cut.keras"
    cut.write_bytes(keras_file.read_bytes()[:2000])
    code, _, err = run_cli([str(cut), "-o", str(out_dir / "m.tflite")], capsys)
    assert_one_error(
        code, err, out_dir,
        f"Source {str(cut)!r} is not a zip archive, as a .keras file must be: it is truncated, corrupt or "
        "not a Keras model. Save it again with model.save(PATH).",
    )


def test_calibration_of_the_wrong_shape(saved_model: Path, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 8, 8), np.float32))
    code, _, err = run_cli([str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "int8", "--calibration", str(bad)], capsys)
    assert_one_error(
        code, err, out_dir,
        "Calibration data for input 'image' has shape (10, 8, 8) float32; the model expects "
        "(None, 8, 8, 1) float32 (the first axis counts samples).",
    )


def test_calibration_of_the_wrong_dtype(saved_model: Path, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 8, 8, 1), np.uint8))
    code, _, err = run_cli([str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "int8", "--calibration", str(bad)], capsys)
    assert_one_error(
        code, err, out_dir,
        "Calibration data for input 'image' has dtype uint8; the model expects (None, 8, 8, 1) float32 "
        "(the first axis counts samples). Normalize images to floats first (e.g. --normalization unit).",
    )


def test_calibration_under_a_wrong_input_name(saved_model: Path, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((10, 8, 8, 1), np.float32))
    code, _, err = run_cli([str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "int8", "--calibration", str(bad)], capsys)
    assert_one_error(
        code, err, out_dir,
        "Calibration data has an array for input 'pixels', which the model does not have. Available: 'image'.",
    )


def test_int8_without_calibration(saved_model: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli([str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "int8"], capsys)
    assert_one_error(
        code, err, out_dir,
        "--quantize int8 needs calibration data: pass --calibration with a .npy, .npz or image "
        "directory (about 100-500 samples).",
    )


def test_output_in_a_missing_directory(saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "m.tflite"
    code, _, err = run_cli([str(saved_model), "-o", str(target)], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip() == (
        f"tfedge-convert: error: Output directory {str(target.parent)!r} does not exist. "
        "Create it first or choose another output path."
    )
    assert not target.parent.exists()


def test_model_with_select_tf_ops(flex_function: Any, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "flex_savedmodel"
    holder = tf.Module()
    holder.f = flex_function
    tf.saved_model.save(holder, str(source), signatures={"serving_default": flex_function.get_concrete_function()})
    code, _, err = run_cli([str(source), "-o", str(out_dir / "m.tflite")], capsys)
    assert_one_error(
        code, err, out_dir,
        "The model needs TensorFlow ops with no TFLite builtin: MatrixDeterminant. The thin runtime "
        "(tfedge on ai_edge_litert or tflite_runtime) cannot run Select TF (flex) ops. Rewrite them with "
        "builtin ops, or pass --allow-select-tf-ops to convert anyway (the model then needs a runtime "
        "built with the Flex delegate).",
    )


def test_existing_output_is_kept_without_overwrite(saved_model: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = out_dir / "m.tflite"
    target.write_bytes(b"keep me")
    code, _, err = run_cli([str(saved_model), "-o", str(target)], capsys)
    assert code == 1 and "already exists. Pass --overwrite" in err
    assert target.read_bytes() == b"keep me"
    code, out, _ = run_cli([str(saved_model), "-o", str(target), "--overwrite", "--no-validate"], capsys)
    assert code == 0 and target.read_bytes()[4:8] == b"TFL3"
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.tflite"]  # no temp files left


def test_report_json_matches_the_table(saved_model: Path, calib_npy: Path, out_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    code, out, err = run_cli(
        [str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "int8", "--calibration", str(calib_npy), "--report", str(report)],
        capsys,
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["passed"] is True and data["options"]["quantize"] == "int8"
    assert data["eval_samples"] == 12 and data["size_after"] == (out_dir / "m.tflite").stat().st_size
    assert f"{data['outputs'][0]['cosine']:.6f}" in out
    assert "runtime     ai_edge_litert" in out


def test_broken_budget_exits_nonzero_and_writes_nothing(saved_model: Path, calib_npy: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        [str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "int8", "--calibration", str(calib_npy), "--min-cosine", "0.9999999"],
        capsys,
    )
    assert code == 1 and "below --min-cosine 0.9999999" in err
    assert "FAILED      output 'output_0' has cosine" in out  # the report is still printed
    assert list(out_dir.iterdir()) == []


def test_required_runtime_that_lacks_an_operator_version(saved_model: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        [str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "dynamic", "--runtime", "tflite_runtime"], capsys
    )
    assert code == 1
    assert (
        "tflite_runtime cannot run the model: it needs FULLY_CONNECTED version 12, which tflite_runtime "
        "2.14.0 lacks. Fixes: convert with --per-tensor (per-channel dynamic-range FULLY_CONNECTED needs "
        "version 12); run it with ai_edge_litert 2.3.0, which can; convert with --quantize int8 or float16"
    ) in err
    assert list(out_dir.iterdir()) == []
    # The first fix it names works.
    code, out, err = run_cli(
        [str(saved_model), "-o", str(out_dir / "m.tflite"), "--quantize", "dynamic", "--per-tensor", "--runtime", "tflite_runtime"],
        capsys,
    )
    assert code == 0, err
    assert "tflite_runtime 2.14.0: runs it (required)" in out


def test_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from tfedge.converters.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_probe_runs_without_tensorflow(tmp_path: Path) -> None:
    # This process imported TensorFlow, after which tflite_runtime cannot run TF 2.21's
    # models here; the probes run in children that never import it.
    from tfedge.converters import convert
    from tfedge.converters.validate import probe_runtimes

    assert "tensorflow" in sys.modules
    path = convert(build_tiny(), tmp_path / "t.tflite", validate=False).output
    checks = probe_runtimes(Path(path).read_bytes(), ["tflite_runtime"])
    assert {c.backend: (c.ok, c.error) for c in checks} == {"ai_edge_litert": (True, None),
                                                           "tflite_runtime": (True, None)}
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from tfedge.isolate import run_once; "
         "print(run_once(sys.stdin.buffer.read(), 'tflite_runtime')); print('tensorflow' in sys.modules)"],
        input=Path(path).read_bytes(), capture_output=True, check=True,
    ).stdout.decode().splitlines()
    assert child == ["('ok', '')", "False"]


def build_tiny() -> Any:
    """A tf.function adding one: the smallest model to probe."""

    @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32, name="x")])
    def add_one(x: Any) -> Any:
        return x + 1.0

    return add_one


def test_real_process_prints_one_error_line_for_flex_ops(flex_function: Any, tmp_path: Path, out_dir: Path) -> None:
    # In-process tests cannot see what native code writes to fd 2; a real process can.
    source = tmp_path / "flex_savedmodel"
    holder = tf.Module()
    holder.f = flex_function
    tf.saved_model.save(holder, str(source), signatures={"serving_default": flex_function.get_concrete_function()})
    proc = subprocess.run(
        [sys.executable, "-m", "tfedge.converters", str(source), "-o", str(out_dir / "m.tflite")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "tfedge-convert: error: The model needs TensorFlow ops with no TFLite builtin: MatrixDeterminant. "
        "The thin runtime (tfedge on ai_edge_litert or tflite_runtime) cannot run Select TF (flex) ops. "
        "Rewrite them with builtin ops, or pass --allow-select-tf-ops to convert anyway (the model then "
        "needs a runtime built with the Flex delegate)."
    ]
    assert list(out_dir.iterdir()) == []
