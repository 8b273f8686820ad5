"""The probe in a child process: hangs and failures become ModelError, verdicts are cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import model_path

import tfedge
from tfedge.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TFEDGE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_hanging_model_is_refused_not_hung(backend: str, _cache: Path) -> None:
    path = model_path("nested_while.tflite")
    with pytest.raises(tfedge.ModelError) as info:
        tfedge.Interpreter(path, backend=backend, probe=True, probe_timeout=2)
    assert str(info.value) == (
        f"Model file '{path}' did not finish one inference within 2 s (it may loop forever). "
        "It was not loaded into this process."
    )
    assert len(list((_cache / "probe").glob("*.json"))) == 1
    with pytest.raises(tfedge.ModelError, match="within 2 s"):  # cached: no second wait
        tfedge.Interpreter(path, backend=backend, probe=True, probe_timeout=2)


def test_good_model_probes_then_runs(backend: str) -> None:
    interp = tfedge.Interpreter(model_path("add.tflite"), backend=backend, probe=True)
    np.testing.assert_array_equal(interp.run(np.ones((1, 8, 8, 3), np.float32))["x"], 3)


def test_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(model_path("add.tflite"))]) == 0
    assert ": ok (structure verified; loaded and ran once on" in capsys.readouterr().out
    assert main(["check", str(model_path("add.tflite")), "--json"]) == 0
    assert '"cached": true' in capsys.readouterr().out
    assert main(["check", str(model_path("custom_sinh.tflite"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tfedge: error: Model file") and "failed in a test run: ModelError:" in err
    assert main(["check", str(model_path("test_model_broken.tflite"))]) == 1
    assert "not a TFLite model" in capsys.readouterr().err
