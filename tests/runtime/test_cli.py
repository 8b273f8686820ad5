"""The ``tfedge`` command: info, run, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support import model_path

from tfedge.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_info_json(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    assert main(["info", str(model_path("add_quantized_int8.tflite")), "--json", "--backend", backend]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == backend
    assert info["size_bytes"] == model_path("add_quantized_int8.tflite").stat().st_size
    (sig,) = info["signatures"].values()
    (inp,) = sig["inputs"]
    assert inp["name"] == "a" and inp["dtype"] == "int8" and inp["shape"] == [1, 8, 8, 3]
    assert inp["quantization"]["zero_points"] == [0]


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(model_path("multi_signatures.tflite"))]) == 0
    out = capsys.readouterr().out
    assert "signature  add" in out and "signature  sub" in out and "(signature (-1,))" in out
    assert "state  " not in out
    assert main(["info", str(model_path("unidirectional_sequence_lstm.tflite"))]) == 0
    assert ("state      kept from one call to the next (UNIDIRECTIONAL_SEQUENCE_LSTM): one stream per interpreter, "
            "reset_all_variables() starts it again") in capsys.readouterr().out


def test_run_npy_to_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str) -> None:
    x = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    np.save(tmp_path / "a.npy", x)
    out = tmp_path / "out.npz"
    code = main(["run", str(model_path("add.tflite")), "--input", f"a={tmp_path / 'a.npy'}",
                 "-o", str(out), "--backend", backend])
    assert code == 0
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["x"], x * 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_run_random_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(model_path("multi_add.tflite")), "--random", "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)
    assert len(outputs) == 2 and all(v["dtype"] == "float32" for v in outputs.values())


def test_run_without_inputs_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(model_path("add.tflite"))]) == 1
    assert capsys.readouterr().err == (
        "tfedge: error: No inputs given. Pass --input NAME=FILE.npy (or .npz), or --random.\n"
    )


def test_wrong_shape_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "a.npy", np.zeros((8, 8, 3), np.float32))
    assert main(["run", str(model_path("add.tflite")), "-i", str(tmp_path / "a.npy")]) == 1
    assert capsys.readouterr().err == (
        "tfedge: error: Input 'a' expects shape (1, 8, 8, 3) float32, got (8, 8, 3) float32.\n"
    )


def test_output_in_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nope" / "out.npz"
    assert main(["run", str(model_path("add.tflite")), "--random", "-o", str(target)]) == 1
    assert "the directory" in capsys.readouterr().err and not target.exists()


@pytest.mark.parametrize("bad", ["test_model_broken.tflite", "missing.tflite"])
def test_broken_model_one_line_no_traceback(bad: str) -> None:
    path = model_path("add.tflite").parent / bad
    result = subprocess.run(
        [sys.executable, "-m", "tfedge", "info", str(path)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin"}, timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("INFO:")]
    assert len(lines) == 1 and lines[0].startswith("tfedge: error: Model file")
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(model_path("add.tflite")), "--threads", "0"])
    assert info.value.code == 2
    assert "--threads: must be a whole number >= 1, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_closed_stdout_is_quiet() -> None:
    """`tfedge info m.tflite | head -0`: exit 141 like other tools, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "tfedge", "info", str(model_path("add.tflite")), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the command has started up and written anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_backend_noise_is_dropped_from_stderr(backend: str) -> None:
    """The backends print an XNNPACK INFO line to fd 2 on every load; the command does not."""
    proc = subprocess.run([sys.executable, "-m", "tfedge", "info", str(model_path("add.tflite")), "--backend", backend],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("model ")
    assert proc.stderr == ""


def test_other_native_output_is_replayed_and_python_output_is_live() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        import tfedge.cli as cli

        def fake(args):
            os.write(2, b"native line\\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
            print("python line", file=sys.stderr, flush=True)
            return 3

        parser = cli.build_parser()
        cli.build_parser = lambda: parser
        for sub in parser._subparsers._group_actions[0].choices.values():
            sub.set_defaults(func=fake)
        sys.exit(cli.main(["info", "x.tflite"]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    # Python's own stderr as it happens; what native code wrote, held back, then replayed without the noise.
    assert proc.stderr == "python line\nnative line\n"


def test_runs_with_stderr_closed() -> None:
    """Started as `tfedge info m.tflite 2>&-` (a service with no stderr): still works."""
    cmd = f"exec {sys.executable} -m tfedge info {model_path('add.tflite')} 2>&-"
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("model ")
