"""Stage "load": the source as the SavedModel the converter reads, ready for the mode.

:func:`~tfedge.converters.sources.load_source` turns what the user gave into a SavedModel
(or a float ``.tflite`` source). This stage then makes it convertible, before anything
reads it: the batch is fixed when ``--static-batch`` asks, or when recurrent loops need a
static TensorList shape (TFLiteConverter refuses a free one); for int8/int16x8, the loops
are unrolled (no calibrator handles them). Nothing after this stage changes the source.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

from .job import Job
from .recurrent import has_while_loop
from .sources import load_source

__all__ = ["load"]


@contextmanager
def load(job: Job) -> Iterator[Job]:
    """``job`` with its ``source`` loaded; temporary exports are deleted on exit.

    Measured (TF 2.21, litert-quantizer 0.11, a Keras 3 LSTM exported with model.export()):
    TensorFlow's calibrator dies with SIGSEGV on the WHILE loop (even calibrate-only, even the
    old quantizer), and litert-quantizer, which calibrates by running the float model in
    LiteRT, cannot read the loop body's tensors ("Tensor data is null") nor, past that, find
    statistics for the loop's arguments. A Keras source is unrolled by Keras; a SavedModel's
    graph has each loop's body inlined once per time step (see :mod:`.recurrent`).

    Raises:
        ConversionError: the source cannot be loaded, its batch fixed or its loops unrolled.
    """
    opts = job.options
    assert opts.quantize is not None
    with load_source(job.given) as src:
        if src.kind != "tflite":
            loops = has_while_loop(src.saved_model_dir)
            if loops and opts.quantize.needs_calibration:
                if src.keras_model is None:  # the graph's loops are unrolled with a static batch
                    src.with_static_batch(opts.static_batch or 1)
                src.unroll_recurrent()
                loops = has_while_loop(src.saved_model_dir)
            if opts.static_batch is not None or (loops and src.has_free_batch):
                src.with_static_batch(opts.static_batch or 1)
        elif opts.static_batch is not None:
            src.with_static_batch(opts.static_batch)  # refused with its one line
        yield job.but(source=src)
