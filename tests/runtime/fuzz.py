"""Fuzz model loading with corrupted .tflite files, each loaded in its own child process.

A corrupt model can kill the process that loads it (SIGSEGV) or hang it, so every mutant is
loaded in a fresh child with a timeout and the outcome is classified: ``ok``, the Python
exception it raised, ``signal N`` or ``timeout``. Two modes:

- ``raw``: the backend's own ``Interpreter(model_content=...)`` and ``allocate_tensors()``.
- ``tfedge``: ``tfedge.Interpreter(data, backend=...)`` as an app calls it: the structural
  check (``tfedge.verify``) first, then the same backend's load and allocation, with its
  errors mapped to ``ModelError``.

Both modes load the same mutants, so the table compares them row by row.

Mutant ``i`` of seed ``s`` comes from ``numpy.random.default_rng([s, i])``, so any one of
them can be rebuilt alone from its recipe numbers. Run from the repository root::

    python tests/runtime/fuzz.py --mutants 10000 --backend tflite_runtime \\
        --models add.tflite,multi_add.tflite --seed 0 --jobs 2
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import struct
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "tests" / "data" / "litert-testdata"
BACKENDS = {
    "tflite_runtime": "tflite_runtime.interpreter",
    "ai_edge_litert": "ai_edge_litert.interpreter",
}
MODES = ("raw", "tfedge")
_BOUNDARY_WORDS = (0, 0xFFFFFFFF, 0x7FFFFFFF)


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """Corrupt a model the ways files really break, or the ways that hurt parsers most.

    Either truncates the file, or applies one to three of: bit flips, a 4-byte word
    overwritten with a random or boundary value, and a moved offset (a little-endian
    uint32 that looks like a forward offset to an aligned place in the file).

    Args:
        data: The original model.
        rng: Source of randomness; the same state gives the same mutant.

    Returns:
        A recipe that says what was done (e.g. ``word@120=0x7fffffff``) and the mutant.
    """
    out = bytearray(data)
    if rng.random() < 0.15:
        n = int(rng.integers(0, len(data)))
        return f"truncate@{n}", bytes(out[:n])
    steps = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(("flip", "word", "offset"))
        if kind == "flip":
            pos, bit = int(rng.integers(0, len(out))), int(rng.integers(0, 8))
            out[pos] ^= 1 << bit
            steps.append(f"flip@{pos}.{bit}")
            continue
        if kind == "offset" and (pos := _pick_offset(out, rng)) is not None:
            old = struct.unpack_from("<I", out, pos)[0]
            # Near misses (off by a few words) and jumps anywhere in the file.
            new = old + int(rng.choice((-8, -4, 4, 8))) if rng.random() < 0.5 else (
                int(rng.integers(0, len(out))) & ~3) - pos
            new &= 0xFFFFFFFF
            steps.append(f"offset@{pos}:{old:#x}->{new:#x}")
        else:
            pos = int(rng.integers(0, len(out) // 4)) * 4
            new = int(rng.choice(_BOUNDARY_WORDS)) if rng.random() < 0.5 else int(
                rng.integers(0, 1 << 32))
            steps.append(f"word@{pos}={new:#x}")
        struct.pack_into("<I", out, pos, new)
    return ";".join(steps), bytes(out)


def _pick_offset(data: bytearray, rng: np.random.Generator) -> int | None:
    """Position of a random aligned uint32 that points forward to an aligned in-file byte."""
    words = np.frombuffer(bytes(data[: len(data) // 4 * 4]), "<u4").astype(np.int64)
    positions = np.arange(len(words), dtype=np.int64) * 4
    candidates = np.flatnonzero((words > 0) & (words % 4 == 0) & (positions + words < len(data)))
    return int(positions[rng.choice(candidates)]) if len(candidates) else None


def mutants(models: Sequence[Path], count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """Yield `count` (recipe, mutant) pairs, cycling through `models`."""
    originals = [(path.name, path.read_bytes()) for path in models]
    for i in range(count):
        name, data = originals[i % len(originals)]
        recipe, mutant = mutate(data, np.random.default_rng([seed, i]))
        yield f"{name}#{i}:{recipe}", mutant


def load_in_child(data: bytes, mode: str, backend: str) -> None:
    """Load `data` as an app would; raise what loading raises. Runs in the child process."""
    if mode == "tfedge":
        import tfedge

        # probe=False: the structural check alone must turn corruption into ModelError; the
        # default crash probe (tests/runtime/test_nocrash.py) would hide a gap in it, and
        # would start one more child per mutant.
        tfedge.Interpreter(data, backend=backend, probe=False)  # verifies, loads and allocates
        return
    interpreter = importlib.import_module(BACKENDS[backend]).Interpreter(model_content=data)
    interpreter.allocate_tensors()


def _child(conn: multiprocessing.connection.Connection, data: bytes, mode: str, backend: str
           ) -> None:
    """Child entry: report "ok" or the exception (with its cause's type) to the parent."""
    # Thousands of children would each log the backend's banner; keep the table readable.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        load_in_child(data, mode, backend)
    except Exception as exc:  # noqa: BLE001 - the point is to report whatever it raised
        cause = f" from {type(exc.__cause__).__name__}" if exc.__cause__ else ""
        conn.send(f"{type(exc).__name__}{cause}: {exc}")
    else:
        conn.send("ok")


def run_one(data: bytes, mode: str, backend: str, timeout: float) -> str:
    """Load one mutant in a fresh child; return "ok", "Type: message", "signal N" or "timeout"."""
    ctx = multiprocessing.get_context("forkserver")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, data, mode, backend), daemon=True)
    process.start()
    sender.close()
    outcome = "timeout"
    try:
        if receiver.poll(timeout):
            outcome = receiver.recv()
    except EOFError:  # died before it could answer
        outcome = ""
    process.join(timeout if outcome != "timeout" else 0)
    if process.is_alive():
        process.kill()
        process.join()
        return "timeout"
    if process.exitcode and process.exitcode < 0:
        return f"signal {-process.exitcode} ({signal.Signals(-process.exitcode).name})"
    return outcome or f"exit {process.exitcode}"


def category(outcome: str) -> str:
    """The table row of an outcome: its exception type, without the message."""
    return outcome.split(":", 1)[0]


@dataclass(frozen=True)
class Result:
    """One mutant's outcome in one mode."""

    recipe: str
    mode: str
    outcome: str


def run(
    models: Sequence[Path],
    *,
    count: int,
    seed: int,
    backend: str,
    modes: Sequence[str] = MODES,
    jobs: int = 2,
    timeout: float = 3.0,
    progress: bool = False,
) -> list[Result]:
    """Load `count` mutants of `models` in each mode, `jobs` children at a time."""
    ctx = multiprocessing.get_context("forkserver")
    # Children fork from a server that has already imported these: fresh and fast.
    ctx.set_forkserver_preload(["numpy", BACKENDS[backend], "tfedge"])
    cases = list(mutants(models, count, seed))
    with ThreadPoolExecutor(jobs) as pool:
        futures = [
            (recipe, mode, pool.submit(run_one, data, mode, backend, timeout))
            for mode in modes
            for recipe, data in cases
        ]
        results = []
        for done, (recipe, mode, future) in enumerate(futures, 1):
            results.append(Result(recipe, mode, future.result()))
            if progress and done % 500 == 0:
                print(f"{done}/{len(futures)} loaded", file=sys.stderr, flush=True)
        return results


def table(results: Sequence[Result]) -> str:
    """Outcome counts per mode, one row per outcome category."""
    modes = sorted({r.mode for r in results}, key=MODES.index)
    counts = {mode: Counter(category(r.outcome) for r in results if r.mode == mode)
              for mode in modes}
    rows = sorted({c for counter in counts.values() for c in counter})
    width = max(len(row) for row in [*rows, "outcome"])
    lines = [f"{'outcome':<{width}}" + "".join(f"{mode:>10}" for mode in modes)]
    lines += [f"{row:<{width}}" + "".join(f"{counts[m][row]:>10}" for m in modes) for row in rows]
    lines.append(f"{'total':<{width}}" + "".join(f"{sum(counts[m].values()):>10}" for m in modes))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the fuzzer, print the table; exit 1 if tfedge mode crashed or hung."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=1000)
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="tflite_runtime")
    parser.add_argument("--models", default="add.tflite,multi_add.tflite",
                        help=f"comma-separated file names in {MODELS_DIR}")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per mutant")
    args = parser.parse_args(argv)
    models = [MODELS_DIR / name for name in args.models.split(",")]
    results = run(models, count=args.mutants, seed=args.seed, backend=args.backend,
                  modes=args.modes.split(","), jobs=args.jobs, timeout=args.timeout,
                  progress=True)
    print(table(results))
    bad = [r for r in results if r.mode == "tfedge" and r.outcome.startswith(("signal", "timeout"))]
    for r in [r for r in results if r.outcome.startswith(("signal", "timeout"))][:40]:
        print(f"{r.mode:>6} {r.outcome:<22} {r.recipe}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # children import tfedge from this checkout
    raise SystemExit(main())
