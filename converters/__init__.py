"""converters: TensorFlow models to TFLite, quantized for the target, validated with numbers.

``convert(source, output, **options) -> ConversionResult`` is the whole API; the
``tfedge-convert`` command is a thin layer over it. TensorFlow is imported only when a
conversion starts.
"""

from __future__ import annotations

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
