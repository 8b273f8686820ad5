"""Timing helpers the benchmark scripts share: interleaved rounds and subprocess runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

#: The LiteRT test models kept with the tests (see tests/data/litert-testdata/README.md).
TEST_MODELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "litert-testdata"
#: The repository root, put on PYTHONPATH of the subprocesses so they import this tfedge.
ROOT = Path(__file__).resolve().parents[1]


def script_dir_last(script: str) -> None:
    """Move the running script's folder from the front of ``sys.path`` to the end.

    Python puts it first, so a module here named like an installed package would shadow
    it (a ``packaging.py`` here once hid PyPI's ``packaging`` from matplotlib and
    TensorFlow). At the end, this folder's own modules still import.
    """
    here = str(Path(script).resolve().parent)
    if sys.path and sys.path[0] and str(Path(sys.path[0]).resolve()) == here:
        sys.path.append(sys.path.pop(0))


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call of ``fn`` over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def paired_rounds(ways: Mapping[str, Callable[[], object]], *, rounds: int, calls: int
                  ) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of each way in each round, on both clocks; the ways run back to back in a round.

    ``wall`` is perf_counter; ``cpu`` is this process's CPU time (what each way costs, not
    waits, on a busy machine). Each way is warmed up with ``max(1, calls // 10)`` calls first.
    """
    for fn in ways.values():
        per_call(fn, max(1, calls // 10))
    samples: dict[str, dict[str, list[float]]] = {"wall": {n: [] for n in ways}, "cpu": {n: [] for n in ways}}
    for _ in range(rounds):
        for name, fn in ways.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            samples["cpu"][name].append((time.process_time() - cpu) / calls)
            samples["wall"][name].append((time.perf_counter() - wall) / calls)
    return samples


def interleave(ways: Mapping[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    """Median wall seconds per call of each way, rounds interleaved so noise hits all alike."""
    wall = paired_rounds(ways, rounds=rounds, calls=calls)["wall"]
    return {name: statistics.median(values) for name, values in wall.items()}


def subprocess_env() -> dict[str, str]:
    """Environment for child Pythons: this checkout first on the path, TF's logs quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def run_python(args: Sequence[str], *, timeout: float = 900) -> str:
    """Run ``python ARGS`` with :func:`subprocess_env` and return its stdout.

    Raises:
        RuntimeError: the child failed; the message ends with the tail of its stderr.
    """
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(args[:2])} exited with {proc.returncode}:\n{tail}")
    return proc.stdout


def run_json(args: Sequence[str], *, timeout: float = 900) -> Any:
    """Run ``python ARGS`` and parse its stdout as JSON."""
    return json.loads(run_python(args, timeout=timeout))
