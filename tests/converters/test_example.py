"""The README example: digits CNN in four modes, with the accuracy budgets of the issue."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfedge.converters import example


def test_digits_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = {r.options["quantize"]: r for r in example.run(tmp_path, progress=False)}
    out = capsys.readouterr().out
    assert "mode" in out and "int8 model through tfedge.Interpreter" in out
    base = results["none"]
    assert base.reference_accuracy > 0.9 and base.eval_samples == 360
    assert abs(base.accuracy_drop) < 1e-9
    assert abs(results["float16"].converted_accuracy - base.converted_accuracy) * 100 <= 0.2
    for mode in ("int8", "dynamic"):
        assert abs(results[mode].converted_accuracy - base.converted_accuracy) * 100 <= 1.0, mode
    assert results["int8"].size_after < 0.4 * base.size_after
    for mode in ("none", "float16", "dynamic", "int8"):
        assert (tmp_path / f"digits_{mode}.tflite").is_file()
