"""Fuzz tfedge's parsers with atheris (coverage-guided), one target at a time.

Each target is a module ``tests/fuzz/fuzz_<name>.py`` (see ``tests/fuzz/_harness.py``). For each
target asked for, this runs it for ``--runs`` executions or ``--seconds`` seconds, starting
from its seeds and its committed corpus, with a per-input time limit and a memory bound, and
prints a table: executions, coverage (libFuzzer's edges and features), corpus size, findings.
Findings (an exception the target does not allow, a hang, memory past its bound, a crash)
are written to ``tests/fuzz/regressions/<target>/``, where ``tests/fuzz/test_fuzz_replay.py`` replays
them; ``--save-corpus`` folds the new interesting inputs into ``tests/fuzz/corpus/<target>/``
(small files only). ``--record`` writes what the run did to ``tests/fuzz/records/<target>.json``
(executions, coverage, findings, the command, the date, the load average), from which
``benchmarks/run_all.py`` builds the fuzzing table of RESULTS.md. Needs atheris (Python 3.11:
``pip install "tfedge[fuzz]"``)::

    python scripts/fuzz.py metadata verify --runs 1000000 --save-corpus --record
    python scripts/fuzz.py --seconds 60 --save-corpus      # every target, a minute each

Exits 0 when no target had a finding, 1 when one had, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parents[1] / "tests" / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))  # the harness, never the repository root: tfedge is the installed one

import _harness  # noqa: E402

#: Where ``--record`` writes one JSON record per target (read by benchmarks/tables/fuzzing.py).
RECORDS_DIR = FUZZ_DIR / "records"
#: Corpus files over this size are not committed (they are rebuilt from the seeds anyway).
MAX_CORPUS_FILE = 16 << 10


@dataclass(frozen=True)
class Outcome:
    """What one target's run did."""

    target: str
    executions: int
    edges: int
    features: int
    corpus: int
    seconds: float
    findings: tuple[str, ...]
    loads: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the start and at the end


def _stat(log: str, name: str) -> int:
    match = re.search(rf"stat::{name}:\s+(\d+)", log)
    return int(match.group(1)) if match else 0


def _coverage(log: str) -> tuple[int, int]:
    """The last ``cov: N ft: M`` libFuzzer printed."""
    found = re.findall(r"cov: (\d+) ft: (\d+)", log)
    return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)


def _executions(log: str) -> int:
    """Inputs run: the final statistics, or (fork mode prints none) the last ``#N: cov:`` line."""
    found = re.findall(r"^#(\d+):? +(?:\w+ +)?cov:", log, re.MULTILINE)
    return _stat(log, "number_of_executed_units") or (int(found[-1]) if found else 0)


def _write_seeds(name: str, folder: Path) -> int:
    """Put a target's seeds in ``folder``; how many."""
    seeds = _harness.load_target(name).seeds()
    for i, data in enumerate(seeds):
        (folder / f"seed-{i:03d}").write_bytes(data)
    return len(seeds)


def _save_corpus(command: list[str], name: str, grown: Path, work: Path, max_len: int) -> int:
    """Merge the committed corpus and the grown inputs into a minimal set of small files; its size."""
    corpus = _harness.CORPUS_DIR / name
    corpus.mkdir(parents=True, exist_ok=True)
    merged = work / "merged"
    merged.mkdir()
    subprocess.run([*command, "-merge=1", f"-max_len={max_len}", str(merged), str(corpus), str(grown)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    kept = [p for p in merged.iterdir() if p.stat().st_size <= max_len]
    if kept:  # a failed merge keeps what was committed
        for old in corpus.iterdir():
            old.unlink()
        for path in kept:
            shutil.copy(path, corpus / path.name)
    return len(list(corpus.iterdir()))


def fuzz(name: str, *, runs: int, seconds: int, time_limit: float, rss_limit_mb: int, max_len: int,
         save_corpus: bool, regressions: Path | None, verbose: bool, keep_going: bool = False) -> Outcome:
    """Run one target under atheris in a child process and read what it reports."""
    command = [sys.executable, str(FUZZ_DIR / "_harness.py"), name]
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        work = Path(tmp)
        grown, seeds = work / "grown", work / "seeds"
        grown.mkdir()
        seeds.mkdir()
        _write_seeds(name, seeds)
        folder = regressions / name if regressions else _harness.REGRESSIONS_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        before = set(folder.iterdir())
        log_file = work / "findings.jsonl"
        limits = [f"-rss_limit_mb={rss_limit_mb}", f"-timeout={max(1, int(time_limit * 5))}",
                  "-print_final_stats=1", f"-artifact_prefix={folder}/"]
        limits += [f"-max_len={max_len}"] if max_len else []
        limits += [f"-runs={runs}"] if runs else []
        limits += [f"-max_total_time={seconds}"] if seconds else []
        # Fork mode: children fuzz, a crash or hang ends one child, not the run.
        limits += ["-fork=1", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"] if keep_going else []
        corpus = _harness.CORPUS_DIR / name
        dirs = [str(grown), *([str(corpus)] if corpus.is_dir() else []), str(seeds)]
        env = {**os.environ, "TFEDGE_FUZZ_LOG": str(log_file), "TFEDGE_FUZZ_REGRESSIONS": str(folder),
               "TFEDGE_FUZZ_TIME_LIMIT": str(time_limit)}
        load_start = os.getloadavg()[0]
        start = time.monotonic()
        run = subprocess.run([*command, *limits, *dirs], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace", check=False)
        elapsed = time.monotonic() - start
        log = run.stdout
        if verbose:
            print(log, file=sys.stderr)
        findings = [json.loads(line)["signature"] for line in log_file.read_text().splitlines()] \
            if log_file.exists() else []
        # A crash, hang or out-of-memory stops libFuzzer, which writes the input itself.
        findings += [f"{p.name} (libFuzzer)" for p in sorted(set(folder.iterdir()) - before)
                     if not p.name.startswith(("exception-", "time-", "memory-"))]
        if run.returncode not in (0,) and not findings:
            tail = "\n".join(log.splitlines()[-15:])
            findings.append(f"exit {run.returncode}: {tail}")
        edges, features = _coverage(log)
        kept = _save_corpus(command, name, grown, work, max_len or MAX_CORPUS_FILE) if save_corpus else (
            len(list(corpus.iterdir())) if corpus.is_dir() else 0)
        return Outcome(name, _executions(log), edges, features, kept, elapsed,
                       tuple(findings), (load_start, os.getloadavg()[0]))


def _atheris_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("atheris")
    except PackageNotFoundError:
        return "unknown"


def record(outcome: Outcome, command: str, folder: Path = RECORDS_DIR) -> Path:
    """Write what one target's run did to ``folder/<target>.json`` (atomically); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{outcome.target}.json"
    data = {
        "target": outcome.target,
        "executions": outcome.executions,
        "cov": outcome.edges,
        "ft": outcome.features,
        "corpus": outcome.corpus,
        "seconds": round(outcome.seconds),
        "findings": list(outcome.findings),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "load_average": [round(x, 1) for x in outcome.loads],
        "atheris": _atheris_version(),
    }
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(partial, path)
    return path


def _command_line(name: str, args: argparse.Namespace) -> str:
    """The command that runs one target as this run did (for the record)."""
    parts = ["python scripts/fuzz.py", name]
    parts += [f"--runs {args.runs}"] if args.runs else []
    parts += [f"--seconds {args.seconds}"] if args.seconds else []
    parts += [f"--time-limit {args.time_limit:g}"] if args.time_limit != _harness.TIME_LIMIT else []
    parts += [f"--rss-limit-mb {args.rss_limit_mb}"] if args.rss_limit_mb != 2048 else []
    parts += [f"--max-len {args.max_len}"] if args.max_len else []
    parts += ["--keep-going"] if args.keep_going else []
    parts += ["--save-corpus"] if args.save_corpus else []
    return " ".join(parts)


def table(outcomes: Sequence[Outcome]) -> str:
    """One row per target."""
    lines = [f"{'target':<22}{'executions':>12}{'cov':>7}{'ft':>8}{'corpus':>8}{'seconds':>9}  findings"]
    for o in outcomes:
        lines.append(f"{o.target:<22}{o.executions:>12,}{o.edges:>7}{o.features:>8}{o.corpus:>8}"
                     f"{o.seconds:>9.0f}  {len(o.findings)}")
        lines += [f"    {finding}" for finding in o.findings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"default: all ({', '.join(_harness.target_names())})")
    parser.add_argument("--runs", type=int, default=0, help="executions per target")
    parser.add_argument("--seconds", type=int, default=0, help="seconds per target")
    parser.add_argument("--time-limit", type=float, default=_harness.TIME_LIMIT,
                        help="seconds one input may take (a hang is killed at 5x)")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="the fuzzing process's memory cap")
    parser.add_argument("--max-len", type=int, default=0, help="largest input in bytes (default: the seeds')")
    parser.add_argument("--save-corpus", action="store_true", help="fold new inputs into tests/fuzz/corpus/")
    parser.add_argument("--record", action="store_true",
                        help="write the run's numbers to tests/fuzz/records/<target>.json (for RESULTS.md)")
    parser.add_argument("--regressions", type=Path, help="where findings go (default tests/fuzz/regressions)")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on after a crash, hang or OOM (libFuzzer's fork mode; use --seconds)")
    parser.add_argument("--verbose", action="store_true", help="show libFuzzer's output")
    args = parser.parse_args(argv)
    names = args.targets or _harness.target_names()
    unknown = sorted(set(names) - set(_harness.target_names()))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; available: {', '.join(_harness.target_names())}")
    if not (args.runs or args.seconds):
        parser.error("give --runs N or --seconds T (or both: whichever comes first)")
    try:
        import atheris  # noqa: F401
    except ImportError:
        print('scripts/fuzz.py needs atheris (Python 3.11): pip install "tfedge[fuzz]".', file=sys.stderr)
        return 2
    outcomes = []
    for name in names:
        outcome = fuzz(name, runs=args.runs, seconds=args.seconds, time_limit=args.time_limit,
                       rss_limit_mb=args.rss_limit_mb, max_len=args.max_len, save_corpus=args.save_corpus,
                       regressions=args.regressions, verbose=args.verbose, keep_going=args.keep_going)
        outcomes.append(outcome)
        if args.record:
            record(outcome, _command_line(name, args))
        print(f"{name}: {outcome.executions:,} executions, cov {outcome.edges}, ft {outcome.features}, "
              f"{len(outcome.findings)} finding(s)", file=sys.stderr, flush=True)
    print(table(outcomes))
    return 1 if any(o.findings for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
