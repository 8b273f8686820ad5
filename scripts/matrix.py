"""The test matrix: every platform cell the README promises, each in a venv of its own.

``python3 scripts/matrix.py`` (what ``scripts/test.sh`` and so CI run) goes through
:data:`CELLS` in order. A cell names a Python, the ``pip install`` steps that make its
venv from a plain install of the wheel that scripts/_venv.sh built (``{wheel}`` in a step;
so the dependency markers are what is tested, and the wheel's contents are what the tests
import), the commands to run in it, and the TFLite backends that must work there. Each
cell prints one line first (Python, numpy, backend versions and where ``tfedge`` is
imported from), then its commands' output; a table at the end gives every cell's
versions, time and the last line of each command (pytest's summary line).

Cell venvs are made once and kept in ``~/.cache/tfedge/ci-venvs/<cell>-<key>``
(``$TFEDGE_CI_VENVS``), where ``<key>`` hashes pyproject.toml (less its lint and test settings), the cell's install steps,
:data:`VENV_RECIPE` and the interpreter's version: a fresh clone reuses them, a fresh machine builds them, and a
change to the dependencies builds them again. Every run installs this run's wheel into
each venv again (``--no-deps --force-reinstall``), and runs pytest in an empty temporary
folder with no ``PYTHONPATH``, so ``import tfedge`` can only find the installed package
(tests/conftest.py stops the run otherwise). The ``full`` cell is the checkout's ``.venv``
(``scripts/_venv.sh``) with every extra; the ``package`` cell checks the wheel and the
sdist against the source tree first (scripts/check_package.py).

A Python missing on the machine makes its cell SKIPPED, by name, in the table; a cell
whose install or any command fails (pytest's exit 5, no test collected, included) makes
the run exit 1.

To add a cell, append a :class:`Cell` to :data:`CELLS`, for example::

    Cell("ray", "3.11", install=(("{wheel}[ray,test]",),), run=(pytest("tests/ray"),)),

Usage: python3 scripts/matrix.py [--cell NAME ...] [--list]
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent

#: Runs one pytest with the given arguments (``-p no:cacheprovider``: no .pytest_cache
#: race between cells).
Command = Tuple[str, ...]


def pytest(*args: str) -> Command:
    """The command that runs pytest on ``args`` in a cell's venv."""
    return ("-m", "pytest", "-p", "no:cacheprovider", *args)


#: In a command, the cell's own empty temporary folder (where pytest runs, and scratch output goes).
SCRATCH = "{tmp}"

RUNTIME = pytest("tests/runtime", "--durations=5")
#: The documentation: every bash and python block of README.md and docs/ run from the installed
#: wheel (tests/docs), then the site built with warnings as errors.
DOCS = (pytest("tests/docs", "-v"), ("-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", SCRATCH + "/site"))
STATIC = (
    ("-m", "ruff", "check", "--no-cache", "."),
    # 3.9, not the runtime's 3.8: .venv's numpy (1.26) ships stubs that do not type-check
    # against 3.8, which made numpy expressions unreadable to mypy there. 3.9 still fails a
    # `X | None` alias evaluated at import time; the py3.8 cell imports and tests the runtime
    # on Python 3.8 itself.
    ("-m", "mypy", "--cache-dir", "/dev/null", "--python-version", "3.9", "tfedge"),
    ("-m", "mypy", "--cache-dir", "/dev/null", "--python-version", "3.9", "converters"),
)


@dataclass(frozen=True)
class Cell:
    """One platform of the matrix.

    Attributes:
        name: Short name, used for the venv folder and ``--cell``.
        python: ``"3.9"``: the newest 3.9.x found (pyenv, then ``python3.9`` on PATH);
            ``""`` for the checkout's ``.venv`` made by scripts/_venv.sh.
        install: ``pip install`` argument lists run in order in a fresh venv (a later
            step can force a version over what an earlier one resolved).
        run: Commands run with the venv's python (``python -m ...``), in order.
        backends: The backends that must work in this cell (checked by
            tests/runtime/test_platforms.py through ``$TFEDGE_EXPECT_BACKENDS``).
        env: Extra environment variables for the commands.
        what: The platform it stands for, for the table.
    """

    name: str
    python: str
    install: Tuple[Tuple[str, ...], ...]
    run: Tuple[Command, ...]
    backends: Tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    what: str = ""


#: The placeholder for this run's wheel in a cell's install steps.
WHEEL = "{wheel}"

CELLS: Tuple[Cell, ...] = (
    Cell("package", "", (), (("scripts/check_package.py",),), (),
         what="the wheel and sdist hold the source tree; builds warn of nothing on 3.8-3.13; 3.14 wheels"),
    Cell("full", "", (), STATIC + (
        # The native build's own tests; the real build runs in the native cell, as users get it.
        pytest("tests/runtime", "tests/benchmarks", "tests/native", "tests/serve", "tests/fuzz",
               "-m", "not native_build"),
        # A process of its own: after `import tensorflow`, tflite_runtime misreads models.
        pytest("tests/converters"),
    ) + DOCS, ("ai_edge_litert", "tflite_runtime"), what="3.11, every extra: converters, native build, both backends"),
    # What `pip install "tfedge[native]"` gives on Python 3.11 (numpy 2, ai-edge-litert): the default
    # binary built from it (numpy without BLAS, cached in ~/.cache/tfedge/build-envs) and run.
    # scikit-image: the astronaut, the photo the --serve binary's DeepStack test sends as a JPEG.
    Cell("native", "3.11", (("{wheel}[native,test]", "scikit-image>=0.22"),),
         (pytest("tests/native/test_build.py", "tests/native/test_serve_build.py", "-m", "native_build"),),
         ("ai_edge_litert",),
         what="tfedge-build from a plain [native] install (numpy 2): the default binary and a --serve one, run"),
    Cell("py3.8", "3.8", (("{wheel}[test]",),), (RUNTIME,), ("tflite_runtime",),
         what="JetPack 5 / Ubuntu 20.04: tflite-runtime, numpy 1"),
    Cell("py3.9", "3.9", (("{wheel}[test]",),), (RUNTIME,), ("tflite_runtime",),
         what="Raspberry Pi OS bullseye: tflite-runtime 2.14, numpy 1.26"),
    Cell("py3.10", "3.10", (("{wheel}[test]",),), (RUNTIME,), ("ai_edge_litert",), what="what the markers pick"),
    Cell("py3.12", "3.12", (("{wheel}[test]",),), (RUNTIME,), ("ai_edge_litert",), what="ai-edge-litert, numpy 2"),
    Cell("py3.13", "3.13", (("{wheel}[test]",),), (RUNTIME,), ("ai_edge_litert",), what="ai-edge-litert, numpy 2"),
    # What installing ray[data] did to a venv with both backends: numpy 2 under tflite-runtime 2.14.
    Cell("tflite-numpy2", "3.11", (("{wheel}[test]", "tflite-runtime==2.14.0", "numpy>=2"),), (RUNTIME,),
         ("ai_edge_litert",), what="tflite-runtime 2.14 with numpy 2 forced: named as unusable"),
    # tfedge.ray: Ray Data brings numpy 2, so it never goes into .venv (tflite-runtime is there).
    Cell("ray", "3.11", (("{wheel}[ray,test]",),), (pytest("tests/ray"),), ("ai_edge_litert",),
         what="tfedge.ray on a local Ray cluster (ray[data], numpy 2)"),
    # An independent reader of the metadata tfedge writes: mediapipe pins protobuf and numpy.
    Cell("mediapipe-reader", "3.11", (("--no-deps", "mediapipe==0.10.14"),
                                      ("protobuf>=4.25.3,<5", "opencv-python-headless<4.11", "numpy<2", "matplotlib",
                                       "attrs", "absl-py", "flatbuffers", "pytest"), ("--no-deps", "{wheel}")),
         (pytest("tests/metadata_reader"),), (), what="MediaPipe's TFLite Metadata reader on what tfedge writes"),
    # 32-bit ARM with Python 3.11+: no backend publishes wheels, so pip installs none.
    Cell("no-backend", "3.12", (("--no-deps", "{wheel}"), ("numpy", "pytest")),
         (pytest("tests/runtime/test_platforms.py", "tests/runtime/test_verify.py"),), (),
         what="no backend installed (as on 32-bit ARM with Python 3.11+)"),
)


@dataclass
class Outcome:
    """What happened to one cell."""

    cell: Cell
    state: str = "passed"  # passed | FAILED | SKIPPED
    versions: str = ""
    seconds: float = 0.0
    lines: List[str] = field(default_factory=list)


def find_python(version: str) -> Optional[str]:
    """The newest interpreter of ``version`` (``"3.9"``) under pyenv or on PATH, or None."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = []
    for path in glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")):
        patch = Path(path).parent.parent.name.split(".")[2]
        if patch.isdigit():
            found.append((int(patch), path))
    if found:
        return max(found)[1]
    return shutil.which(f"python{version}")


def venv_root() -> Path:
    """Where cell venvs are kept: ``$TFEDGE_CI_VENVS``, else ``~/.cache/tfedge/ci-venvs``."""
    explicit = os.environ.get("TFEDGE_CI_VENVS")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfedge" / "ci-venvs"


#: A cell venv of another key (an older pyproject.toml, another branch) is deleted once unused this long.
PRUNE_DAYS = 7

#: Bump when ensure_venv() changes how a venv is made: every cell venv is then made again.
VENV_RECIPE = "1: venv, pip upgraded, then each install step"


def _install_relevant(pyproject: Path) -> str:
    """pyproject.toml without its ``[tool.*]`` tables (lint and test settings install nothing)."""
    kept, skipping = [], False
    for line in pyproject.read_text().splitlines():
        if line.startswith("["):
            table = line.lstrip("[")
            skipping = table.startswith("tool.") and not table.startswith("tool.setuptools")
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def venv_key(cell: Cell, python: str) -> str:
    """Hash of what the cell's venv is made from: pyproject.toml, its install steps, the recipe, the interpreter."""
    digest = hashlib.sha256(_install_relevant(REPO / "pyproject.toml").encode())
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    digest.update(f"{VENV_RECIPE}|{cell.install!r}|{version.stdout}".encode())
    return digest.hexdigest()[:12]


def _steps(cell: Cell, wheel: str) -> List[List[str]]:
    """The cell's install steps with ``{wheel}`` replaced by this run's wheel."""
    return [[arg.replace(WHEEL, wheel) for arg in step] for step in cell.install]


def ensure_venv(cell: Cell, python: str, wheel: str) -> Path:
    """The cell's cached venv, made first when missing or half-made; returns its python.

    Raises:
        RuntimeError: venv or pip failed (the message names the log).
    """
    root = venv_root()
    home = root / f"{cell.name}-{venv_key(cell, python)}"
    done = home / ".tfedge-complete"
    bin_python = home / "bin" / "python"
    root.mkdir(parents=True, exist_ok=True)
    # Several checkouts (main, branches, CI clones) share the cache, each with its own keys:
    # one that makes this venv holds the lock, the others wait for it, and no run deletes
    # a venv another may be using (only those of this cell unused for PRUNE_DAYS).
    with open(root / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)  # half-made by a run that died
            _make_venv(cell, python, home, bin_python, wheel)
            done.write_text(json.dumps({"python": python, "install": cell.install}) + "\n")
        done.touch()
        if any(WHEEL in arg for step in cell.install for arg in step):
            _install_wheel(bin_python, wheel)
    cutoff = time.time() - PRUNE_DAYS * 86400
    for old in root.glob(f"{cell.name}-*/.tfedge-complete"):
        if old.parent != home and old.stat().st_mtime < cutoff:
            shutil.rmtree(old.parent, ignore_errors=True)
    return bin_python


def _make_venv(cell: Cell, python: str, home: Path, bin_python: Path, wheel: str) -> None:
    """Create the venv at ``home`` and run the cell's install steps, logging beside it."""
    log = home.parent / f"{home.name}.log"
    print(f"[{cell.name}] making {home} (log: {log})", flush=True)
    steps = [[python, "-m", "venv", str(home)],
             [str(bin_python), "-m", "pip", "install", "-q", "--upgrade", "pip"]]
    steps += [[str(bin_python), "-m", "pip", "install", *step] for step in _steps(cell, wheel)]
    with open(log, "w") as out:
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
            if subprocess.run(step, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env).returncode != 0:
                raise RuntimeError(f"`{' '.join(step[1:])}` failed; see {log}")


def _install_wheel(bin_python: Path, wheel: str) -> None:
    """Put this run's wheel into a cached venv over the one it was made with (same version, new contents)."""
    step = [str(bin_python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
            "--disable-pip-version-check", wheel]
    proc = subprocess.run(step, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(step[1:])}` failed: {proc.stderr.strip()[-300:]}")


#: Prints the cell's first line: Python, numpy and each backend (version, and whether it works).
_VERSIONS = r"""
import platform, sys
from importlib import metadata
def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
parts = ["Python " + platform.python_version(), "numpy " + (version("numpy") or "missing")]
from tfedge import _backend
for name in ("ai_edge_litert", "tflite_runtime"):
    found = version(name.replace("_", "-"))
    if found is None:
        parts.append(name + " -")
        continue
    try:
        _backend.get_backend(name)
        parts.append(name + " " + found)
    except Exception as exc:
        parts.append(name + " " + found + " (unusable: " + str(exc).split(". ")[0] + ")")
import tfedge
parts.append("tfedge from " + tfedge.__file__)
print(", ".join(parts))
"""


def _in_place(command: Command, outside: Path) -> Tuple[List[str], Path]:
    """The command's arguments and folder: pytest runs in ``outside`` on absolute test paths, the rest in the checkout.

    Run from the checkout, ``python -m pytest`` would put it first on ``sys.path`` (and every
    ``python -c`` a test starts would too), importing the source tree instead of the wheel.
    """
    command = tuple(arg.replace(SCRATCH, str(outside)) for arg in command)
    if command[:2] != ("-m", "pytest"):
        return list(command), REPO
    return [str(REPO / arg) if (REPO / arg).exists() and not arg.startswith("-") else arg for arg in command], outside


def run_cell(cell: Cell, dev_python: Optional[Path], wheel: str) -> Outcome:
    """Make (or reuse) the cell's venv and run its commands; never raises."""
    outcome = Outcome(cell)
    started = time.monotonic()
    outside = Path(tempfile.mkdtemp(prefix=f"tfedge-{cell.name}-"))
    try:
        if cell.python:
            python = find_python(cell.python)
            if python is None:
                outcome.state = "SKIPPED"
                outcome.lines.append(f"no Python {cell.python} on this machine (pyenv or python{cell.python} on PATH)")
                return outcome
            venv_python = ensure_venv(cell, python, wheel)
        else:
            if dev_python is None:
                raise RuntimeError(".venv is missing: run scripts/test.sh, which makes it (scripts/_venv.sh)")
            venv_python = dev_python
        env = dict(os.environ)
        env.update(cell.env)
        env.pop("PYTHONPATH", None)
        env["TFEDGE_EXPECT_BACKENDS"] = ",".join(cell.backends)
        env["PATH"] = os.pathsep.join((str(venv_python.parent), env.get("PATH", "")))
        env.pop("TFEDGE_BACKEND", None)
        probe = subprocess.run([str(venv_python), "-c", _VERSIONS], cwd=outside, env=env, capture_output=True,
                               text=True)
        outcome.versions = probe.stdout.strip() or f"(versions unreadable: {probe.stderr.strip()[-300:]})"
        print(f"[{cell.name}] {outcome.versions}", flush=True)
        if probe.returncode != 0:
            outcome.state = "FAILED"
            outcome.lines.append("`import tfedge` failed")
        for command in cell.run:
            print(f"[{cell.name}] $ python {' '.join(command)}", flush=True)
            last = ""
            args, cwd = _in_place(command, outside)
            proc = subprocess.Popen([str(venv_python), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                if line.strip():
                    last = line.strip()
            rc = proc.wait()
            sys.stdout.flush()
            outcome.lines.append(f"{last.strip('= ')}" + ("" if rc == 0 else f" (exit {rc})"))
            if rc != 0:
                outcome.state = "FAILED"
    except (OSError, RuntimeError) as exc:
        outcome.state = "FAILED"
        outcome.lines.append(str(exc))
    finally:
        outcome.seconds = time.monotonic() - started
        shutil.rmtree(outside, ignore_errors=True)
    return outcome


def print_table(outcomes: Sequence[Outcome]) -> None:
    """The summary: one block per cell (state, time, versions, each command's last line)."""
    print("\n" + "=" * 30 + " matrix summary " + "=" * 30)
    for o in outcomes:
        print(f"{o.cell.name:<14} {o.state:<8} {o.seconds:6.0f} s  {o.versions or o.cell.what}")
        for line in o.lines:
            print(f"{'':<14} {line}")
    total = sum(o.seconds for o in outcomes)
    counts: Dict[str, int] = {}
    for o in outcomes:
        counts[o.state] = counts.get(o.state, 0) + 1
    print(f"{len(outcomes)} cells in {total:.0f} s: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the chosen cells (all by default) and print the summary; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", action="append", choices=[c.name for c in CELLS], help="run only this cell (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cells and exit")
    args = parser.parse_args(argv)
    if args.list:
        for c in CELLS:
            where = f"Python {c.python}" if c.python else ".venv"
            print(f"{c.name:<14} {where:<12} backends: {','.join(c.backends) or 'none':<28} {c.what}")
        return 0
    chosen = [c for c in CELLS if not args.cell or c.name in args.cell]
    dev = REPO / ".venv" / "bin" / "python"
    wheel = os.environ.get("TFEDGE_WHEEL", "")
    if not wheel or not Path(wheel).is_file():
        print("matrix: no wheel to test ($TFEDGE_WHEEL); run scripts/test.sh, which builds it", file=sys.stderr)
        return 1
    outcomes = [run_cell(c, dev if dev.exists() else None, wheel) for c in chosen]
    print_table(outcomes)
    return 1 if any(o.state == "FAILED" for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
