"""Stage "check data": the calibration and evaluation data, checked and split.

:func:`precheck` runs first, before the source is loaded (so before TensorFlow is
imported): missing files and non-finite values fail in a second. :func:`check` runs after
the load stage, when the source's inputs are known: it reads the data against them, checks
it again (iterables and images are only read here), splits held-out samples off the
calibration data, and reads the labels.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Optional

from tfedge.errors import ConversionError

from .calibration import Samples, load_labels, load_samples
from .config import DEFAULT_EVAL_SAMPLES, ConvertOptions
from .datacheck import check_finite, precheck as precheck_data, too_few_warning
from .job import Data, Job

__all__ = ["check", "precheck"]


def precheck(job: Job) -> Job:
    """The data as far as it can be checked without the model (no TensorFlow import).

    Raises:
        ConversionError: a missing or unreadable file, or a NaN or inf in a sample.
    """
    precheck_data(job.calibration, "Calibration data")
    precheck_data(job.eval_data, "Evaluation data")
    if isinstance(job.eval_labels, (str, os.PathLike)) and not Path(job.eval_labels).is_file():
        raise ConversionError(f"Evaluation labels {str(job.eval_labels)!r} do not exist.")
    return job


def check(job: Job) -> Job:
    """The data read for the loaded source's inputs, checked and split: ``job.data``.

    Raises:
        ConversionError: bad data, calibration missing for a mode that needs it, labels
            without evaluation data.
    """
    opts, src = job.options, job.source
    assert opts.quantize is not None and src is not None
    settings: dict[str, Any] = {"normalization": opts.normalization, "mean": opts.mean, "std": opts.std, "progress": opts.progress}
    calib: Optional[Samples] = None
    if job.calibration is not None:
        spare = held_out_limit(opts) if opts.validate and job.eval_data is None else 0  # room for a held-out part
        calib = load_samples(job.calibration, src.inputs, limit=opts.calibration_samples + spare, **settings)
        check_finite(calib.arrays, "Calibration data")
    evalset: Optional[Samples] = None
    if job.eval_data is not None:
        evalset = load_samples(job.eval_data, src.inputs, limit=opts.eval_samples or sys.maxsize, what="Evaluation data", **settings)
        check_finite(evalset.arrays, "Evaluation data")
        evalset = Samples(evalset.arrays, f"--eval-data {evalset.origin}")
    warnings: list[str] = []
    if calib is not None:
        calib, held_out = _split(calib, opts, evalset is None and opts.validate)
        evalset = evalset or held_out
        few = too_few_warning(len(calib), opts.quantize.value) if opts.quantize.needs_calibration else None
        if few:
            warnings.append(few)
    if opts.quantize.needs_calibration and calib is None:
        raise ConversionError(
            f"--quantize {opts.quantize.value} needs calibration data: pass --calibration with a .npy, "
            ".npz or image directory (about 100-500 samples)."
        )
    labels = None
    if job.eval_labels is not None:
        if evalset is None or "--eval-data" not in evalset.origin:
            raise ConversionError("--eval-labels needs --eval-data (one label per evaluation sample).")
        labels = load_labels(job.eval_labels, len(evalset))
    batch = opts.static_batch or 1
    if batch > 1:  # a model with a static batch N takes N samples at a time
        calib = dataclasses.replace(calib, batch=batch) if calib is not None else None
        evalset = dataclasses.replace(evalset, batch=batch) if evalset is not None else None
    return job.but(data=Data(calib, evalset, labels, tuple(warnings)))


def held_out_limit(opts: ConvertOptions) -> int:
    """How many samples to validate when no --eval-data is given (--eval-samples, else the default)."""
    return opts.eval_samples or DEFAULT_EVAL_SAMPLES


def _split(calib: Samples, opts: ConvertOptions, hold_out: bool) -> tuple[Samples, Optional[Samples]]:
    """Calibration samples, and held-out evaluation samples taken from their end."""
    assert opts.quantize is not None
    n = len(calib)
    if not hold_out:
        return calib.part(0, opts.calibration_samples), None
    if not opts.quantize.needs_calibration:
        # Nothing is calibrated, so every sample is held out.
        return calib, calib.part(0, held_out_limit(opts), f"calibration data ({calib.origin}), none used to calibrate")
    if n < 2:  # nothing to spare: validated on the sample it was calibrated on, and the report says so
        return calib, calib.part(0, None, f"the only calibration sample ({calib.origin}), also used to calibrate")
    held = min(held_out_limit(opts), max(1, n // 5))
    return (
        calib.part(0, min(n - held, opts.calibration_samples)),
        calib.part(n - held, None, f"the last {held} calibration samples ({calib.origin}), held out of calibration"),
    )
