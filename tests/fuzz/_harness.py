"""The shared fuzzing runner: one input through one target, checked, and the atheris entry point.

A target is a module ``tests/fuzz/fuzz_<name>.py`` that defines:

- ``ALLOWED: tuple[type[BaseException], ...]``: the only exceptions allowed out of it
  (tfedge's own errors, and ``TypeError`` where the API says so);
- ``def seeds() -> list[bytes]``: seed inputs built from the suite's models, files and requests;
- ``def one_input(data: bytes) -> None``: runs the target on one input (no atheris needed).

An input is a *finding* when ``one_input`` lets any other exception out, takes longer than the
time limit, or grows memory past :func:`memory_bound` (four times the input plus 64 MiB).
:func:`check_input` decides that, the same way under atheris (``scripts/fuzz.py``) and in the
deterministic replay that CI runs (``tests/fuzz/test_fuzz_replay.py``).

Run one target under atheris (what ``scripts/fuzz.py`` does for you, with corpus handling)::

    python tests/fuzz/_harness.py metadata -runs=100000 CORPUS_DIR SEED_DIR

Arguments after the target name go to libFuzzer. Findings are written, one input per distinct
finding, to ``tests/fuzz/regressions/<target>/`` (or ``$TFEDGE_FUZZ_REGRESSIONS``), and logged
as JSON lines to ``$TFEDGE_FUZZ_LOG`` when set; fuzzing goes on after a finding.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
#: The suite's test data (models, files), where targets build their seeds from.
DATA_DIR = FUZZ_DIR.parent / "data"

#: Seconds one input may take before it is a finding (a hang or a near-hang).
TIME_LIMIT = 2.0
#: Memory an input may use beyond four times its own size.
MEMORY_SLACK = 64 << 20


def memory_bound(size: int) -> int:
    """Bytes an input of ``size`` bytes may make the target allocate."""
    return 4 * size + MEMORY_SLACK


def model_seeds(*names: str) -> list[bytes]:
    """The bytes of test files under tests/data (``"litert-testdata/add.tflite"``), for seeds."""
    return [(DATA_DIR / name).read_bytes() for name in names]


def scratch_dir(prefix: str) -> Path:
    """A folder for the files a target writes per input, removed at exit (in memory where possible)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def target_names() -> list[str]:
    """Names of every target module in tests/fuzz (``fuzz_<name>.py``), sorted."""
    return sorted(p.stem[len("fuzz_"):] for p in FUZZ_DIR.glob("fuzz_*.py"))


def load_target(name: str) -> ModuleType:
    """Import ``fuzz_<name>.py`` by path and check that it has the three names a target needs."""
    path = FUZZ_DIR / f"fuzz_{name}.py"
    if not path.is_file():
        raise SystemExit(f"No fuzz target {name!r} ({path} is missing). Targets: {', '.join(target_names())}.")
    if str(FUZZ_DIR) not in sys.path:  # targets may share helpers kept beside them
        sys.path.insert(0, str(FUZZ_DIR))
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    allowed = getattr(module, "ALLOWED", None)
    if not (isinstance(allowed, tuple) and all(isinstance(t, type) and issubclass(t, BaseException)
                                               for t in allowed)):
        raise SystemExit(f"{path}: ALLOWED must be a tuple of exception classes, got {allowed!r}.")
    for func in ("seeds", "one_input"):
        if not callable(getattr(module, func, None)):
            raise SystemExit(f"{path}: define {func}() (see tests/fuzz/_harness.py).")
    return module


@dataclass(frozen=True)
class Finding:
    """One input that broke a target's promise."""

    kind: str  # "exception", "time" or "memory"
    signature: str  # what makes two findings the same: kind, exception type, place
    message: str  # one line for people

    def file_name(self, data: bytes) -> str:
        """Name of the regression file that keeps the input: kind and content hash."""
        return f"{self.kind}-{hashlib.sha1(data).hexdigest()[:16]}"


def _signature(exc: BaseException) -> str:
    """Exception type, the innermost frame, and the innermost tfedge frame if that is another."""
    frames = traceback.extract_tb(exc.__traceback__)
    places = []
    if frames:
        places.append(f"{Path(frames[-1].filename).name}:{frames[-1].lineno}")
        ours = [f for f in frames if "/tfedge/" in f.filename or "/converters/" in f.filename]
        if ours and ours[-1] is not frames[-1]:
            places.append(f"{Path(ours[-1].filename).name}:{ours[-1].lineno}")
    return f"{type(exc).__name__}@{'<'.join(places) or '?'}"


def _max_rss() -> int:
    """Peak resident memory of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_input(module: ModuleType, data: bytes, *, time_limit: float = TIME_LIMIT,
                trace_memory: bool = False) -> Finding | None:
    """Run ``module.one_input(data)``; the finding it makes, or None when it kept its promise.

    Memory is measured by ``tracemalloc`` (exact and repeatable, but slow: the replay) when
    ``trace_memory``, else by the growth of the process's peak resident memory (cheap: fuzzing).
    """
    rss = _max_rss()
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        try:
            module.one_input(data)
        except module.ALLOWED:
            pass
        finally:
            elapsed = time.perf_counter() - start
            if trace_memory:
                used = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            else:
                used = _max_rss() - rss
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - anything not allowed is the finding
        line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        return Finding("exception", _signature(exc), f"{type(exc).__name__}: {line}")
    if elapsed > time_limit:
        return Finding("time", f"time@{module.__name__}",
                       f"took {elapsed:.2f} s on {len(data)} bytes (limit {time_limit:g} s)")
    if used > memory_bound(len(data)):
        return Finding("memory", f"memory@{module.__name__}",
                       f"used {used >> 20} MiB on {len(data)} bytes (bound {memory_bound(len(data)) >> 20} MiB)")
    return None


#: Inputs libFuzzer itself kept (the process crashed, hung or ran out of memory): replayed in a child.
CRASH_PREFIXES = ("crash-", "timeout-", "oom-", "slow-unit-", "leak-")


def check_in_child(name: str, path: Path, *, time_limit: float = TIME_LIMIT, timeout: float = 120) -> str | None:
    """Check one stored input in a fresh process (it may kill it): None, or what went wrong."""
    env = {**os.environ, "TFEDGE_FUZZ_TIME_LIMIT": str(time_limit)}
    try:
        run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--check", name, str(path)],
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"hung for {timeout:g} s"
    if run.returncode == 0:
        return None
    if run.returncode < 0:
        return f"killed by {signal.Signals(-run.returncode).name}"
    return run.stdout.strip().splitlines()[-1] if run.stdout.strip() else f"exit {run.returncode}: {run.stderr[-300:]}"


def stored_inputs(name: str, module: ModuleType) -> Iterator[tuple[str, bytes]]:
    """Every input replayed for a target: its seeds, its committed corpus, its regressions."""
    for i, data in enumerate(module.seeds()):
        yield f"seed #{i}", data
    for kind, root in (("corpus", CORPUS_DIR), ("regression", REGRESSIONS_DIR)):
        folder = root / name
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    yield f"{kind} {path.name}", path.read_bytes()


class _Recorder:
    """Keeps the first input of each distinct finding, and logs every distinct one."""

    def __init__(self, name: str) -> None:
        self.folder = Path(os.environ.get("TFEDGE_FUZZ_REGRESSIONS") or REGRESSIONS_DIR / name)
        self.log = os.environ.get("TFEDGE_FUZZ_LOG")
        self.counts: dict[str, int] = {}

    def add(self, finding: Finding, data: bytes) -> None:
        count = self.counts.get(finding.signature, 0) + 1
        self.counts[finding.signature] = count
        if count > 1:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / finding.file_name(data)
        path.write_bytes(data)
        print(f"\nFINDING {finding.signature}: {finding.message} -> {path}", file=sys.stderr, flush=True)
        if self.log:
            with open(self.log, "a") as log:
                log.write(json.dumps({"signature": finding.signature, "message": finding.message,
                                      "file": str(path)}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Fuzz one target under atheris: ``_harness.py <target> [libFuzzer arguments]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] != "--check"):
        print(f"usage: _harness.py TARGET [libFuzzer args]; targets: {', '.join(target_names())}",
              file=sys.stderr)
        return 2
    if args[0] == "--check":  # _harness.py --check TARGET FILE: one input, no atheris (a crash stays here)
        module = load_target(args[1])
        finding = check_input(module, Path(args[2]).read_bytes(), trace_memory=True,
                              time_limit=float(os.environ.get("TFEDGE_FUZZ_TIME_LIMIT", TIME_LIMIT)))
        print(f"{finding.signature}: {finding.message}" if finding else "ok")
        return 1 if finding else 0
    name = args.pop(0)
    import atheris  # only here: the replay runs without it

    with atheris.instrument_imports(include=["tfedge"]):  # coverage of tfedge, not of numpy
        module = load_target(name)
    recorder = _Recorder(name)
    # One-time set-up inside the target (a backend's first import) is not a memory finding:
    # run one seed before measuring; the seeds are fuzzed again, measured, as corpus.
    try:
        module.one_input(module.seeds()[0])
    except Exception:  # noqa: BLE001 - the measured runs report whatever it raises
        pass
    time_limit = float(os.environ.get("TFEDGE_FUZZ_TIME_LIMIT", TIME_LIMIT))

    def one(data: bytes) -> None:
        finding = check_input(module, data, time_limit=time_limit)
        if finding is not None:
            recorder.add(finding, data)

    # libFuzzer's merge and fork modes start this program again through the shell: say how.
    command = " ".join(shlex.quote(part) for part in (sys.executable, str(Path(__file__).resolve()), name))
    atheris.Setup([command, *args], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
