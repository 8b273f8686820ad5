"""Size, warm start, peak memory and inference speed of the ways to ship the ``tfedge`` command.

Built and measured side by side in one run, so machine noise hits all alike:

- ``nuitka``: ``tfedge-build`` with no flags (this machine's default target: on x86_64
  ai-edge-litert inside, numpy without BLAS; one file, unpacked once into ~/.cache);
  more flavours with ``--binary NAME=PATH`` (e.g. a ``--blas`` or a
  ``--backend tflite_runtime`` build);
- ``pyinstaller``: PyInstaller ``--onefile`` of the same entry, told to leave out the
  same packages (TensorFlow, the other backend), so it is a fair comparison;
- ``venv``: ``python -m tfedge`` in the venv that runs this script (``pip install tfedge``).

Start: each command runs ``tfedge info MODEL`` 3 times to warm up (Nuitka unpacks, caches
fill), then ``--runs`` times, interleaved; the table shows the median wall time and the
largest peak RSS (from ``os.wait4``, which counts the onefile bootstrap and its child).

Latency: ``tfedge bench MODEL --threads 1 --runs 30 --json`` of each flavour on MobileNetV2
int8 and float32 (``benchmarks/models.py``), ``--rounds`` rounds interleaved, the median of
the rounds' medians; the ratio is to the venv, which runs the backend the binary carries.

Usage: python benchmarks/native_packaging.py [--runs 15] [--rounds 3] [--model add.tflite]
       [--nuitka BINARY] [--binary NAME=PATH ...] [--pyinstaller BINARY | --no-pyinstaller]
       [--build-python PYTHON] [--workdir DIR] [--json]

Targets (issue "Native binaries at full speed"): the default binary <= 14 MB, start <= 0.8x
the venv, MobileNetV2 int8 and float32 latency within 1.10x of the venv; peak RSS <= 60 MB.
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
_EXCLUDES = ("tensorflow", "keras", "tf_keras", "converters", "tflite_runtime", "matplotlib", "sklearn",
             "scipy", "pandas", "PIL", "tkinter", "pytest", "setuptools", "pip")


DEFAULT = "nuitka onefile (default)"
VENV = "venv python -m tfedge"
PYINSTALLER = "pyinstaller onefile"
#: The latency models (benchmarks/models.py names), in the table's order.
LATENCY_MODELS = ("mobilenet_v2-int8", "mobilenet_v2-float32")


@dataclass(frozen=True)
class Result:
    """One packaging's numbers."""

    name: str
    size_mb: float
    build_s: float
    start_median_s: float
    start_min_s: float
    peak_rss_mb: float
    latency_ms: dict[str, float]
    backend: str


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
    """``tfedge-build`` (no flags) of ``python``'s venv into ``workdir``; the binary and the build's wall seconds."""
    start = time.perf_counter()
    out = subprocess.run([str(python), "-m", "tfedge.native", "--dist", str(workdir / "nuitka")],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1]), time.perf_counter() - start


def build_pyinstaller(workdir: Path) -> tuple[Path, float]:
    """PyInstaller ``--onefile`` of the same entry; the binary and the build's wall seconds."""
    entry = workdir / "tfedge_entry.py"
    entry.write_text("from tfedge.cli import main\n\nraise SystemExit(main())\n")
    cmd = [sys.executable, "-m", "PyInstaller", "--onefile", "--noconfirm", "--log-level=WARN",
           "--name", "tfedge-pyinstaller", "--hidden-import", "ai_edge_litert.interpreter",
           "--distpath", str(workdir / "pyi-dist"), "--workpath", str(workdir / "pyi-build"),
           "--specpath", str(workdir), *(f"--exclude-module={m}" for m in _EXCLUDES), str(entry)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return workdir / "pyi-dist" / "tfedge-pyinstaller", time.perf_counter() - start


def _venv_size() -> float:
    """What the venv route needs on the device: tfedge + numpy + ai_edge_litert (+ Python's stdlib not counted)."""
    import ai_edge_litert
    import numpy

    import tfedge

    site = Path(numpy.__file__).parents[1]
    parts = [Path(numpy.__file__).parent, site / "numpy.libs", Path(ai_edge_litert.__file__).parent,
             Path(tfedge.__file__).parent]
    return sum(_size_mb(p) for p in parts if p.exists())


def _bench(cmd: Sequence[str], model: Path, env: dict[str, str]) -> tuple[float, str]:
    """Median latency (ms) of ``tfedge bench MODEL --threads 1 --runs 30`` and the backend it ran on."""
    out = subprocess.run([*cmd, "bench", str(model), "--threads", "1", "--runs", "30", "--json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return float(result["median_ms"]), str(result["backend"])


def measure_latency(commands: dict[str, list[str]], models: dict[str, Path], rounds: int,
                    env: dict[str, str]) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Per command and model, the median over ``rounds`` interleaved rounds of bench's median; the backends."""
    samples: dict[str, dict[str, list[float]]] = {n: {m: [] for m in models} for n in commands}
    backends: dict[str, str] = {}
    for _ in range(rounds):
        for model, path in models.items():
            for name, cmd in commands.items():
                ms, backends[name] = _bench(cmd, path, env)
                samples[name][model].append(ms)
    return ({n: {m: round(statistics.median(v), 2) for m, v in per.items()} for n, per in samples.items()},
            backends)


def measure(commands: dict[str, tuple[list[str], float, float]], runs: int,
            env: dict[str, str]) -> dict[str, tuple[float, float, float]]:
    """Warm each command up (3 runs), then run them ``runs`` times interleaved: (median s, min s, peak RSS MB)."""
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
    return {name: (round(statistics.median(times[name]), 3), round(min(times[name]), 3), round(rss[name], 1))
            for name in commands}


def _binary_arg(text: str) -> tuple[str, Path]:
    """``--binary NAME=PATH``."""
    name, sep, path = text.partition("=")
    if not sep or not name or not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH of an existing binary, got {text!r}")
    return f"nuitka onefile, {name}", Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or take) the flavours, measure them, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed starts per packaging (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds (default 3)")
    parser.add_argument("--model", type=Path, default=TEST_MODELS / "add.tflite", help="model for `tfedge info`")
    parser.add_argument("--nuitka", type=Path, help="use this default tfedge-build binary instead of building one")
    parser.add_argument("--binary", type=_binary_arg, action="append", default=[], metavar="NAME=PATH",
                        help="another native binary to measure (e.g. blas=dist-blas/tfedge-...)")
    parser.add_argument("--pyinstaller", type=Path, help="use this PyInstaller binary instead of building one")
    parser.add_argument("--no-pyinstaller", action="store_true", help="leave PyInstaller out")
    parser.add_argument("--build-python", type=Path, default=Path(sys.executable),
                        help="Python whose tfedge-build makes the default binary (default: this one)")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    from models import DEFAULT_WORK_DIR, build_models

    built = build_models(DEFAULT_WORK_DIR)
    latency_models = {name: built[name] for name in LATENCY_MODELS}
    env = {k: v for k, v in os.environ.items() if k not in ("TFEDGE_BACKEND", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with tempfile.TemporaryDirectory(prefix="tfedge-packaging-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        env["XDG_CACHE_HOME"] = str(workdir / "cache")
        nuitka, nuitka_s = (args.nuitka, 0.0) if args.nuitka else build_nuitka(workdir, args.build_python)
        commands = {DEFAULT: ([str(nuitka)], _size_mb(nuitka), nuitka_s)}
        commands |= {name: ([str(path)], _size_mb(path), 0.0) for name, path in args.binary}
        if not args.no_pyinstaller:
            pyi, pyi_s = (args.pyinstaller, 0.0) if args.pyinstaller else build_pyinstaller(workdir)
            commands[PYINSTALLER] = ([str(pyi)], _size_mb(pyi), pyi_s)
        commands[VENV] = ([sys.executable, "-m", "tfedge"], _venv_size(), 0.0)
        # Let the builds' after-effects (dirty pages of freshly written binaries and caches
        # going to disk) finish before timing: right after the builds the onefile starts
        # measured up to 1.4x slower than a minute later.
        os.sync()
        time.sleep(10)
        info = ["info", str(args.model)]
        starts = measure({n: ([*cmd, *info], size, b) for n, (cmd, size, b) in commands.items()}, args.runs, env)
        latency, backends = measure_latency({n: cmd for n, (cmd, _, _) in commands.items()}, latency_models,
                                            args.rounds, env)
    results = [Result(name=name, size_mb=round(size, 1), build_s=round(build, 1), start_median_s=starts[name][0],
                      start_min_s=starts[name][1], peak_rss_mb=starts[name][2], latency_ms=latency[name],
                      backend=backends[name])
               for name, (_, size, build) in commands.items()]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    print(f"tfedge info {args.model.name}, {args.runs} warm starts each; tfedge bench --threads 1 --runs 30, "
          f"{args.rounds} rounds (build 0 = given, not built)")
    print(f"{'packaging':<40}{'backend':>16}{'size MB':>9}{'start med s':>13}{'peak RSS MB':>13}"
          + "".join(f"{m + ' ms':>24}" for m in LATENCY_MODELS))
    for r in results:
        print(f"{r.name:<40}{r.backend:>16}{r.size_mb:>9.1f}{r.start_median_s:>13.3f}{r.peak_rss_mb:>13.1f}"
              + "".join(f"{r.latency_ms[m]:>24.2f}" for m in LATENCY_MODELS))
    venv = next(r for r in results if r.name == VENV)
    for r in results:
        if r.name.startswith("nuitka"):
            ratios = ", ".join(f"{m} {r.latency_ms[m] / venv.latency_ms[m]:.2f}x" for m in LATENCY_MODELS)
            print(f"{r.name}: start {r.start_median_s / venv.start_median_s:.2f}x the venv (target <= 0.8), "
                  f"size {r.size_mb:.1f} MB (target <= 14), latency vs venv: {ratios} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
