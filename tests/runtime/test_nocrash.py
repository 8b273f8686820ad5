"""No model kills the host through tfedge's defaults; a missing delegate falls back to XNNPACK.

``quantized_add_scale_ratio.tflite`` is structurally valid and aborts both backends in
``allocate_tensors()`` (its int16 ADD's scales, powers of two with ``pot_scale_int16`` off, put a
multiplier out of the kernel's range; the structural check reads no op options): with the default
probe, tfedge refuses it with one line. LiteRT's own ``blockwise_quantized.tflite`` aborts
both too, for a missing scale: the structural check refuses that one before any backend sees it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import tfedge
from support import MODELS
from tfedge import _backend, isolate

CASES = Path(__file__).resolve().parent.parent / "data" / "runtime-cases"
ABORTS = CASES / "quantized_add_scale_ratio.tflite"


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test probes afresh: its own verdict cache, none from this process."""
    monkeypatch.setenv("TFEDGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TFEDGE_PROBE", raising=False)
    monkeypatch.setattr(isolate, "_verdicts", {})


def test_aborting_model_is_refused_in_process(backend: str) -> None:
    with pytest.raises(tfedge.ModelError) as info:
        tfedge.Interpreter(ABORTS, backend=backend)
    label = _backend.get_backend(backend).label
    assert str(info.value) == (f"Model file {str(ABORTS)!r} crashed the {label} backend (SIGABRT) in a test run. "
                               "It was not loaded into this process.")


def test_a_quantized_op_without_a_scale_is_refused_before_any_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    model = CASES / "blockwise_quantized.tflite"

    def no_probe(*args: object, **kwargs: object) -> None:
        raise AssertionError("the structural check refuses it first")

    monkeypatch.setattr(isolate, "probe_model", no_probe)
    with pytest.raises(tfedge.ModelError) as info:
        tfedge.Interpreter(model)
    assert str(info.value).startswith(
        f"Model file {str(model)!r}: operator 0 in subgraph 0 (ADD) is quantized, but its input tensor 3 in "
        "subgraph 0 has no quantization scale; its kernel needs exactly one. The backend would crash the process")


@pytest.mark.parametrize("command", ["info", "run", "bench"])
def test_cli_ends_with_one_line_and_exit_1(backend: str, command: str, tmp_path: Path) -> None:
    extra = ["--random"] if command == "run" else ["--runs", "1"] if command == "bench" else []
    proc = subprocess.run(
        [sys.executable, "-m", "tfedge", command, str(ABORTS), "--backend", backend, *extra],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    # info shows what the file declares (see test_info_shows_what_the_file_declares); the others nothing.
    assert ("input" in proc.stdout) if command == "info" else proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("tfedge: error: Model file "), proc.stderr


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_info_shows_what_the_file_declares_and_names_the_missing_op(backend: str, json_flag: list[str],
                                                                     tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfedge", "info", str(MODELS / "custom_sinh.tflite"), "--backend", backend, *json_flag],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("tfedge: error: Model file ") and f"uses custom op(s) Sinh that {backend}" in proc.stderr
    if json_flag:
        info = json.loads(proc.stdout)
        assert info["loaded"] is False and info["operators"] == {"CUSTOM:Sinh": 1}
        assert info["main_graph"] == [{"kind": "input", "name": "x", "shape": [1], "type": "FLOAT32"},
                                      {"kind": "output", "name": "Identity", "shape": [1], "type": "FLOAT32"}]
    else:
        lines = proc.stdout.splitlines()
        assert lines[0].endswith("custom_sinh.tflite (not loaded: read from the file)")
        assert lines[2].split() == ["input", "x", "(1,)", "FLOAT32"]
        assert lines[3].split() == ["output", "Identity", "(1,)", "FLOAT32"]
        assert lines[4] == "operators  CUSTOM:Sinh x1"


def test_second_load_and_pool_start_no_child(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = MODELS / "add.tflite"
    first = tfedge.Interpreter(model, backend=backend)  # probes once

    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("a second probe of the same model")

    monkeypatch.setattr(isolate, "_in_subprocess", no_child)
    monkeypatch.setattr(isolate, "_in_spawned_process", no_child)
    tfedge.Interpreter(model, backend=backend)
    tfedge.InterpreterPool(first.model, size=2, backend=backend).close()


def test_probe_can_be_turned_off(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("probed although turned off")

    monkeypatch.setattr(isolate, "_in_subprocess", no_child)
    tfedge.Interpreter(MODELS / "add.tflite", backend=backend, probe=False)
    monkeypatch.setenv("TFEDGE_PROBE", "0")
    tfedge.Interpreter(MODELS / "add.tflite", backend=backend)


@pytest.mark.parametrize("entries", [["gpu"], ["edgetpu"]])
def test_missing_delegate_falls_back_to_xnnpack(backend: str, entries: list[str], monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("TFEDGE_DELEGATE_PATH", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfedge.DelegateFallbackWarning)
        asked = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=entries)
    default = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    # The same CPU path as not asking: XNNPACK, not the builtin kernels.
    assert asked.delegates_used == default.delegates_used == ("xnnpack",)
    assert asked.placement == default.placement


def test_none_still_means_builtin_kernels(backend: str) -> None:
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=["gpu", "none"])
    assert interp.delegates_used == ()


def test_identity_cache_skips_the_hash_and_never_outlives_a_change(backend: str, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(isolate, "RACY_NS", 0)  # the file was just written: trust its identity at once
    children: list[str] = []
    real_child = isolate._in_subprocess

    def counted(data: bytes, name: str, timeout: float) -> tuple[str, str]:
        children.append(name)
        return real_child(data, name, timeout)

    monkeypatch.setattr(isolate, "_in_subprocess", counted)
    model = tmp_path / "m.tflite"
    model.write_bytes((MODELS / "add.tflite").read_bytes())
    tfedge.Interpreter(model, backend=backend)
    assert len(children) == 1
    assert len(list((tmp_path / "cache" / "probe" / "files").glob("*.json"))) == 1

    hashed: list[int] = []
    real_sha = isolate.hashlib.sha256

    def sha(data: bytes = b"") -> object:
        hashed.append(len(data))
        return real_sha(data)

    monkeypatch.setattr(isolate.hashlib, "sha256", sha)
    monkeypatch.setattr(isolate, "_verdicts", {})  # a later process: only the disk cache
    tfedge.Interpreter(model, backend=backend)
    assert len(children) == 1
    assert max(hashed) < 1000, "the model's bytes were hashed on an identity hit"

    # Another model in the same place: a new identity, so a new probe of the new bytes.
    other = (MODELS / "multi_add.tflite").read_bytes()
    model.write_bytes(other)
    tfedge.Interpreter(model, backend=backend)
    assert len(children) == 2
    assert any(n == len(other) for n in hashed)


def test_a_file_written_just_now_is_hashed(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes((MODELS / "add.tflite").read_bytes())
    assert isolate.file_identity(model) is None
