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

TensorFlow's quantization debugger (``--keep-float``, ``--debug-quantization``) calibrates
too: :class:`DebuggerInWorker` opens it in the worker (job ``debug-open``: calibrate, measure
the layers), which keeps it for the ``debug-model`` jobs (a denylist in, a model out) until
``debug-close``; the caller scores the models. Every job goes through :func:`_job`, so a crash
in any of them is the same one-line ``ConversionError``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Optional

import numpy as np

from tfedge.errors import ConversionError

from .calibration import Samples
from .config import ConvertOptions

if TYPE_CHECKING:
    from .selective import LayerError

__all__ = ["ChildFailed", "DebuggerInWorker", "convert_in_child"]

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


@contextlib.contextmanager
def _job(spec: dict[str, Any], calib: Optional[Samples], doing: str, advice: str) -> Iterator[Path]:
    """Run one job in the worker; its folder, with what the job wrote, while the block runs.

    Args:
        spec: The job's ``job.json`` (``kind`` and what that kind reads).
        calib: Calibration samples the job reads (``calibration.npz``), if any.
        doing: What the job does, for the errors: "converting Source 'x' to int8".
        advice: What to try when TensorFlow crashed doing it.

    Raises:
        ChildFailed: TensorFlow raised in the worker (its text, for the caller to translate).
        ConversionError: the worker died of a signal, stopped, or did not finish.
    """
    global _worker
    with tempfile.TemporaryDirectory(prefix="tfedge-calibrate-") as tmp:
        job = Path(tmp)
        (job / "job.json").write_text(json.dumps(spec))
        if calib is not None:
            np.savez(job / "calibration.npz", **dict(calib.arrays))
        if _worker is None or _worker.proc.poll() is not None:
            _worker = _Worker()
        try:
            status = _worker.run(job, CONVERSION_TIME_LIMIT)
        except TimeoutError:
            _worker = None
            raise ConversionError(
                f"{doing[:1].upper()}{doing[1:]} did not finish in {CONVERSION_TIME_LIMIT:g} s; nothing was written."
            ) from None
        if status is not None:
            _worker = None
        if status is not None and status < 0:
            name = signal.Signals(-status).name
            raise ConversionError(f"TensorFlow's calibrator crashed ({name}) {doing}; nothing was written. {advice}")
        if (job / "error.txt").is_file():
            raise ChildFailed((job / "error.txt").read_text())
        if status is not None or not (job / "done").is_file():
            raise ConversionError(
                f"{doing[:1].upper()}{doing[1:]} stopped the worker with exit status {status}; nothing was written. "
                "Rerun with --verbose."
            )
        yield job


def convert_in_child(saved_model_dir: str, opts: ConvertOptions, calib: Optional[Samples], label: str) -> bytes:
    """``TFLiteConverter.convert()`` on ``saved_model_dir`` for ``opts`` in the worker process.

    Raises:
        ChildFailed: the converter raised (its text, for the caller to translate).
        ConversionError: the worker died of a signal or did not finish.
    """
    assert opts.quantize is not None
    spec = {"kind": "convert", **_spec(saved_model_dir, opts, calib)}
    advice = "Check the calibration data looks like real inputs, or try --quantize dynamic or float16, or --engine litert."
    with _job(spec, calib, f"converting {label} to {opts.quantize.value}", advice) as job:
        return (job / "model.tflite").read_bytes()


def _spec(saved_model_dir: str, opts: ConvertOptions, calib: Optional[Samples]) -> dict[str, Any]:
    """What a job that configures a converter reads, besides the calibration samples."""
    options = {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(opts).items()}
    return {
        "saved_model": saved_model_dir, "options": options,
        "batch": calib.batch if calib is not None else 1, "origin": calib.origin if calib is not None else "",
    }


class DebuggerInWorker:
    """TensorFlow's quantization debugger for ``--keep-float`` / ``--debug-quantization``, in the worker.

    The debugger calibrates (where TensorFlow's calibrator can crash), so it lives in the worker:
    opening it calibrates and measures the layers there, :meth:`model` asks it for a model with
    layers left in float, and the models are scored in this process. Same interface as
    :class:`.selective._Debugger`; use it as a context manager (leaving it frees the session).
    """

    _opened = 0

    def __init__(self, saved_model_dir: str, opts: ConvertOptions, calib: Samples, label: str, flag: str) -> None:
        """Calibrate and measure the layers of ``saved_model_dir`` in the worker.

        Args:
            saved_model_dir: The SavedModel.
            opts: The options (int8); the converter is configured from them as for a conversion.
            calib: The calibration samples (the debugger measures on them).
            label: The source, for the errors.
            flag: The option asking for it (``--keep-float``), for the errors.

        Raises:
            ChildFailed: TensorFlow raised in the worker.
            ConversionError: the worker crashed or did not finish.
        """
        DebuggerInWorker._opened += 1
        self.session = f"{os.getpid()}-{DebuggerInWorker._opened}"
        self._label, self._flag = label, flag
        self._advice = f"Check the calibration data looks like real inputs, or convert without {flag}."
        spec = {"kind": "debug-open", "session": self.session, **_spec(saved_model_dir, opts, calib)}
        with _job(spec, calib, f"measuring the layers of {label} for {flag}", self._advice) as job:
            opened = json.loads((job / "layers.json").read_text())
        from .selective import LayerError

        #: The process the debugger runs in (the worker's).
        self.pid: int = opened["pid"]
        self._layers = tuple(LayerError(**row) for row in opened["layers"])

    def layers(self) -> tuple[LayerError, ...]:
        """Per-layer statistics, most sensitive first."""
        return self._layers

    def model(self, denylisted: Sequence[str]) -> bytes:
        """The quantized model with ``denylisted`` layers (output tensor names) left in float."""
        spec = {"kind": "debug-model", "session": self.session, "denylisted": list(denylisted)}
        doing = f"quantizing {self._label} with {len(denylisted)} layers in float for {self._flag}"
        with _job(spec, None, doing, self._advice) as job:
            return (job / "model.tflite").read_bytes()

    def close(self) -> None:
        """Free the session in the worker (nothing to do if the worker is gone)."""
        if _worker is not None and _worker.proc.poll() is None:
            with _job({"kind": "debug-close", "session": self.session}, None, f"closing the debugger of {self._label}", ""):
                pass

    def __enter__(self) -> DebuggerInWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configured(job: Path, spec: dict[str, Any], stderr: IO[str]) -> tuple[Any, Optional[Samples]]:
    """The TFLiteConverter a job describes, configured as its options say, and its calibration samples."""
    from . import quantize
    from ._tf import tf
    from .config import resolve_options

    fields = {f.name for f in dataclasses.fields(ConvertOptions)}
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["options"].items() if k in fields}
    opts = resolve_options(ConvertOptions(**given))
    calib = None
    if (job / "calibration.npz").is_file():
        with np.load(job / "calibration.npz", allow_pickle=False) as npz:
            calib = Samples({k: npz[k] for k in npz.files}, spec["origin"], spec["batch"])
    converter = tf().lite.TFLiteConverter.from_saved_model(spec["saved_model"])
    quantize.configure(converter, opts, calib, stderr)
    return converter, calib


def _run(job: Path, sessions: dict[str, Any]) -> None:
    """One job, as its ``kind`` says; its outputs or TensorFlow's error text go back in the job folder.

    ``convert``: ``model.tflite``. ``debug-open``: a debugger session kept in ``sessions``,
    ``layers.json`` (its layers and this pid). ``debug-model``: ``model.tflite`` with the
    ``denylisted`` layers in float. ``debug-close``: the session dropped. Then ``done``.
    """
    from ._tf import captured_native_output

    spec = json.loads((job / "job.json").read_text())
    kind = spec.get("kind", "convert")
    with captured_native_output() as native:
        try:
            if kind == "convert":
                converter, _ = _configured(job, spec, native.stderr)
                (job / "model.tflite").write_bytes(bytes(converter.convert()))
            elif kind == "debug-open":
                from .selective import _Debugger

                converter, calib = _configured(job, spec, native.stderr)
                assert calib is not None
                debugger = _Debugger(converter, calib)
                layers = [dataclasses.asdict(r) for r in debugger.layers()]
                sessions[spec["session"]] = debugger
                (job / "layers.json").write_text(json.dumps({"pid": os.getpid(), "layers": layers}))
            elif kind == "debug-model":
                if spec["session"] not in sessions:
                    raise RuntimeError(f"No quantization debugger session {spec['session']!r} in the worker.")
                (job / "model.tflite").write_bytes(sessions[spec["session"]].model(spec["denylisted"]))
            elif kind == "debug-close":
                sessions.pop(spec["session"], None)
            else:
                raise RuntimeError(f"Unknown job kind {kind!r}.")
            error: Optional[BaseException] = None
        except Exception as exc:  # noqa: BLE001 - the parent translates whatever it was
            error = exc
    if error is not None:
        (job / "error.txt").write_text(f"{error}\n{native.text}")
        return
    (job / "done").write_text("")


def _serve(jobs: IO[str], replies: IO[str]) -> None:
    """Run each job folder named on ``jobs``; ``done`` on ``replies`` after each."""
    sessions: dict[str, Any] = {}  # the open quantization debuggers, by session
    for line in jobs:
        if line.strip():
            _run(Path(line.strip()), sessions)
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
