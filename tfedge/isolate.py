"""Probe a model once in a child process, for what no structural check can catch.

A model can be structurally sound and still abort or loop forever inside the backend
(``nested_while.tflite`` never returns on zero inputs). :func:`probe_model` loads it,
allocates and runs one inference on zero inputs in a child process with a time limit,
and remembers the verdict by the file's SHA-256 (and the backend and its version), so
the next load of the same file costs a hash. ``Interpreter(..., probe=True)`` and
``tfedge check MODEL`` use it.
"""

from __future__ import annotations

import hashlib
import json
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._files import cache_dir, write_atomically
from .errors import ModelError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .interpreter import TensorSpec

__all__ = ["ProbeResult", "probe_model"]

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ProbeResult:
    """The verdict of one probe.

    Attributes:
        ok: The model loaded, allocated and ran one inference.
        outcome: ``"ok"``, ``"error"``, ``"signal"`` or ``"timeout"``.
        detail: The error text, the signal name, or the time limit.
        sha256: Hash of the model's bytes.
        backend: The backend the probe used, with its version.
        cached: The verdict came from the cache, not a new child process.
    """

    ok: bool
    outcome: str
    detail: str
    sha256: str
    backend: str
    cached: bool = False

    def error(self, source: str) -> ModelError:
        """The ModelError an app gets for a failed probe."""
        if self.outcome == "signal":
            what = f"crashed the {self.backend} backend ({self.detail}) in a test run"
        elif self.outcome == "timeout":
            what = f"did not finish one inference within {self.detail} (it may loop forever)"
        else:
            what = f"failed in a test run: {self.detail.rstrip('.')}"
        return ModelError(f"{source} {what}. It was not loaded into this process.")


def _child(data: bytes, backend: str, conn: Connection) -> None:
    """In the child: load, allocate and invoke once on zero inputs; report the outcome."""
    try:
        from .interpreter import Interpreter

        interp = Interpreter(data, backend=backend, num_threads=1)
        interp.run([_zeros(spec) for spec in interp.input_specs()], raw=True)
    except Exception as exc:  # noqa: BLE001 - the verdict is whatever it raised
        text = str(exc).strip()
        conn.send(("error", f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"))
    else:
        conn.send(("ok", ""))


def _zeros(spec: TensorSpec) -> np.ndarray:
    """Zeros that fit ``spec`` (free dimensions 1; empty strings for string tensors)."""
    shape = tuple(d if d >= 0 else 1 for d in spec.shape_signature)
    if spec.dtype.kind in "SO":
        return np.full(shape, b"", dtype=object)
    return np.zeros(shape, spec.dtype)


def probe_model(
    data: bytes, *, backend: str, backend_version: str, timeout: float = DEFAULT_TIMEOUT, use_cache: bool = True
) -> ProbeResult:
    """Load and run ``data`` once in a child process; return (and cache) the verdict.

    Args:
        data: The model's bytes.
        backend: The backend name to probe with.
        backend_version: Its version (part of the cache key: a new runtime re-probes).
        timeout: Seconds the child may take before it is killed.
        use_cache: Read and write the verdict cache.
    """
    sha = hashlib.sha256(data).hexdigest()
    label = f"{backend} {backend_version}"
    cache = cache_dir() / "probe" / f"{sha}-{backend}-{backend_version}.json"
    if use_cache and cache.is_file():
        try:
            return ProbeResult(**{**json.loads(cache.read_text()), "cached": True})
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache entry is probed again
    import multiprocessing  # here, not at the top: most processes never probe, and it costs start-up

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(data, backend, send), daemon=True)
    child.start()
    send.close()
    if receive.poll(timeout):
        try:
            outcome, detail = receive.recv()
        except EOFError:
            outcome, detail = "", ""
        child.join(5)
    else:
        outcome, detail = "timeout", f"{timeout:g} s"
        child.kill()
        child.join()
    if not outcome:
        child.join(5)
        code = child.exitcode or 0
        outcome = "signal"
        detail = signal.Signals(-code).name if code < 0 else f"exit status {code}"
    result = ProbeResult(outcome == "ok", outcome, detail, sha, label)
    if use_cache and outcome in ("ok", "signal", "timeout", "error"):
        _write_atomic(cache, json.dumps({k: v for k, v in asdict(result).items() if k != "cached"}))
    return result


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename; errors are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text.encode())
    except OSError:
        pass  # a read-only cache only costs a probe next time
