"""``tfedge bench`` and ``tfedge.bench.benchmark``: fields, JSON, errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support import MODELS

import tfedge
from tfedge import bench, cli
from tfedge._inputs import random_input
from tfedge.errors import InputError, ModelError

DATA = MODELS
ADD = DATA / "add.tflite"  # one input 'a' (1, 8, 8, 3) float32
MULTI = DATA / "multi_add.tflite"  # inputs a, b, c, d (1, 8, 8, 3) float32

FIELDS = {
    "model", "size_bytes", "backend", "backend_version", "num_threads", "delegates", "batch",
    "init_ms", "first_ms", "warmup", "count", "min_ms", "median_ms", "mean_ms", "p90_ms",
    "p99_ms", "max_ms", "std_ms", "total_s", "throughput", "peak_rss_mib", "peak_rss_growth_mib",
}


def _backends() -> list[str]:
    from tfedge import _backend

    return [b for b in _backend.available_backends() if b != "tensorflow"]


def _check_sane(result: bench.BenchResult, count: int | None = None) -> None:
    """The ordering every measurement must have, whatever the machine's speed."""
    assert result.min_ms <= result.median_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.min_ms <= result.mean_ms <= result.max_ms
    assert result.min_ms > 0 and result.std_ms >= 0
    assert result.init_ms > 0 and result.first_ms > 0
    assert result.total_s > 0
    assert result.throughput == pytest.approx(result.batch * result.count / result.total_s)
    assert result.peak_rss_mib > 10 and result.peak_rss_growth_mib >= 0
    if count is not None:
        assert result.count == count


@pytest.mark.parametrize("backend", _backends())
def test_benchmark_fields(backend: str) -> None:
    result = bench.benchmark(ADD, runs=25, warmup=2, threads=1, backend=backend)
    _check_sane(result, 25)
    assert result.backend == backend
    assert result.backend_version == tfedge.Interpreter(ADD, backend=backend).backend_version
    assert result.num_threads == 1 and result.batch == 1 and result.warmup == 2
    assert result.size_bytes == ADD.stat().st_size
    assert result.model == str(ADD)
    assert result.delegates == ()
    assert set(result.to_dict()) == FIELDS


def test_result_is_frozen() -> None:
    result = bench.benchmark(ADD, runs=1, warmup=0)
    with pytest.raises(AttributeError):
        result.count = 5  # type: ignore[misc]


def test_model_bytes() -> None:
    result = bench.benchmark(ADD.read_bytes(), runs=3)
    assert result.model == "<bytes>" and result.size_bytes == 544
    _check_sane(result, 3)


def test_duration_runs_at_least_once() -> None:
    result = bench.benchmark(ADD, duration=0.05, warmup=0)
    _check_sane(result)
    assert result.count >= 1


def test_default_runs() -> None:
    assert bench.benchmark(ADD).count == bench.DEFAULT_RUNS == 50


def test_batch_sets_dimension_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []
    real = tfedge.Interpreter.run

    def spy(self: tfedge.Interpreter, inputs: Any, **kw: Any) -> Any:
        seen.append(np.asarray(inputs).shape)
        return real(self, inputs, **kw)

    monkeypatch.setattr(tfedge.Interpreter, "run", spy)
    result = bench.benchmark(ADD, runs=4, warmup=1, batch=3)
    assert seen == [(3, 8, 8, 3)] * 6  # first + warm-up + timed
    assert result.batch == 3
    assert result.throughput == pytest.approx(3 * 4 / result.total_s)


def test_given_inputs_are_used_and_the_rest_random() -> None:
    wrong = {"a": np.zeros((1, 8, 8, 4), np.float32)}
    with pytest.raises(InputError, match=r"^Input 'a' expects shape \(1, 8, 8, 3\) float32, got \(1, 8, 8, 4\)"):
        bench.benchmark(MULTI, runs=1, inputs=wrong)
    result = bench.benchmark(MULTI, runs=2, inputs={"b": np.ones((1, 8, 8, 3), np.float32)})
    _check_sane(result, 2)


def test_unknown_input_name() -> None:
    with pytest.raises(InputError) as info:
        bench.benchmark(ADD, runs=1, inputs={"zz": np.zeros((1, 8, 8, 3), np.float32)})
    assert str(info.value) == "Unknown input 'zz'. Available: 'a'."


def test_given_input_must_have_the_batch() -> None:
    with pytest.raises(InputError) as info:
        bench.benchmark(ADD, runs=1, batch=2, inputs={"a": np.zeros((1, 8, 8, 3), np.float32)})
    assert str(info.value) == (
        "Input 'a' has 1 on dimension 0, but the batch is 2. Give arrays of batch 2, or leave out --batch."
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "runs must be a whole number >= 1, got 0."),
        ({"runs": 2.5}, "runs must be a whole number >= 1, got 2.5."),
        ({"warmup": -1}, "warmup must be a whole number >= 0, got -1."),
        ({"batch": 0}, "batch must be a whole number >= 1, got 0."),
        ({"duration": 0}, "duration must be a number of seconds > 0, got 0."),
        ({"runs": 5, "duration": 1.0}, "Pass runs or duration, not both."),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        bench.benchmark(ADD, **kwargs)
    assert str(info.value) == message


def test_bad_model() -> None:
    with pytest.raises(ModelError, match="not a TFLite model"):
        bench.benchmark(DATA / "test_model_broken.tflite", runs=1)


def test_delegates_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[Any] = []

    class WithDelegates(tfedge.Interpreter):
        def __init__(self, model: Any, *, delegates: list[str] | None = None, **kw: Any) -> None:
            received.append(delegates)
            super().__init__(model, delegates=delegates, **kw)

    monkeypatch.setattr(bench, "Interpreter", WithDelegates)
    result = bench.benchmark(ADD, runs=1, delegates=("xnnpack",))
    assert received == [["xnnpack"]]
    assert result.delegates == ("xnnpack",)
    assert bench.benchmark(ADD, runs=1).delegates == ()
    assert received[-1] is None  # no delegates asked: the keyword is left out


def test_progress_lines() -> None:
    stream = io.StringIO()
    bench.benchmark(ADD, runs=10, progress=stream)
    assert stream.getvalue().endswith("\rbench: 10/10 runs (100%)\n")
    stream = io.StringIO()
    result = bench.benchmark(ADD, duration=0.2, progress=stream)
    last = stream.getvalue().split("\r")[-1]
    assert re.fullmatch(rf"bench: {result.count} runs, 0\.[23]/0\.2 s\n", last), last


def test_random_input_batch() -> None:
    spec = tfedge.Interpreter(ADD).input_specs()[0]
    rng = np.random.default_rng(0)
    assert random_input(spec, rng).shape == (1, 8, 8, 3)
    assert random_input(spec, rng, batch=5).shape == (5, 8, 8, 3)


# -- the command line ------------------------------------------------------------


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", str(ADD), "-n", "5", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    labels = [line.split()[0] for line in out.splitlines()]
    assert labels == ["model", "backend", "init", "first", "warm-up", "timed", "latency", "throughput", "peak"]
    assert "1 thread(s), batch 1" in out and "timed       5 run(s)" in out


def test_cli_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones((2, 8, 8, 3), np.float32))
    assert cli.main(["bench", str(ADD), "--json", "--runs", "7", "--warmup", "0", "--batch", "2",
                     "--input", str(tmp_path / "a.npy")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == FIELDS
    assert data["count"] == 7 and data["batch"] == 2 and data["warmup"] == 0 and data["delegates"] == []
    for key in FIELDS - {"model", "backend", "backend_version", "delegates"}:
        assert isinstance(data[key], (int, float)), key
    assert data["min_ms"] <= data["median_ms"] <= data["p90_ms"] <= data["p99_ms"] <= data["max_ms"]


def test_cli_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", str(ADD), "--json", "--duration", "0.05"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "argument --threads: must be a whole number >= 1, got '0'"),
        (["--runs", "0"], "argument --runs/-n: must be a whole number >= 1, got '0'"),
        (["--runs", "many"], "argument --runs/-n: must be a whole number >= 1, got 'many'"),
        (["--warmup", "-1"], "argument --warmup: must be a whole number >= 0, got '-1'"),
        (["--batch", "0"], "argument --batch: must be a whole number >= 1, got '0'"),
        (["--duration", "-1"], "argument --duration: must be a number of seconds > 0, got '-1'"),
        (["--duration", "nan"], "argument --duration: must be a number of seconds > 0, got 'nan'"),
        (["--runs", "3", "--duration", "1"], "argument --duration: not allowed with argument --runs/-n"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", str(ADD), *args])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"tfedge bench: error: {message}"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and captured.out == ""
    return lines[0]


def test_cli_bad_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    assert cli.main(["bench", str(bad)]) == 1
    assert _one_error_line(capsys) == (
        f"tfedge: error: Model file '{bad}': not a TFLite model: expected the identifier 'TFL3' at "
        "byte 4, found b'a mo'. Pass a .tflite file (convert other formats with tfedge-convert)."
    )
    assert cli.main(["bench", str(tmp_path / "missing.tflite")]) == 1
    assert _one_error_line(capsys) == (
        f"tfedge: error: Model file '{tmp_path / 'missing.tflite'}' does not exist. Check the path."
    )


def test_cli_delegate_fallback_and_strict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no_such_delegate.so"
    assert cli.main(["bench", str(ADD), "-n", "2", "--json", "--delegate", str(missing)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["delegates"] == [str(missing)]
    assert captured.err.startswith(f"tfedge: warning: Delegate '{missing}' skipped: ")
    assert cli.main(["bench", str(ADD), "--delegate", str(missing), "--strict"]) == 1
    assert _one_error_line(capsys).startswith(f"tfedge: error: Delegate '{missing}' cannot be used: ")


def test_cli_missing_input_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "x.npy"
    assert cli.main(["bench", str(ADD), "--input", f"a={missing}"]) == 1
    assert _one_error_line(capsys) == f"tfedge: error: Input file '{missing}' does not exist."
