"""scripts/matrix.py: cells that cannot run are reported, never dropped; failures are never hidden."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "matrix.py"


@pytest.fixture(scope="module")
def matrix() -> Any:
    spec = importlib.util.spec_from_file_location("matrix", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["matrix"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_venv_key_ignores_tool_settings_but_not_dependencies(matrix: Any, tmp_path: Path) -> None:
    text = (
        '[project]\ndependencies = ["numpy"]\n'
        '[tool.setuptools]\npackages = ["tfedge"]\n'
        '[tool.mypy]\npython_version = "3.8"\n'
        '[[tool.mypy.overrides]]\nmodule = ["x"]\n'
    )
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    assert matrix._install_relevant(path) == '[project]\ndependencies = ["numpy"]\n[tool.setuptools]\npackages = ["tfedge"]'


def test_cell_names_are_unique_and_every_cell_runs_something(matrix: Any) -> None:
    names = [c.name for c in matrix.CELLS]
    assert len(names) == len(set(names))
    assert all(c.run for c in matrix.CELLS)


def test_a_missing_python_is_a_skipped_cell_by_name(matrix: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix, "find_python", lambda version: None)
    cell = matrix.Cell("py9.9", "9.9", ((".[test]",),), (matrix.RUNTIME,), ())
    outcome = matrix.run_cell(cell, None)
    assert (outcome.state, outcome.lines) == ("SKIPPED", ["no Python 9.9 on this machine (pyenv or python9.9 on PATH)"])


def test_a_command_exiting_5_fails_the_cell(matrix: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # pytest exits 5 when it collected no test: that must fail CI, not pass it.
    cell = matrix.Cell("here", "", (), (("-c", "print('5 tests collected? none'); raise SystemExit(5)"),), ())
    outcome = matrix.run_cell(cell, Path(sys.executable))
    assert outcome.state == "FAILED"
    assert outcome.lines == ["5 tests collected? none (exit 5)"]
    assert outcome.versions.startswith("Python ")
    matrix.print_table([outcome])
    assert "1 cells in" in capsys.readouterr().out
