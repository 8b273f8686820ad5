"""Size, warm start and peak memory of three ways to ship the ``tfedge`` command.

Built and measured side by side in one run, so machine noise hits all alike:

- ``nuitka``: ``build_native.py`` (one file, payload unpacked once into ~/.cache);
- ``pyinstaller``: PyInstaller ``--onefile`` of the same entry, told to leave out the
  same packages (TensorFlow, the other backend), so it is a fair comparison;
- ``venv``: ``python -m tfedge`` in the venv that runs this script.

Each command runs ``tfedge info MODEL`` 3 times to warm up (Nuitka unpacks, caches fill),
then ``--runs`` times; the table shows the median wall time and the largest peak RSS
(from ``os.wait4``, which counts the child and every process it waited for, so the
onefile bootstrap and its Python child are both counted).

Usage: python benchmarks/native_packaging.py [--runs 15] [--model add.tflite] [--nuitka BINARY]
       [--pyinstaller BINARY] [--build-python PYTHON] [--workdir DIR] [--json]

Targets (issue "build_native.py"): nuitka size <= 15 MB, start <= 0.5 x pyinstaller and
<= venv, peak RSS <= 60 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_MODELS = REPO / "tests" / "data" / "litert-testdata"
_EXCLUDES = ("tensorflow", "keras", "tf_keras", "converters", "ai_edge_litert", "matplotlib", "sklearn",
             "scipy", "pandas", "PIL", "tkinter", "pytest", "setuptools", "pip")


NOBLAS = "nuitka onefile, numpy without BLAS"


@dataclass(frozen=True)
class Result:
    """One packaging's numbers."""

    name: str
    size_mb: float
    build_s: float
    start_median_s: float
    start_min_s: float
    peak_rss_mb: float


def _run_once(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``cmd``; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed (exit {proc.returncode}): {err.strip()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def _size_mb(path: Path) -> float:
    """Size of a file, or of everything in a folder, in MB."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6
    return path.stat().st_size / 1e6


def build_nuitka(workdir: Path, python: Path) -> tuple[Path, float]:
    """``build_native.py`` run by ``python`` into ``workdir``; the binary and the build's wall seconds."""
    start = time.perf_counter()
    out = subprocess.run([str(python), str(REPO / "build_native.py"), "--dist", str(workdir / "nuitka")],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1]), time.perf_counter() - start


def build_pyinstaller(workdir: Path) -> tuple[Path, float]:
    """PyInstaller ``--onefile`` of the same entry; the binary and the build's wall seconds."""
    entry = workdir / "tfedge_entry.py"
    entry.write_text("from tfedge.cli import main\n\nraise SystemExit(main())\n")
    cmd = [sys.executable, "-m", "PyInstaller", "--onefile", "--noconfirm", "--log-level=WARN",
           "--name", "tfedge-pyinstaller", "--paths", str(REPO),
           "--hidden-import", "tflite_runtime.interpreter", "--copy-metadata", "tflite-runtime",
           "--distpath", str(workdir / "pyi-dist"), "--workpath", str(workdir / "pyi-build"),
           "--specpath", str(workdir), *(f"--exclude-module={m}" for m in _EXCLUDES), str(entry)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return workdir / "pyi-dist" / "tfedge-pyinstaller", time.perf_counter() - start


def _venv_size() -> float:
    """What the venv route needs on the device: tfedge + numpy + tflite_runtime (+ Python's stdlib not counted)."""
    import numpy
    import tflite_runtime

    site = Path(numpy.__file__).parents[1]
    parts = [Path(numpy.__file__).parent, site / "numpy.libs", Path(tflite_runtime.__file__).parent, REPO / "tfedge"]
    return sum(_size_mb(p) for p in parts if p.exists())


def measure(commands: dict[str, tuple[list[str], float, float]], runs: int, env: dict[str, str]) -> list[Result]:
    """Warm each command up (3 runs), then run them ``runs`` times interleaved."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, float] = {name: 0.0 for name in commands}
    for _ in range(3):
        for cmd, _, _ in commands.values():
            _run_once(cmd, env)
    for _ in range(runs):
        for name, (cmd, _, _) in commands.items():
            elapsed, peak = _run_once(cmd, env)
            times[name].append(elapsed)
            rss[name] = max(rss[name], peak)
    return [Result(name=name, size_mb=round(size, 1), build_s=round(build, 1),
                   start_median_s=round(statistics.median(times[name]), 3),
                   start_min_s=round(min(times[name]), 3), peak_rss_mb=round(rss[name], 1))
            for name, (_, size, build) in commands.items()]


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or take) the three, measure them, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per packaging (default 15)")
    parser.add_argument("--model", type=Path, default=TEST_MODELS / "add.tflite", help="model for `tfedge info`")
    parser.add_argument("--nuitka", type=Path, help="use this build_native.py binary instead of building one")
    parser.add_argument("--pyinstaller", type=Path, help="use this PyInstaller binary instead of building one")
    parser.add_argument("--build-python", type=Path, default=Path(sys.executable),
                        help="Python whose packages go into the Nuitka binary (e.g. a venv with a "
                             "numpy built without BLAS; default: this one)")
    parser.add_argument("--noblas-python", type=Path, default=os.environ.get("TFEDGE_NOBLAS_PYTHON") or None,
                        help="also build with this Python, whose numpy was built without BLAS "
                             "(pip install numpy --no-binary numpy -Csetup-args=-Dallow-noblas=true "
                             "-Csetup-args=-Dblas=none -Csetup-args=-Dlapack=none), as a row of its own "
                             "(default: $TFEDGE_NOBLAS_PYTHON)")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    env = dict(os.environ, TFEDGE_BACKEND="tflite_runtime", PYTHONPATH=str(REPO))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with tempfile.TemporaryDirectory(prefix="tfedge-packaging-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        nuitka, nuitka_s = (args.nuitka, 0.0) if args.nuitka else build_nuitka(workdir, args.build_python)
        pyi, pyi_s = (args.pyinstaller, 0.0) if args.pyinstaller else build_pyinstaller(workdir)
        info = ["info", str(args.model)]
        commands = {"nuitka onefile": ([str(nuitka), *info], _size_mb(nuitka), nuitka_s)}
        if args.noblas_python:
            noblas, noblas_s = build_nuitka(workdir / "noblas", args.noblas_python)
            commands[NOBLAS] = ([str(noblas), *info], _size_mb(noblas), noblas_s)
        commands |= {
            "pyinstaller onefile": ([str(pyi), *info], _size_mb(pyi), pyi_s),
            "venv python -m tfedge": ([sys.executable, "-m", "tfedge", *info], _venv_size(), 0.0),
        }
        # Let the builds' after-effects (dirty pages of freshly written binaries and caches
        # going to disk) finish before timing: right after the builds the onefile starts
        # measured up to 1.4x slower than a minute later.
        os.sync()
        time.sleep(10)
        results = measure(commands, args.runs, env)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    print(f"tfedge info {args.model.name}, {args.runs} warm runs each (build 0 = given, not built)")
    print(f"{'packaging':<24}{'size MB':>9}{'build s':>9}{'start med s':>13}{'start min s':>13}{'peak RSS MB':>13}")
    for r in results:
        print(f"{r.name:<24}{r.size_mb:>9.1f}{r.build_s:>9.0f}{r.start_median_s:>13.3f}{r.start_min_s:>13.3f}"
              f"{r.peak_rss_mb:>13.1f}")
    by = {r.name: r for r in results}
    p, v = by["pyinstaller onefile"], by["venv python -m tfedge"]
    for n in (by["nuitka onefile"], by.get(NOBLAS)):
        if n is not None:
            print(f"{n.name}: vs pyinstaller start {n.start_median_s / p.start_median_s:.2f} (target <= 0.5), "
                  f"vs venv start {n.start_median_s / v.start_median_s:.2f} (target <= 1.0), "
                  f"size {n.size_mb:.1f} MB (target <= 15), peak RSS {n.peak_rss_mb:.0f} MB (target <= 60)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
