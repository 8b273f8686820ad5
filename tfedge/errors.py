"""The exceptions tfedge raises.

Every error tfedge raises derives from :class:`TfedgeError`, and each class also
derives from the standard exception an app would already catch, so
``except ValueError`` code written against tflite_runtime keeps working::

    TfedgeError(Exception)
    ├─ BackendNotFoundError(TfedgeError, ImportError)   no usable TFLite backend
    ├─ ModelError(TfedgeError, ValueError)               missing, corrupt, truncated or
    │                                                    unsupported model file
    ├─ InputError(TfedgeError, ValueError)               wrong input name, shape or dtype
    ├─ SignatureError(TfedgeError, KeyError, ValueError) unknown signature (the backends
    │                                                    raise ValueError, older tfedge KeyError)
    ├─ DelegateError(TfedgeError, RuntimeError)          a delegate failed to load or apply
    └─ InvokeError(TfedgeError, RuntimeError)            the model failed while running

    ConversionError(TfedgeError)                         (converters) bad source, calibration
                                                         data, unsupported op, failed validation

Backend exceptions are converted at the boundary (``raise ... from exc``), so the
original is always available as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "BackendNotFoundError",
    "ConversionError",
    "DelegateError",
    "InputError",
    "InvokeError",
    "ModelError",
    "SignatureError",
    "TfedgeError",
]


class TfedgeError(Exception):
    """Base class of every error tfedge raises."""


class BackendNotFoundError(TfedgeError, ImportError):
    """No TFLite backend could be imported, or the one asked for is missing."""


class ModelError(TfedgeError, ValueError):
    """The model file is missing, corrupt, truncated, or needs what the backend lacks."""


class InputError(TfedgeError, ValueError):
    """An input has the wrong name, shape or dtype."""


class SignatureError(TfedgeError, KeyError, ValueError):
    """A signature name that the model does not have.

    Both a ``KeyError`` (a name not found) and a ``ValueError``, which is what the backends'
    ``get_signature_runner`` raises: drop-in code catching either keeps working.
    """

    def __str__(self) -> str:
        # KeyError would wrap the message in quotes; keep it readable.
        return str(self.args[0]) if self.args else ""


class DelegateError(TfedgeError, RuntimeError):
    """A delegate could not be loaded or applied to the model."""


class InvokeError(TfedgeError, RuntimeError):
    """The model failed while running."""


class ConversionError(TfedgeError):
    """Converting a TensorFlow model to TFLite failed (raised by ``converters``)."""


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of an exception's message (backends add node details after it).

    The exception's type name when it has no message; ``with_type`` puts it in front
    (``"ImportError: ..."``), for errors whose type says what failed.
    """
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if with_type:
        return f"{type(exc).__name__}: {line}".rstrip(": ") if line else type(exc).__name__
    return line or type(exc).__name__
