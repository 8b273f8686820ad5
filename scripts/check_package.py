"""Checks the built package against the source tree, before any test runs on it.

``python scripts/check_package.py [--wheel W] [--sdist S]`` (scripts/matrix.py's ``package``
cell; the paths default to ``$TFEDGE_WHEEL`` / ``$TFEDGE_SDIST``, which scripts/_venv.sh sets):

1. The wheel holds every file of the source tree's packages (``tfedge/`` as ``tfedge/``,
   ``converters/`` as ``tfedge/converters/``; modules, ``py.typed`` and data files), and
   nothing else: no tests, no top-level ``converters``. A subpackage left out of
   pyproject.toml's package list fails here.
2. The sdist holds every tracked file the wheel is made from, with pyproject.toml,
   README.md and LICENSE.
3. Building the wheel from that sdist prints no deprecation warning on any Python the
   project supports that is on this machine (3.8-3.13; each one missing is named).
4. Python 3.14: pip finds an ai-edge-litert wheel for CPython 3.14 on every platform whose
   markers pick it (Linux x86_64/aarch64, macOS arm64, Windows), asked without a 3.14
   interpreter (``pip install --dry-run --python-version 3.14 --platform ...``).

Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from matrix import find_python  # noqa: E402 - scripts/ is this file's folder

#: Source folder -> where its files go in the wheel.
PACKAGE_ROOTS: Dict[str, str] = {"tfedge": "tfedge", "converters": "tfedge/converters"}

#: Files the sdist needs beside the packages' sources.
BUILD_INPUTS = {"pyproject.toml", "README.md", "LICENSE"}

#: The Pythons the package supports (its requires-python and classifiers).
PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")

#: Platforms whose markers pick ai-edge-litert on Python >= 3.10, as pip tags of its wheels.
LITERT_314_PLATFORMS = {
    "Linux x86_64": "manylinux_2_27_x86_64",
    "Linux aarch64": "manylinux_2_27_aarch64",
    "macOS arm64": "macosx_12_0_arm64",
    "Windows AMD64": "win_amd64",
}


def package_sources(repo: Path = REPO) -> Dict[str, str]:
    """{repository path: wheel path} of every file of the packages' source folders (tracked by git in a checkout)."""
    tracked = _tracked(repo)
    found: Dict[str, str] = {}
    for folder, target in PACKAGE_ROOTS.items():
        for path in sorted((repo / folder).rglob("*")):
            rel = path.relative_to(repo).as_posix()
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            if tracked is None or rel in tracked:
                found[rel] = target + rel[len(folder):]
    return found


def _tracked(repo: Path) -> Optional[Set[str]]:
    """git's tracked files, or None outside a checkout."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(out.splitlines())


def compare_wheel(expected: Set[str], names: Iterable[str]) -> List[str]:
    """Problems with a wheel whose archive names are ``names``: files missing, files that are not the packages'."""
    have = {n for n in names if not n.endswith("/") and ".dist-info/" not in n}
    problems = [f"the wheel lacks {name}" for name in sorted(expected - have)]
    problems += [f"the wheel holds {name}, which is no file of the packages' source" for name in sorted(have - expected)]
    return problems


def compare_sdist(expected_source: Set[str], names: Iterable[str]) -> List[str]:
    """Problems with an sdist: tracked source files (repository paths) it lacks."""
    have = {n.split("/", 1)[1] for n in names if "/" in n}
    return [f"the sdist lacks {name}" for name in sorted(expected_source - have)]


def deprecation_lines(output: str) -> List[str]:
    """Lines of a build log that warn of a deprecation."""
    return [line.strip() for line in output.splitlines() if "deprecat" in line.lower()]


def check_build_warnings(sdist: Path) -> List[str]:
    """Build the wheel from ``sdist`` on every supported Python here; problems found (missing Pythons are said)."""
    problems: List[str] = []
    for version in PYTHONS:
        python = find_python(version)
        if python is None:
            print(f"package: no Python {version} here; its build was not checked", flush=True)
            continue
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([python, "-m", "pip", "wheel", "-v", "--no-deps", "--disable-pip-version-check",
                                   "-w", out, str(sdist)], capture_output=True, text=True)
        if proc.returncode != 0:
            problems.append(f"Python {version} cannot build the wheel from the sdist: {proc.stderr.strip()[-300:]}")
            continue
        warned = deprecation_lines(proc.stdout + proc.stderr)
        if warned:
            problems.append(f"building on Python {version} warns: {warned[0]}")
        else:
            print(f"package: Python {version} builds the wheel from the sdist without a deprecation warning", flush=True)
    return problems


def check_python_314() -> List[str]:
    """ai-edge-litert has a CPython 3.14 wheel on each platform whose markers pick it."""
    problems: List[str] = []
    for label, tag in LITERT_314_PLATFORMS.items():
        with tempfile.TemporaryDirectory() as target:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
                 "--disable-pip-version-check", "--report", "-", "--target", target, "--python-version", "3.14",
                 "--platform", tag, "--only-binary=:all:", "ai-edge-litert>=1.2"],
                capture_output=True, text=True)
        if proc.returncode != 0:
            problems.append(f"pip finds no ai-edge-litert wheel for Python 3.14 on {label} ({tag})")
            continue
        report = json.loads(proc.stdout)
        wheel = report["install"][0]["download_info"]["url"].rsplit("/", 1)[-1]
        print(f"package: Python 3.14 on {label}: pip takes {wheel}", flush=True)
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checks; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=os.environ.get("TFEDGE_WHEEL"))
    parser.add_argument("--sdist", type=Path, default=os.environ.get("TFEDGE_SDIST"))
    parser.add_argument("--skip-builds", action="store_true", help="skip the per-Python builds and the 3.14 look-up")
    args = parser.parse_args(argv)
    if args.wheel is None or args.sdist is None:
        parser.error("give --wheel and --sdist (or run through scripts/test.sh, which builds them)")
    sources = package_sources()
    expected = set(sources.values())
    with zipfile.ZipFile(args.wheel) as whl:
        problems = compare_wheel(expected, whl.namelist())
    print(f"package: the wheel holds the {len(expected)} files of tfedge/ and converters/ "
          f"({sum(1 for n in expected if n.endswith('/__init__.py'))} packages)" if not problems else
          "package: the wheel differs from the source tree", flush=True)
    with tarfile.open(args.sdist) as sdist:
        problems += compare_sdist(set(sources) | BUILD_INPUTS, sdist.getnames())
    if not args.skip_builds:
        problems += check_build_warnings(args.sdist)
        problems += check_python_314()
    for problem in problems:
        print(f"package: FAILED: {problem}", flush=True)
    print(f"{len(problems)} package problems" if problems else "package checks passed", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
