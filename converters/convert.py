"""``convert()``: source to .tflite, quantized as asked, validated, written atomically.

The conversion is one :class:`~tfedge.converters.job.Job` passed through the stages in
order — check the data files, load the source, check the data, convert, quantize, validate,
write — each a module of its own (``stage_*.py``); see :mod:`tfedge.converters.job`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Optional

from tfedge.errors import ConversionError, first_line

from .config import ConvertOptions, resolve_options
from .job import Job
from .metadata import model_info
from .report import ConversionResult
from .stage_check import check, precheck
from .stage_convert import convert_model
from .stage_load import load
from .stage_quantize import quantize
from .stage_validate import validate
from .stage_write import write

__all__ = ["check_output_path", "convert"]

_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(ConvertOptions))


def convert(
    source: Any,
    output: str | os.PathLike[str],
    *,
    calibration: Any = None,
    eval_data: Any = None,
    eval_labels: Any = None,
    options: Optional[ConvertOptions] = None,
    labels: Any = None,
    metadata: Optional[dict[str, str]] = None,
    **settings: Any,
) -> ConversionResult:
    """Convert a TensorFlow model to a .tflite file and validate it.

    Args:
        source: A SavedModel directory, a ``.keras`` / ``.h5`` file, a Keras model or a
            ``tf.function`` with an input signature.
        output: The .tflite file to write. Its directory must exist; an existing file
            is replaced only with ``overwrite=True``.
        calibration: Calibration samples: a ``.npy`` / ``.npz`` path, an image
            directory, an array, a mapping by input name, or any iterable of samples.
        eval_data: Held-out samples for the report (same forms). Default: a part of
            the calibration data, else seeded random inputs.
        eval_labels: Integer class ids for ``eval_data`` (a ``.npy`` path or an array).
        options: A :class:`ConvertOptions`; ``settings`` override its fields.
        labels: Class labels (a file with one per line, or a sequence) written into the
            model's standard TFLite Metadata, packed as ``labels.txt`` for the output
            with one class per label; ``mean``/``std``, when set, go in as the input's
            normalization.
        metadata: ``name``, ``description``, ``version``, ``author``, ``license`` for
            the metadata.
        **settings: Any :class:`ConvertOptions` field by name, e.g. ``quantize="int8"``.

    Returns:
        The report. The file is written only when every check passed.

    Raises:
        ConversionError: bad source, calibration data or options, unsupported ops, a
            required runtime that cannot run the model, or a broken accuracy budget
            (then ``exc.result`` holds the report).
    """
    if "batch" in settings:  # the short name the CLI's --batch uses
        settings["static_batch"] = settings.pop("batch")
    unknown = sorted(set(settings) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(f"Unknown option(s) {', '.join(unknown)}. Available: {', '.join(_OPTION_NAMES)}.")
    opts = resolve_options(dataclasses.replace(options or ConvertOptions(), **settings))
    job = Job(
        given=source,
        options=opts,
        output=check_output_path(output, overwrite=opts.overwrite),
        calibration=calibration,
        eval_data=eval_data,
        eval_labels=eval_labels,
        info=model_info(labels, metadata, opts.mean, opts.std),
    )
    job = precheck(job)  # before the load stage imports TensorFlow (seconds)
    try:
        with load(job) as loaded:
            job = check(loaded)
            started = time.perf_counter()
            job = quantize(convert_model(job))
            job = write(validate(job.but(convert_seconds=time.perf_counter() - started)))
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises anything; the user gets one line
        raise _unexpected(exc) from exc
    assert job.result is not None
    return job.result


def _unexpected(exc: BaseException) -> ConversionError:
    """A ConversionError for a failure nothing translated; the traceback goes to ``--verbose``."""
    import traceback

    return ConversionError(
        f"The conversion failed unexpectedly ({first_line(exc, with_type=True)}); nothing was written. "
        "Rerun with --verbose for the details and report it to tfedge.",
        converter_text="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


def check_output_path(output: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """The output path, after checking its directory exists and it may be written.

    Raises:
        ConversionError: missing directory, a directory as output, or an existing file.
    """
    path = Path(output)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConversionError(f"Output directory {str(parent)!r} does not exist. Create it first or choose another output path.")
    if path.is_dir():
        raise ConversionError(f"Output {str(path)!r} is a directory; give a file name such as {str(path / 'model.tflite')!r}.")
    if path.exists() and not overwrite:
        raise ConversionError(f"Output {str(path)!r} already exists. Pass --overwrite (overwrite=True) to replace it.")
    return path
