"""converters: TensorFlow models to TFLite, quantized for the target, validated with numbers.

``convert(source, output, **options) -> ConversionResult`` is the whole API; the
``tfedge-convert`` command is a thin layer over it. TensorFlow is imported only when a
conversion starts.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 9):  # noqa: UP036 - pip installs the package on 3.8 for the runtime
    raise ImportError(
        "tfedge's converters (tfedge-convert) need Python 3.9 or newer, as TensorFlow 2.16+ does; "
        f"this is Python {sys.version_info[0]}.{sys.version_info[1]}. The runtime (import tfedge) works here: "
        "convert on a machine with Python 3.9-3.13 and copy the .tflite file."
    )

from .config import ConvertOptions, Engine, IOType, Quantize, Target
from .convert import convert
from .report import ConversionResult, OpUse, OutputMetrics, RuntimeCheck

__all__ = [
    "ConversionResult",
    "ConvertOptions",
    "Engine",
    "IOType",
    "OpUse",
    "OutputMetrics",
    "Quantize",
    "RuntimeCheck",
    "Target",
    "convert",
]
