"""The conversion as one job: what was asked, then what each stage made, in order.

``convert()`` passes a :class:`Job` through the stages, each a module of its own:

1. :mod:`.stage_check` ``precheck`` — the data files, before TensorFlow is imported;
2. :mod:`.stage_load` — the source as a SavedModel (batch fixed, loops unrolled when needed);
3. :mod:`.stage_check` ``check`` — the data read against the source's inputs: :class:`Data`;
4. :mod:`.stage_convert` — TensorFlow's converter: the model's bytes;
5. :mod:`.stage_quantize` — litert-quantizer, layers kept in float, the metadata;
6. :mod:`.stage_validate` — the report: the model run against the source, runtimes, budgets;
7. :mod:`.stage_write` — the file, only when every check passed.

Each stage reads the job and returns a new one with its own field set (the job is frozen):
the data goes one way, and no stage goes back to one before it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .calibration import Samples
from .config import ConvertOptions
from .metadata import ModelInfo
from .report import ConversionResult, KeptLayer
from .sources import Source

__all__ = ["Data", "Job"]


@dataclass(frozen=True)
class Data:
    """The checked calibration and evaluation data (the check stage's output).

    Attributes:
        calibration: Samples to calibrate with (None when none were given).
        evaluation: Samples to validate on (given, held out of calibration, or None).
        labels: Class ids for ``evaluation`` (``--eval-labels``), else None.
        warnings: What the report says about the data (too few samples).
    """

    calibration: Optional[Samples]
    evaluation: Optional[Samples]
    labels: Optional[np.ndarray]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """One conversion, as the stages fill it in.

    Attributes:
        given: The source as the user gave it (a path, a Keras model, a ``tf.function``).
        options: The resolved options.
        output: Where the model is to be written.
        calibration: The calibration data as given (a path, an array, ...).
        eval_data: The evaluation data as given.
        eval_labels: The evaluation labels as given.
        info: The TFLite Metadata to write, when labels or metadata were given.
        source: The loaded source (load stage): a ``Source``, or a ``TfliteSource``.
        data: The checked data (check stage).
        content: The model's bytes (convert stage, then quantize stage).
        kept_float: Layers left in float32 by ``--keep-float`` (quantize stage).
        convert_seconds: Seconds converting and quantizing took.
        result: The report (validate stage; write stage sets its output).
    """

    given: Any
    options: ConvertOptions
    output: Path
    calibration: Any = None
    eval_data: Any = None
    eval_labels: Any = None
    info: Optional[ModelInfo] = None
    source: Optional[Source] = None
    data: Optional[Data] = None
    content: bytes = b""
    kept_float: tuple[KeptLayer, ...] = ()
    convert_seconds: float = 0.0
    result: Optional[ConversionResult] = None

    def but(self, **changes: Any) -> Job:
        """A copy with ``changes`` (what a stage made)."""
        return dataclasses.replace(self, **changes)
