"""The calibrating conversion in a worker process, where a native crash becomes an error message.

TensorFlow's calibrator runs the model in its own TFLite interpreter, and on some graphs it
dies with SIGSEGV (measured: a recurrent layer's WHILE loop, an all-NaN calibration set on a
small CNN): in the user's process that is ``Segmentation fault``, exit 139, nothing printed.
:func:`convert_in_child` runs ``TFLiteConverter.convert()`` for int8/int16x8 in a worker,
``python -m tfedge.converters._child``, started on first use and kept for the next
conversions of the process (``--quantize auto`` calibrates up to three times): each job is a
folder that carries the options (JSON) and the calibration samples (``.npz``), and gets the
model or TensorFlow's error text back. A worker that crashed is replaced on the next job, so
a process pays one more TensorFlow import for all its calibrating conversions, not one each.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Optional

import numpy as np

from tfedge.errors import ConversionError

from .calibration import Samples
from .config import ConvertOptions

__all__ = ["ChildFailed", "convert_in_child"]

#: Seconds a calibrating conversion may take before its worker is stopped.
CONVERSION_TIME_LIMIT = 3600.0


class ChildFailed(Exception):
    """The converter raised in the worker: ``text`` is its message and native output."""

    def __init__(self, text: str) -> None:
        super().__init__(text.splitlines()[0] if text.strip() else "no message")
        self.text = text


class _Worker:
    """The worker process: job folders in on its stdin, one line back per job on its stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfedge.converters._child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def run(self, job: Path, limit: float) -> Optional[int]:
        """Run one job; None when it finished, else the worker's exit status (it died or was stopped)."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(f"{job}\n")
            stdin.flush()
        except BrokenPipeError:
            return self._ended()
        ready, _, _ = select.select([stdout], [], [], limit)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            raise TimeoutError
        if stdout.readline().strip() == "done":
            return None
        return self._ended()

    def _ended(self) -> int:
        """The exit status of a worker that stopped mid-job."""
        return self.proc.wait()

    def close(self) -> None:
        """End the worker: it exits when its stdin closes."""
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_worker: Optional[_Worker] = None


def _close_worker() -> None:
    """At exit: let the worker go."""
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None


atexit.register(_close_worker)


def convert_in_child(saved_model_dir: str, opts: ConvertOptions, calib: Optional[Samples], label: str) -> bytes:
    """``TFLiteConverter.convert()`` on ``saved_model_dir`` for ``opts`` in the worker process.

    Raises:
        ChildFailed: the converter raised (its text, for the caller to translate).
        ConversionError: the worker died of a signal or did not finish.
    """
    global _worker
    assert opts.quantize is not None
    with tempfile.TemporaryDirectory(prefix="tfedge-calibrate-") as tmp:
        job = Path(tmp)
        options = {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(opts).items()}
        (job / "job.json").write_text(json.dumps({
            "saved_model": saved_model_dir, "options": options,
            "batch": calib.batch if calib is not None else 1, "origin": calib.origin if calib is not None else "",
        }))
        if calib is not None:
            np.savez(job / "calibration.npz", **dict(calib.arrays))
        if _worker is None or _worker.proc.poll() is not None:
            _worker = _Worker()
        try:
            status = _worker.run(job, CONVERSION_TIME_LIMIT)
        except TimeoutError:
            _worker = None
            raise ConversionError(
                f"Converting {label} to {opts.quantize.value} did not finish in {CONVERSION_TIME_LIMIT:g} s; nothing was written."
            ) from None
        if status is not None:
            _worker = None
        if status is not None and status < 0:
            name = signal.Signals(-status).name
            raise ConversionError(
                f"TensorFlow's calibrator crashed ({name}) converting {label} to {opts.quantize.value}; nothing was "
                "written. Check the calibration data looks like real inputs, or try --quantize dynamic or float16, "
                "or --engine litert."
            )
        if (job / "error.txt").is_file():
            raise ChildFailed((job / "error.txt").read_text())
        if status is not None or not (job / "model.tflite").is_file():
            raise ConversionError(
                f"The calibrating conversion of {label} stopped with exit status {status}; nothing was written. "
                "Rerun with --verbose."
            )
        return (job / "model.tflite").read_bytes()


def _run(job: Path) -> None:
    """One job: convert as it says; the model or the error text goes back in the job folder."""
    from . import quantize
    from ._tf import captured_native_output, tf
    from .config import resolve_options

    spec = json.loads((job / "job.json").read_text())
    fields = {f.name for f in dataclasses.fields(ConvertOptions)}
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["options"].items() if k in fields}
    opts = resolve_options(ConvertOptions(**given))
    calib = None
    if (job / "calibration.npz").is_file():
        with np.load(job / "calibration.npz", allow_pickle=False) as npz:
            calib = Samples({k: npz[k] for k in npz.files}, spec["origin"], spec["batch"])
    t = tf()
    with captured_native_output() as native:
        try:
            converter = t.lite.TFLiteConverter.from_saved_model(spec["saved_model"])
            quantize.configure(converter, opts, calib, native.stderr)
            content = bytes(converter.convert())
            error: Optional[BaseException] = None
        except Exception as exc:  # noqa: BLE001 - the parent translates whatever it was
            content, error = b"", exc
    if error is not None:
        (job / "error.txt").write_text(f"{error}\n{native.text}")
        return
    (job / "model.tflite").write_bytes(content)


def _serve(jobs: IO[str], replies: IO[str]) -> None:
    """Run each job folder named on ``jobs``; ``done`` on ``replies`` after each."""
    for line in jobs:
        if line.strip():
            _run(Path(line.strip()))
            replies.write("done\n")
            replies.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfedge.converters._child``: the worker (job folders on stdin)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args:
        print("usage: python -m tfedge.converters._child  (job folders on stdin)", file=sys.stderr)
        return 2
    # The replies keep the real stdout; anything else printed goes to stderr, never into the protocol.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _serve(sys.stdin, replies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
