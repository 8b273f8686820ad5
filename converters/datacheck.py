"""Checks of calibration and evaluation data, for the check stage (:mod:`.stage_check`), before TensorFlow starts.

:func:`precheck` runs before the source is loaded (so before TensorFlow is imported): a
missing file, an unreadable one, or non-finite values in a ``.npy``/``.npz`` file or a
given array are reported in a second, not after TensorFlow's import. :func:`check_finite`
runs again on whatever :func:`~tfedge.converters.calibration.load_samples` made (iterables,
Ray Datasets, images), and :func:`too_few_warning` says when a calibration set is too small.

One NaN or inf in a calibration sample poisons the activation ranges TensorFlow measures:
measured, one NaN in 40 samples gave a model with cosine 0.33 against TensorFlow, and an
all-NaN set crashed TensorFlow's calibrator (SIGSEGV) on a small CNN.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfedge.errors import ConversionError

__all__ = ["MIN_CALIBRATION_SAMPLES", "check_finite", "precheck", "too_few_warning"]

#: Fewer calibration samples than this get a warning (the TFLite docs advise about 100-500).
MIN_CALIBRATION_SAMPLES = 100


def precheck(data: Any, what: str) -> None:
    """Check ``data`` as far as it can be without the model: exists, readable, finite.

    Paths to ``.npy``/``.npz`` files, arrays and mappings of arrays are read and checked;
    image directories and iterables are checked once read (:func:`check_finite`).

    Raises:
        ConversionError: a missing or unreadable file, or a NaN or inf in a sample.
    """
    if data is None:
        return
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise ConversionError(f"{what} {str(path)!r} does not exist.")
        if path.suffix == ".npy" and path.is_file():
            array = _load(path, what, mapped=True)
            check_finite({"": array}, f"{what} {str(path)!r}")
        elif path.suffix == ".npz" and path.is_file():
            with _load(path, what) as npz:
                for key in npz.files:
                    check_finite({key: npz[key]}, what)
    elif isinstance(data, np.ndarray):
        check_finite({"": data}, what)
    elif isinstance(data, Mapping):
        check_finite({str(k): v for k, v in data.items() if isinstance(v, np.ndarray)}, what)


def _load(path: Path, what: str, *, mapped: bool = False) -> Any:
    """np.load without pickles (memory-mapped: ``mapped``); ConversionError on a bad file."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mapped else None)
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{what} {str(path)!r} cannot be read by numpy: {exc}") from exc


def check_finite(arrays: Mapping[str, np.ndarray], what: str) -> None:
    """ConversionError naming the first sample (and input) holding a NaN or inf.

    Args:
        arrays: ``{input name: array (samples, ...)}``; the name ``""`` for an array whose
            input is not known yet (a ``.npy`` file before the model is read).
        what: How the message names the data.
    """
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in "fc" or value.ndim == 0 or value.shape[0] == 0:
            continue
        ok = np.isfinite(value.reshape(value.shape[0], -1)).all(axis=1)
        if ok.all():
            continue
        bad = np.flatnonzero(~ok)
        first = int(bad[0])
        kind = "NaN" if np.isnan(value[first]).any() else "inf"
        where = f" for input {name!r}" if name else ""
        raise ConversionError(
            f"{what}{where} has {kind} in sample {first} ({len(bad)} of {value.shape[0]} samples hold NaN or inf): "
            "calibration and validation need finite values. Drop or fix those samples "
            "(keep x[np.isfinite(x).reshape(len(x), -1).all(axis=1)])."
        )


def too_few_warning(count: int, mode: str) -> Optional[str]:
    """The report's warning for a calibration set too small to measure ranges on, else None."""
    if count >= MIN_CALIBRATION_SAMPLES:
        return None
    return (
        f"only {count} calibration sample{'s' if count != 1 else ''} for --quantize {mode}: activation "
        f"ranges measured on so few may not cover real inputs; give at least {MIN_CALIBRATION_SAMPLES} "
        "representative samples (200 are used by default)."
    )
