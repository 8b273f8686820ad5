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
    cell = matrix.Cell("py9.9", "9.9", (("{wheel}[test]",),), (matrix.RUNTIME,), ())
    outcome = matrix.run_cell(cell, None, "")
    assert (outcome.state, outcome.lines) == ("SKIPPED", ["no Python 9.9 on this machine (pyenv or python9.9 on PATH)"])


def test_a_command_exiting_5_fails_the_cell(matrix: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # pytest exits 5 when it collected no test: that must fail CI, not pass it.
    cell = matrix.Cell("here", "", (), (("-c", "print('5 tests collected? none'); raise SystemExit(5)"),), ())
    outcome = matrix.run_cell(cell, Path(sys.executable), "")
    assert outcome.state == "FAILED"
    assert outcome.lines == ["5 tests collected? none (exit 5)"]
    assert outcome.versions.startswith("Python ")
    matrix.print_table([outcome])
    assert "1 cells in" in capsys.readouterr().out


def test_cells_install_the_wheel_never_the_checkout(matrix: Any) -> None:
    for cell in matrix.CELLS:
        for step in cell.install:
            assert not any(arg == "." or arg.startswith(".[") for arg in step), (cell.name, step)
    assert all(matrix.WHEEL in " ".join(" ".join(s) for s in c.install) for c in matrix.CELLS if c.python)


def test_pytest_runs_outside_the_checkout(matrix: Any, tmp_path: Path) -> None:
    args, cwd = matrix._in_place(matrix.pytest("tests/runtime", "-k", "x"), tmp_path)
    assert cwd == tmp_path and str(matrix.REPO / "tests" / "runtime") in args and "x" in args
    args, cwd = matrix._in_place(("-m", "mkdocs", "build", "--site-dir", matrix.SCRATCH + "/site"), tmp_path)
    assert cwd == matrix.REPO and args[-1] == f"{tmp_path}/site"


@pytest.fixture(scope="module")
def check_package(matrix: Any) -> Any:
    spec = importlib.util.spec_from_file_location("check_package", SCRIPT.parent / "check_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_wheel_without_a_subpackage_fails_the_check(check_package: Any) -> None:
    expected = set(check_package.package_sources().values())
    assert {"tfedge/__init__.py", "tfedge/py.typed", "tfedge/tasks/__init__.py",
            "tfedge/converters/__init__.py"} <= expected
    names = [n for n in expected if not n.startswith("tfedge/tasks/")] + ["tfedge-0.1.0.dist-info/RECORD"]
    problems = check_package.compare_wheel(expected, names)
    assert problems and all(p.startswith("the wheel lacks tfedge/tasks/") for p in problems)
    assert check_package.compare_wheel(expected, sorted(expected)) == []


def test_a_wheel_with_tests_or_a_top_level_converters_fails_the_check(check_package: Any) -> None:
    expected = set(check_package.package_sources().values())
    problems = check_package.compare_wheel(expected, sorted(expected) + ["tests/conftest.py", "converters/cli.py"])
    assert problems == ["the wheel holds converters/cli.py, which is no file of the packages' source",
                        "the wheel holds tests/conftest.py, which is no file of the packages' source"]


def test_deprecation_lines_are_found(check_package: Any) -> None:
    log = "ok\n  SetuptoolsDeprecationWarning: `project.license` as a TOML table is deprecated\nbuilt\n"
    assert check_package.deprecation_lines(log) == [
        "SetuptoolsDeprecationWarning: `project.license` as a TOML table is deprecated"]
