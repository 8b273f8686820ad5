"""The calibrating conversion in a child process, where a native crash becomes an error message.

TensorFlow's calibrator runs the model in its own TFLite interpreter, and on some graphs it
dies with SIGSEGV (measured: a recurrent layer's WHILE loop, an all-NaN calibration set on a
small CNN): in the user's process that is ``Segmentation fault``, exit 139, nothing printed.
:func:`convert_in_child` runs ``TFLiteConverter.convert()`` for int8/int16x8 in
``python -m tfedge.converters._child JOB`` instead; the job folder carries the options (JSON)
and the calibration samples (``.npz``), and gets the model or TensorFlow's error text back.
It costs one more TensorFlow import (a few seconds) per calibrating conversion.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfedge.errors import ConversionError

from .calibration import Samples
from .config import ConvertOptions

__all__ = ["ChildFailed", "convert_in_child"]

#: Seconds a calibrating conversion may take before its child is stopped.
CONVERSION_TIME_LIMIT = 3600.0


class ChildFailed(Exception):
    """The converter raised in the child: ``text`` is its message and native output."""

    def __init__(self, text: str) -> None:
        super().__init__(text.splitlines()[0] if text.strip() else "no message")
        self.text = text


def convert_in_child(saved_model_dir: str, opts: ConvertOptions, calib: Optional[Samples], label: str) -> bytes:
    """``TFLiteConverter.convert()`` on ``saved_model_dir`` for ``opts`` in a child process.

    Raises:
        ChildFailed: the converter raised (its text, for the caller to translate).
        ConversionError: the child died of a signal or did not finish.
    """
    with tempfile.TemporaryDirectory(prefix="tfedge-calibrate-") as tmp:
        job = Path(tmp)
        options = {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(opts).items()}
        (job / "job.json").write_text(json.dumps({
            "saved_model": saved_model_dir, "options": options,
            "batch": calib.batch if calib is not None else 1, "origin": calib.origin if calib is not None else "",
        }))
        if calib is not None:
            np.savez(job / "calibration.npz", **dict(calib.arrays))
        try:
            proc = subprocess.run([sys.executable, "-m", "tfedge.converters._child", str(job)],
                                  timeout=CONVERSION_TIME_LIMIT, check=False)
        except subprocess.TimeoutExpired:
            raise ConversionError(
                f"Converting {label} to {opts.quantize.value} did not finish in {CONVERSION_TIME_LIMIT:g} s; nothing was written."  # type: ignore[union-attr]
            ) from None
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            raise ConversionError(
                f"TensorFlow's calibrator crashed ({name}) converting {label} to {opts.quantize.value}; nothing was "  # type: ignore[union-attr]
                "written. Check the calibration data looks like real inputs, or try --quantize dynamic or float16, "
                "or --engine litert."
            )
        if (job / "error.txt").is_file():
            raise ChildFailed((job / "error.txt").read_text())
        if proc.returncode != 0 or not (job / "model.tflite").is_file():
            raise ConversionError(
                f"The calibrating conversion of {label} stopped with exit status {proc.returncode}; nothing was written. "
                "Rerun with --verbose."
            )
        return (job / "model.tflite").read_bytes()


def _run(job: Path) -> None:
    """The child: convert as the job says; the model or the error text goes back in the job folder."""
    from . import quantize
    from ._tf import captured_native_output, tf

    spec = json.loads((job / "job.json").read_text())
    fields = {f.name for f in dataclasses.fields(ConvertOptions)}
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["options"].items() if k in fields}
    opts = ConvertOptions(**given)
    from .config import resolve_options

    opts = resolve_options(opts)
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfedge.converters._child JOB``."""
    args: Any = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m tfedge.converters._child JOB_DIR", file=sys.stderr)
        return 2
    _run(Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
