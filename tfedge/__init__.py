"""tfedge: run TensorFlow Lite models on edge devices with one small, safe runtime.

``from tfedge import Interpreter`` is a drop-in for tflite_runtime's Interpreter, with
``Interpreter.run()`` as the fast call by name. Importing tfedge imports no backend:
that happens when the first Interpreter is created.
"""

from __future__ import annotations

from ._version import __version__
from .embedded import embedded_model, embedded_models
from .errors import (
    BackendNotFoundError,
    ConversionError,
    DelegateError,
    InputError,
    InvokeError,
    ModelError,
    SignatureError,
    TfedgeError,
)
from .delegates import DelegateFallbackWarning, DelegateSpec, load_delegate
from .interpreter import Interpreter, SignatureRunner, TensorSpec
from .pool import InterpreterPool
from .quant import QuantParams, dequantize, quantize

__all__ = [
    "BackendNotFoundError",
    "ConversionError",
    "DelegateError",
    "DelegateFallbackWarning",
    "DelegateSpec",
    "InputError",
    "Interpreter",
    "InterpreterPool",
    "InvokeError",
    "ModelError",
    "QuantParams",
    "SignatureError",
    "SignatureRunner",
    "TensorSpec",
    "TfedgeError",
    "__version__",
    "dequantize",
    "embedded_model",
    "embedded_models",
    "load_delegate",
    "quantize",
]
