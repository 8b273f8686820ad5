"""Probe a model once in a child process, for what no structural check can catch.

A model can be structurally sound and still abort or loop forever inside the backend
(``nested_while.tflite`` never returns on zero inputs). :func:`probe_model` loads it,
allocates and runs one inference on zero inputs in a child process with a time limit,
and remembers the verdict by the file's SHA-256 (and the backend and its version), and by
the file's identity (path, inode, size, mtime, ctime), so the next load of the same
unchanged file costs a ``stat()`` and a small read, and of the same bytes a hash. ``Interpreter(..., probe=True)``,
``tfedge check MODEL`` and tfedge-convert's runtime report use it.

The child is a fresh ``python -m tfedge.isolate``: it imports neither TensorFlow (which
breaks tflite_runtime in the same process) nor the app's own ``__main__``, so a script
without an ``if __name__ == "__main__":`` guard is safe. In a compiled binary, which has
no ``-m``, it is a ``multiprocessing`` spawn of the binary itself instead.

This module uses only tfedge.backends, never :mod:`tfedge.interpreter`, which
imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Tuple

import numpy as np

from . import backends
from ._files import cache_dir, write_atomically
from .errors import ModelError, first_line

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["DEFAULT_TIMEOUT", "FileIdentity", "ProbeResult", "file_identity", "probe_model"]

#: Seconds a probe may take before its child is killed (the one default everywhere).
DEFAULT_TIMEOUT = 30.0

#: A file's (real path, device, inode, size, mtime, ctime), in nanoseconds.
FileIdentity = Tuple[str, int, int, int, int, int]


@dataclass(frozen=True)
class ProbeResult:
    """The verdict of one probe.

    Attributes:
        ok: The model loaded, allocated and ran one inference (or, with free input
            dimensions that its placeholder shape cannot take, loaded).
        outcome: ``"ok"``, ``"error"``, ``"signal"`` or ``"timeout"``.
        detail: The error text (``"ModelError: ..."``), the signal name, the time limit,
            or for ``"ok"`` what was left out.
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

    def reason(self) -> str:
        """What went wrong, in a few words (``crashed the ai_edge_litert 2.3.0 backend (SIGABRT)``)."""
        if self.outcome == "signal":
            return f"crashed the {self.backend} backend ({self.detail}) in a test run"
        if self.outcome == "timeout":
            return f"did not finish one inference within {self.detail} (it may loop forever)"
        return f"failed in a test run: {self.detail.rstrip('.')}"

    def error(self, source: str) -> ModelError:
        """The ModelError an app gets for a failed probe."""
        return ModelError(f"{source} {self.reason()}. It was not loaded into this process.")


def run_once(data: bytes, backend_name: str) -> tuple[str, str]:
    """Load ``data``, allocate, and invoke once on zero inputs, in this process.

    Returns:
        ``("ok", detail)`` or ``("error", "ErrorType: message")``. What this raises
        instead is a crash or a hang: why it runs in a child.
    """
    try:
        backend = backends.choose(backend_name)
        with backends.mapped(backends.Stage.LOAD, backend=backend):
            runtime = backend.open(data, num_threads=1, xnnpack=True, options={})
        inputs = runtime.input_details()
        free = any(int(d) < 0 for spec in inputs for d in spec.get("shape_signature", ()))
        try:
            runtime.allocate()
        except backends.BACKEND_ERRORS as exc:
            if free:  # the placeholder shape (1 per free dimension) may be all that fails
                return "ok", f"loaded; not run: its free input dimensions need a real shape ({first_line(exc)})"
            raise backends.translate(exc, backends.Stage.ALLOCATE, backend=backend) from exc
        with backends.mapped(backends.Stage.INVOKE, backend=backend):
            for spec in inputs:
                runtime.set_tensor(spec["index"], _zeros(spec), 0)
            runtime.invoke(0)
    except Exception as exc:  # noqa: BLE001 - the verdict is whatever it raised
        return "error", first_line(exc, with_type=True)
    return "ok", ""


def _zeros(details: dict[str, Any]) -> np.ndarray:
    """Zeros of an input's current shape (empty strings for string tensors)."""
    shape = tuple(int(d) for d in details["shape"])
    dtype = np.dtype(details["dtype"])
    if dtype.kind in "SO":
        return np.full(shape, b"", dtype=object)
    return np.zeros(shape, dtype)


def probe_model(
    data: bytes, *, backend: str, backend_version: str, timeout: float = DEFAULT_TIMEOUT, use_cache: bool = True,
    identity: FileIdentity | None = None,
) -> ProbeResult:
    """Load and run ``data`` once in a child process; return (and cache) the verdict.

    Args:
        data: The model's bytes.
        backend: The backend name to probe with.
        backend_version: Its version (part of the cache key: a new runtime re-probes).
        timeout: Seconds the child may take before it is killed.
        use_cache: Read and write the verdict cache.
        identity: The file ``data`` was read from (:func:`file_identity`, taken before
            the read). A verdict cached under it is used without hashing ``data``, which
            for a 6 MB model is most of what a cache hit costs.
    """
    label = f"{backend} {backend_version}"
    by_file = _identity_key(identity, label) if use_cache and identity is not None else None
    if by_file is not None:
        known = _cached(by_file, cache_dir() / "probe" / "files" / f"{by_file}.json")
        if known is not None:
            return known
    sha = hashlib.sha256(data).hexdigest()
    key = f"{sha}-{backend}-{backend_version}"
    result = _cached(key, cache_dir() / "probe" / f"{key}.json") if use_cache else None
    if result is None:
        if _compiled():
            outcome, detail = _in_spawned_process(data, backend, timeout)
        else:
            outcome, detail = _in_subprocess(data, backend, timeout)
        result = ProbeResult(outcome == "ok", outcome, detail, sha, label)
        _remember(key, result, cache_dir() / "probe" / f"{key}.json" if use_cache else None)
    if by_file is not None:
        _remember(by_file, result, cache_dir() / "probe" / "files" / f"{by_file}.json")
    return result


#: Verdicts this process has seen, by cache key (the file cache's, without the reads).
_verdicts: dict[str, ProbeResult] = {}

#: A file changed less than this many nanoseconds ago may change again within the
#: file system's timestamp granularity without its identity changing: it is hashed.
RACY_NS = 2_000_000_000


def file_identity(path: str | os.PathLike[str]) -> FileIdentity | None:
    """What identifies ``path``'s current bytes without reading them, or None if unknown.

    Any write changes the ctime, which no program can set back, so an unchanged identity
    means unchanged bytes; a file written in the last :data:`RACY_NS` gets None (hashed).
    """
    try:
        st = os.stat(path)
    except OSError:
        return None  # the read says what is wrong
    if time.time_ns() - max(st.st_ctime_ns, st.st_mtime_ns) < RACY_NS:
        return None
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _identity_key(identity: FileIdentity, label: str) -> str:
    """The cache key of a file identity and a backend."""
    return hashlib.sha256(repr((identity, label)).encode()).hexdigest()


def _cached(key: str, path: Path) -> ProbeResult | None:
    """The verdict under ``key``: from this process, else from the disk cache, else None."""
    if key in _verdicts:  # this process asked already: not even a file read
        return _verdicts[key]
    try:
        _verdicts[key] = ProbeResult(**{**json.loads(path.read_text()), "cached": True})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return None  # a damaged cache entry is probed again
    return _verdicts[key]


def _remember(key: str, result: ProbeResult, path: Path | None) -> None:
    """Keep ``result`` under ``key`` in this process and, given ``path``, on disk."""
    _verdicts[key] = replace(result, cached=True)
    if path is not None:
        _write_atomic(path, json.dumps({k: v for k, v in asdict(result).items() if k != "cached"}))


def _compiled() -> bool:
    """True in a compiled binary (Nuitka, PyInstaller), where ``python -m`` does not exist."""
    # A Nuitka binary's __main__ is always compiled; tfedge itself may be in it as bytecode.
    return ("__compiled__" in globals() or hasattr(sys.modules.get("__main__"), "__compiled__")
            or bool(getattr(sys, "frozen", False)))


def _in_subprocess(data: bytes, backend: str, timeout: float) -> tuple[str, str]:
    """Run :func:`run_once` in ``python -m tfedge.isolate``; the model goes in on stdin."""
    root = str(Path(__file__).resolve().parent.parent)  # this tfedge, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tfedge.isolate", backend], input=data, capture_output=True,
            timeout=timeout, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout", f"{timeout:g} s"
    if proc.returncode < 0:
        return "signal", signal.Signals(-proc.returncode).name
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        outcome, detail = json.loads(lines[-1])
        return str(outcome), str(detail)
    except (ValueError, IndexError, TypeError):
        tail = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return "signal", f"exit status {proc.returncode}: {tail}"


def _child(data: bytes, backend: str, conn: Connection) -> None:
    """The spawned child of a compiled binary: run once and send the verdict."""
    conn.send(run_once(data, backend))


def _in_spawned_process(data: bytes, backend: str, timeout: float) -> tuple[str, str]:
    """Run :func:`run_once` in a ``multiprocessing`` spawn (compiled binaries)."""
    import multiprocessing  # here, not at the top: most processes never probe, and it costs start-up

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(data, backend, send), daemon=True)
    child.start()
    send.close()
    if not receive.poll(timeout):
        child.kill()
        child.join()
        return "timeout", f"{timeout:g} s"
    try:
        outcome, detail = receive.recv()
        child.join(5)
        return str(outcome), str(detail)
    except EOFError:
        child.join(5)
        code = child.exitcode or 0
        return "signal", signal.Signals(-code).name if code < 0 else f"exit status {code}"


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename; errors are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text.encode())
    except OSError:
        pass  # a read-only cache only costs a probe next time


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfedge.isolate BACKEND`` < model: one JSON line ``[outcome, detail]``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m tfedge.isolate BACKEND < model.tflite", file=sys.stderr)
        return 2
    data = sys.stdin.buffer.read()
    print(json.dumps(list(run_once(data, args[0]))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
