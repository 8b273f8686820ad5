"""Deterministic replay of every fuzz target's seeds, committed corpus and regressions (no atheris).

Each input must keep the target's promise (see ``_harness.check_input``): only the exceptions
the target allows, within the time limit, and memory (measured by tracemalloc) within
``_harness.memory_bound``. A finding's bytes in ``tests/fuzz/regressions/<target>/`` stay
here as its regression test.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ_DIR))  # the harness and the targets, never the repository root

import _harness  # noqa: E402

#: CI machines are slower and busier than a fuzzing run's: the replay allows more time.
REPLAY_TIME_LIMIT = 10.0


@pytest.mark.parametrize("name", _harness.target_names())
def test_target_keeps_its_promise_on_every_stored_input(name: str) -> None:
    try:
        module = _harness.load_target(name)
    except ModuleNotFoundError as exc:  # the converters' targets need TensorFlow and Pillow (the full cell)
        pytest.skip(f"fuzz_{name} needs {exc.name}, which is not installed here")
    assert module.seeds(), f"fuzz_{name}.seeds() gave no seeds"
    failures, count = [], 0
    for label, data in _harness.stored_inputs(name, module):
        count += 1
        if label.startswith("regression ") and label.split()[1].startswith(_harness.CRASH_PREFIXES):
            problem = _harness.check_in_child(name, _harness.REGRESSIONS_DIR / name / label.split()[1],
                                              time_limit=REPLAY_TIME_LIMIT)
            if problem is not None:
                failures.append(f"{label} ({len(data)} bytes): {problem}")
            continue
        finding = _harness.check_input(module, data, time_limit=REPLAY_TIME_LIMIT, trace_memory=True)
        if finding is not None:
            failures.append(f"{label} ({len(data)} bytes): {finding.signature}: {finding.message}")
    assert not failures, f"{len(failures)} of {count} inputs of {name!r}:\n" + "\n".join(failures)


def _regressions(name: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((_harness.REGRESSIONS_DIR / name).iterdir())]


def test_a_damaged_associated_files_zip_is_a_model_error_naming_it() -> None:
    from tfedge.errors import ModelError
    from tfedge.metadata import read_metadata

    for data in _regressions("metadata"):  # a bad seek, a member name that is not UTF-8
        with pytest.raises(ModelError, match=r"^TFLite metadata field \(associated files ZIP\): cannot be read \("):
            read_metadata(data)


def test_a_damaged_embedded_manifest_is_a_model_error_saying_rebuild() -> None:
    from tfedge.errors import ModelError

    module = _harness.load_target("embedded")
    messages = []
    for data in _regressions("embedded"):
        with pytest.raises(ModelError) as caught:
            module.one_input(data)
        messages.append(str(caught.value))
    assert "The embedded model manifest is damaged: 'models' is missing, expected an object of models by name. " \
        "Rebuild the binary." in messages
    assert "The embedded model manifest has format None, expected 1. Rebuild the binary with this tfedge." in messages
    assert any(m.startswith("The embedded model manifest is damaged: model 'add' has ['file', 'shAa256', 'size'], "
                            "expected the keys ['file', 'sha256', 'size']") for m in messages)


def test_an_image_declaring_more_pixels_than_its_file_holds_is_refused_before_decoding(tmp_path: Path) -> None:
    from tfedge.converters.calibration import load_samples
    from tfedge.errors import ConversionError

    module = _harness.load_target("calibration")
    (bomb,) = [p.read_bytes() for p in (_harness.REGRESSIONS_DIR / "calibration").glob("time-*")]
    (tmp_path / "bomb.webp").write_bytes(bomb[2:])  # the first two bytes pick the reader and the suffix
    with pytest.raises(ConversionError, match=r"^Calibration data: image '.*bomb.webp' declares 10757x10794 pixels, "
                       r"more than its 209 bytes can hold \(at most 4194304 pixels\); it is damaged or a "
                       r"decompression bomb. Resize or re-save it.$"):
        load_samples(tmp_path, module._IMAGE, limit=1)


@pytest.mark.parametrize(("case", "message"), [
    ("mean-overflow", "--mean 1e+40 cannot be written: the metadata holds finite float32 numbers (at most 3.403e+38 "
                      "in size)."),
    ("std-zero", "--std 0.0 holds a 0: pixels are divided by it; give non-zero values."),
    ("mean-std-lengths", "--mean has 2 values and --std 3: give one value, or one per channel for both."),
])
def test_a_normalization_the_metadata_cannot_hold_is_a_conversion_error(case: str, message: str) -> None:
    from tfedge.errors import ConversionError

    module = _harness.load_target("writer")
    with pytest.raises(ConversionError) as caught:
        module.one_input((_harness.REGRESSIONS_DIR / "writer" / f"exception-{case}").read_bytes())
    assert str(caught.value) == message


def test_a_quantized_op_without_a_scale_is_refused_by_the_structural_check() -> None:
    """The load target's finding: an int8 ADD writing a tensor (declared float32) with no scale.

    It aborted both backends in ``allocate_tensors()`` (SIGABRT in QuantizeMultiplierSmallerThanOneExp);
    the structural check now refuses it, so loading it in this process is safe.
    """
    from tfedge.errors import ModelError
    from tfedge.verify import verify_model

    (path,) = (_harness.REGRESSIONS_DIR / "load").glob("crash-c2652cc0*")
    with pytest.raises(ModelError, match=r"^operator 0 in subgraph 0 \(ADD\) is quantized, but its output tensor 0 in "
                       r"subgraph 0 has no quantization scale; its kernel needs exactly one\. The backend would crash"):
        verify_model(path.read_bytes())
    assert _harness.check_in_child("load", path) is None


_RESCALE = (r"its kernel requantizes the result by 2 x the larger input scale / \(2\^20 x the output scale\) = "
            r"{multiplier}, which must be below 1, so the output scale must be above {bound}\. The backend would crash")


@pytest.mark.parametrize(("prefix", "message"), [
    ("crash-3074a06", r"operator 0 in subgraph 0 \(ADD\) is quantized, but its output tensor 0 in subgraph 0 has the "
                      r"scale 2\.126e-22, too small for its inputs' scales \(0\.003922, 0\.003922\): "
     + _RESCALE.format(multiplier=r"3\.518e\+13", bound=r"7\.481e-09")),
    ("crash-7a0ad6b", r"operator 0 in subgraph 0 \(ADD\) is quantized, but its output tensor 0 in subgraph 0 has the "
                      r"scale 1, too small for its inputs' scales \(7\.737e\+25, 7\.737e\+25\): "
     + _RESCALE.format(multiplier=r"1\.476e\+20", bound=r"1\.476e\+20")),
    ("crash-8e58e19", r"operator 0 in subgraph 0 \(ADD\) is quantized, but its output tensor 0 in subgraph 0 has the "
                      r"scale 7\.347e-40, too small for its inputs' scales \(0\.003922, 0\.003922\): "
     + _RESCALE.format(multiplier=r"1\.018e\+31", bound=r"7\.481e-09")),
])
def test_a_quantized_add_whose_scales_put_its_multiplier_out_of_range_is_refused(prefix: str, message: str) -> None:
    """The load target's findings: each scale valid, their ratio out of the int8 ADD kernel's range.

    Both backends aborted in ``allocate_tensors()`` (SIGABRT: QuantizeMultiplierSmallerThanOneExp, given
    the output multiplier 2 x max(input scales) / (2^20 x output scale), checks it is below 1).
    """
    from tfedge.errors import ModelError
    from tfedge.verify import verify_model

    (path,) = (_harness.REGRESSIONS_DIR / "load").glob(f"{prefix}*")
    with pytest.raises(ModelError, match=f"^{message}"):
        verify_model(path.read_bytes())


def test_every_known_open_finding_is_contained_by_the_default_probe() -> None:
    """tests/fuzz/known/<target>/: findings not caught cheaply; the default probe must refuse each."""
    from tfedge import Interpreter
    from tfedge.errors import ModelError

    known = sorted((FUZZ_DIR / "known").glob("*/crash-*"))
    if not known:
        pytest.skip("no open finding: tests/fuzz/known/ is empty (fixed ones are in tests/fuzz/regressions/)")
    for path in known:
        with pytest.raises(ModelError, match=r"^The model crashed the .* backend \(SIGABRT\) in a test run\. "):
            Interpreter(path.read_bytes())
        assert _harness.check_in_child(path.parent.name, path) == "killed by SIGABRT", path


def _fake(body: object, allowed: tuple[type[BaseException], ...] = (ValueError,)) -> types.ModuleType:
    module = types.ModuleType("fuzz_fake")
    module.ALLOWED = allowed  # type: ignore[attr-defined]
    module.one_input = body  # type: ignore[attr-defined]
    return module


def test_the_check_tells_findings_from_allowed_errors() -> None:
    def allowed(data: bytes) -> None:
        raise ValueError("fine")

    def not_allowed(data: bytes) -> None:
        table: dict[bytes, int] = {}
        table[data] += 1

    def greedy(data: bytes) -> None:
        bytearray(_harness.memory_bound(len(data)) + 1)

    assert _harness.check_input(_fake(allowed), b"x") is None
    finding = _harness.check_input(_fake(not_allowed), b"x")
    assert finding is not None and finding.kind == "exception"
    assert finding.signature.startswith("KeyError@test_fuzz_replay.py:")
    assert finding.message == "KeyError: b'x'"
    finding = _harness.check_input(_fake(greedy), b"x", trace_memory=True)
    assert finding is not None and finding.kind == "memory"
    finding = _harness.check_input(_fake(lambda data: None), b"x", time_limit=-1.0)
    assert finding is not None and finding.kind == "time"


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="needs atheris (the fuzz extra)")
def test_fuzz_script_runs_a_target_and_reports(tmp_path: Path) -> None:
    script = FUZZ_DIR.parents[1] / "scripts" / "fuzz.py"
    run = subprocess.run([sys.executable, str(script), "verify", "--runs", "300",
                          "--regressions", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    row = next(line.split() for line in run.stdout.splitlines() if line.startswith("verify "))
    assert row[1] == "300" and int(row[2]) > 0 and row[-1] == "0", run.stdout


def test_a_run_is_recorded_for_the_results_table(tmp_path: Path) -> None:
    import json

    spec = importlib.util.spec_from_file_location("fuzz_script", FUZZ_DIR.parents[1] / "scripts" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclasses look their module up
    spec.loader.exec_module(script)
    outcome = script.Outcome("verify", 1000, 300, 1000, 12, 61.4, ("KeyError@x.py:1",), (7.25, 8.0))
    path = script.record(outcome, "python scripts/fuzz.py verify --runs 1000 --record", tmp_path)
    assert path == tmp_path / "verify.json" and sorted(p.name for p in tmp_path.iterdir()) == ["verify.json"]
    data = json.loads(path.read_text())
    assert {k: data[k] for k in ("target", "executions", "cov", "ft", "corpus", "seconds", "findings",
                                 "command", "load_average")} == {
        "target": "verify", "executions": 1000, "cov": 300, "ft": 1000, "corpus": 12, "seconds": 61,
        "findings": ["KeyError@x.py:1"], "command": "python scripts/fuzz.py verify --runs 1000 --record",
        "load_average": [7.2, 8.0]}
    assert data["date"].endswith(" UTC")
