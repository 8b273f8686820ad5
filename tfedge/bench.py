"""Latency of a model, measured the way TFLite's ``benchmark_model`` does it.

One :func:`benchmark` call creates an :class:`~tfedge.Interpreter` (timed: *init*),
runs it once (timed: *first inference*, which includes the one-off work backends
do on the first call, such as packing weights for XNNPACK), runs a few untimed
warm-up calls, then times each of ``runs`` calls (or as many as fit in
``duration`` seconds) of :meth:`~tfedge.Interpreter.run`: the latency an app
using tfedge sees, input quantization and output copies included.

``peak_rss_mib`` is the peak resident memory of the whole *process* so far
(``getrusage`` ``ru_maxrss``), not of the model alone: run one benchmark per
process when that number matters. ``peak_rss_growth_mib`` is how much that peak
rose during the benchmark, a lower bound on what loading and running the model
took.

Example::

    from tfedge.bench import benchmark
    result = benchmark("model.tflite", runs=100, threads=2)
    print(result.median_ms, result.throughput)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Optional, TextIO

import numpy as np

from . import backends
from ._inputs import random_input
from .errors import InputError
from .interpreter import Interpreter, ModelSource

__all__ = ["DEFAULT_RUNS", "DEFAULT_WARMUP", "BenchResult", "benchmark"]

DEFAULT_RUNS = 50
DEFAULT_WARMUP = 3
_PROGRESS_EVERY = 0.25  # seconds between progress updates: often enough to look alive


@dataclass(frozen=True)
class BenchResult:
    """What :func:`benchmark` measured. Times are milliseconds of wall-clock time.

    Attributes:
        model: The model's path, or ``"<bytes>"``.
        size_bytes: Size of the model file.
        backend: The backend that ran it.
        backend_version: That backend's version.
        num_threads: CPU threads the interpreter used.
        delegates: Delegates asked for (empty: the backend's default CPU path).
        batch: Size of dimension 0 of every input (samples per inference call).
        init_ms: Creating the Interpreter: reading the file, building the
            interpreter and allocating tensors (the backend was imported before).
        first_ms: The first ``run()``.
        warmup: Untimed calls after the first one.
        count: Timed calls.
        min_ms: Fastest timed call.
        median_ms: Median timed call.
        mean_ms: Mean timed call.
        p90_ms: 90th percentile (linear interpolation).
        p99_ms: 99th percentile (linear interpolation).
        max_ms: Slowest timed call.
        std_ms: Standard deviation of the timed calls (population).
        total_s: Wall-clock seconds of the timed calls together.
        throughput: Samples per second over the timed calls (``batch * count / total_s``).
        peak_rss_mib: Peak resident memory of the process (MiB), see the module docs.
        peak_rss_growth_mib: How much that peak rose during the benchmark (MiB).
    """

    model: str
    size_bytes: int
    backend: str
    backend_version: str
    num_threads: int
    delegates: tuple[str, ...]
    batch: int
    init_ms: float
    first_ms: float
    warmup: int
    count: int
    min_ms: float
    median_ms: float
    mean_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float
    total_s: float
    throughput: float
    peak_rss_mib: float
    peak_rss_growth_mib: float

    def summary(self) -> str:
        """The human-readable report ``tfedge bench`` prints."""
        delegates = ", delegates " + ", ".join(self.delegates) if self.delegates else ""
        stats = "  ".join(f"{k} {getattr(self, k + '_ms'):.4g}" for k in ("min", "median", "mean", "p90", "p99", "max", "std"))
        return "\n".join([
            f"model       {self.model} ({self.size_bytes:,} bytes)",
            f"backend     {self.backend} {self.backend_version}, {self.num_threads} thread(s){delegates}, batch {self.batch}",
            f"init        {self.init_ms:.4g} ms",
            f"first       {self.first_ms:.4g} ms",
            f"warm-up     {self.warmup} run(s)",
            f"timed       {self.count} run(s) in {self.total_s:.3f} s",
            f"latency ms  {stats}",
            f"throughput  {self.throughput:,.1f} inferences/s",
            f"peak RSS    {self.peak_rss_mib:.1f} MiB (whole process; rose {self.peak_rss_growth_mib:.1f} MiB during the benchmark)",
        ])

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (what ``tfedge bench --json`` prints)."""
        data = asdict(self)
        data["delegates"] = list(self.delegates)
        return data


def benchmark(
    model: ModelSource,
    *,
    runs: int | None = None,
    duration: float | None = None,
    warmup: int = DEFAULT_WARMUP,
    threads: int | None = None,
    backend: str | None = None,
    delegates: Sequence[str] = (),
    strict: bool = False,
    batch: int = 1,
    inputs: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
    progress: Optional[TextIO] = None,
) -> BenchResult:
    """Measure init time, first inference and the latency of ``model``.

    Args:
        model: Path to a .tflite file, or its bytes.
        runs: Timed calls (default :data:`DEFAULT_RUNS`). Not with ``duration``.
        duration: Instead of a count, time calls until this many seconds have
            passed (at least one call).
        warmup: Untimed calls after the first inference.
        threads: CPU threads; None means the cores this process may use.
        backend: Backend name, as for :class:`~tfedge.Interpreter`.
        delegates: Delegates to try in order, passed to the Interpreter as ``delegates=``;
            empty means its default (XNNPACK on the CPU).
        strict: Fail when a delegate cannot be used instead of skipping it.
        batch: Size of dimension 0 of the random inputs. Given ``inputs`` must
            already have it.
        inputs: Arrays by input name; inputs left out are random.
        seed: Seed of the random inputs.
        progress: A stream (usually ``sys.stderr``) to show progress on, with
            carriage returns; None shows none.

    Returns:
        The measurements.

    Raises:
        ValueError: a count or duration out of range, or both ``runs`` and ``duration``.
        ModelError, BackendNotFoundError, InputError, InvokeError: as the
            Interpreter raises them.
        DelegateError: with ``strict``, a delegate that cannot be used.
    """
    if runs is not None and duration is not None:
        raise ValueError("Pass runs or duration, not both.")
    if runs is None and duration is None:
        runs = DEFAULT_RUNS
    _check_int("runs", runs, 1)
    _check_int("warmup", warmup, 0)
    _check_int("batch", batch, 1)
    if duration is not None and not (isinstance(duration, (int, float)) and duration > 0):
        raise ValueError(f"duration must be a number of seconds > 0, got {duration!r}.")
    options = _delegate_options(delegates, strict)
    backends.get_backend(backend)  # import it now: init_ms should not include importing a library
    peak_start = _peak_rss_mib()

    start = time.perf_counter()
    interp = Interpreter(model, backend=backend, num_threads=threads, **options)
    init = time.perf_counter() - start
    feed = _make_inputs(interp, inputs, batch, seed)
    run = interp.run

    start = time.perf_counter()
    run(feed)
    first = time.perf_counter() - start
    for _ in range(warmup):
        run(feed)

    times = _timed_calls(run, feed, runs, duration, progress)
    ms = np.asarray(times) * 1e3
    total = float(sum(times))
    peak = _peak_rss_mib()
    return BenchResult(
        model=os.fspath(model) if isinstance(model, (str, os.PathLike)) else "<bytes>",
        size_bytes=len(interp.model_content),
        backend=interp.backend,
        backend_version=interp.backend_version,
        num_threads=interp.num_threads,
        delegates=tuple(delegates),
        batch=batch,
        init_ms=init * 1e3,
        first_ms=first * 1e3,
        warmup=warmup,
        count=len(times),
        min_ms=float(ms.min()),
        median_ms=float(np.median(ms)),
        mean_ms=float(ms.mean()),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
        std_ms=float(ms.std()),
        total_s=total,
        throughput=batch * len(times) / total if total > 0 else float("inf"),
        peak_rss_mib=peak,
        peak_rss_growth_mib=peak - peak_start,
    )


def _timed_calls(
    run: Any, feed: Any, runs: int | None, duration: float | None, progress: Optional[TextIO]
) -> list[float]:
    """Seconds of each timed call: ``runs`` of them, or as many as fit in ``duration``."""
    clock = time.perf_counter
    times: list[float] = []
    append = times.append
    began = clock()
    next_report = began + _PROGRESS_EVERY if progress is not None else float("inf")
    while True:
        start = clock()
        run(feed)
        end = clock()
        append(end - start)
        if runs is not None:
            done = len(times) >= runs
        else:
            done = end - began >= duration  # type: ignore[operator]
        if end >= next_report or (done and progress is not None):
            _report(progress, times, runs, duration, end - began, done)  # type: ignore[arg-type]
            next_report = end + _PROGRESS_EVERY
        if done:
            return times


def _report(stream: TextIO, times: list[float], runs: int | None, duration: float | None,
            elapsed: float, done: bool) -> None:
    """One progress line, redrawn in place with a carriage return."""
    if runs is not None:
        text = f"bench: {len(times)}/{runs} runs ({100 * len(times) // runs}%)"
    else:
        text = f"bench: {len(times)} runs, {elapsed:.1f}/{duration:.1f} s"
    stream.write(f"\r{text}" + ("\n" if done else ""))
    stream.flush()


def _make_inputs(interp: Interpreter, given: Mapping[str, np.ndarray] | None, batch: int, seed: int) -> Any:
    """The feed for ``run()``: given arrays plus seeded random ones, checked for ``batch``."""
    rng = np.random.default_rng(seed)
    specs = interp.input_specs()
    given = dict(given or {})
    known = {s.name for s in specs} | {s.tensor_name for s in specs}
    unknown = sorted(set(given) - known)
    if unknown:
        names = ", ".join(repr(s.name) for s in specs) or "none"
        raise InputError(f"Unknown input {unknown[0]!r}. Available: {names}.")
    feed: dict[str, np.ndarray] = {}
    for spec in specs:
        value = given.get(spec.name, given.get(spec.tensor_name))
        if value is None:
            value = random_input(spec, rng, batch=None if batch == 1 else batch)
        elif batch != 1 and (value.ndim == 0 or value.shape[0] != batch):
            got = "a scalar" if value.ndim == 0 else f"{value.shape[0]} on dimension 0"
            raise InputError(f"Input {spec.name!r} has {got}, but the batch is {batch}. "
                             f"Give arrays of batch {batch}, or leave out --batch.")
        feed[spec.name] = value
    # One array for a one-input model: run() has a fast path for exactly that.
    return next(iter(feed.values())) if len(feed) == 1 else feed


def _delegate_options(delegates: Sequence[str], strict: bool) -> dict[str, Any]:
    """The Interpreter keywords for ``delegates`` (none when left to its default)."""
    if isinstance(delegates, str):
        raise TypeError("delegates must be a sequence of names, not one string.")
    if not delegates:
        return {"strict": True} if strict else {}
    return {"delegates": list(delegates), "strict": strict}


def _check_int(name: str, value: Any, minimum: int) -> None:
    """ValueError unless ``value`` is a whole number >= ``minimum`` (None passes)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
