"""The one error table: what a backend raised, at which stage, becomes which tfedge error.

:func:`translate` turns whatever a backend raised into the tfedge error an app catches,
with the backend's own exception chained as ``__cause__``; :func:`mapped` does the same
around a block.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

from ..errors import InputError, InvokeError, ModelError, TfedgeError, first_line

if TYPE_CHECKING:
    from ._base import Backend

__all__ = ["BACKEND_ERRORS", "Stage", "kernel_message", "mapped", "translate"]

#: How a backend ends a kernel's message: glued to it, with no space (``...out of boundsNode number 3``).
_NODE_FAILED = re.compile(r"\s*Node number (\d+) \(([^)]*)\) failed to (invoke|prepare)\.?")
#: A kernel's source location in front of its message (``tensorflow/lite/kernels/reshape.cc:92 ``).
_SOURCE = re.compile(r"^\S+\.(?:cc|h):\d+\s+")
#: The XNNPACK delegate's messages end so, and the backends glue the next one on
#: (``... in XNNPACK delegateunsupported datatype ...``).
_GLUED = re.compile(r"(?<=in XNNPACK delegate)(?=\S)")


def kernel_message(exc: BaseException) -> str:
    """The backend's first line, readable: ``gather index out of bounds (node 3, GATHER)``.

    The backends glue a kernel's message to ``Node number N (OP) failed to invoke.``
    (or ``prepare``), and one XNNPACK message to the next, and may put the kernel's
    source file in front; other messages are left as they are.
    """
    line = _GLUED.sub("; ", first_line(exc))
    match = _NODE_FAILED.search(line)
    if match is None:
        return line
    message = _SOURCE.sub("", line[:match.start()]).strip().rstrip(".")
    node, op, step = match.groups()
    return f"{message} (node {node}, {op})" if message else f"node {node} ({op}) failed to {step}"

class Stage(str, Enum):
    """Where a backend call failed; it decides which tfedge error the failure becomes."""

    LOAD = "load"  # building the interpreter from the model's bytes
    ALLOCATE = "allocate"  # allocating tensors at load, at the model's own shapes
    RESIZE = "resize"  # resizing inputs to an app's arrays and allocating again
    SET = "set"  # copying an input in
    INVOKE = "invoke"  # running the model
    GET = "get"  # copying an output out


_Builder = Callable[["re.Match[str]", "_Context"], TfedgeError]


@dataclass(frozen=True)
class _Context:
    """What a message needs besides the backend's own text."""

    backend: Backend
    source: str
    summary: Any
    name: str
    first: str


def _flex(match: re.Match[str], ctx: _Context) -> TfedgeError:
    flex = getattr(ctx.summary, "flex_ops", ())
    named = f" ({', '.join(flex)})" if flex else ""
    return ModelError(
        f"{ctx.source} uses Select TensorFlow (flex) ops{named}, which {ctx.backend.name} cannot run. "
        "Convert the model without Select TF ops (tfedge-convert refuses them unless "
        "--allow-select-tf-ops), or run it with a TFLite runtime built with the Flex delegate."
    )


def _custom(match: re.Match[str], ctx: _Context) -> TfedgeError:
    ops = sorted(set(_CUSTOM.findall(match.string)))
    return ModelError(
        f"{ctx.source} uses custom op(s) {', '.join(ops)} that {ctx.backend.name} does not have. "
        "Register them: Interpreter(model, custom_op_registerers=[SYMBOL_NAME or function]), "
        "or convert the model with builtin ops only."
    )


def _op_version(match: re.Match[str], ctx: _Context) -> TfedgeError:
    op, version = match.groups()
    return ModelError(
        f"{ctx.source} needs {op} version {version}, newer than {ctx.backend.label} "
        "knows. Use a newer runtime (pip install \"tfedge[litert]\"), or convert with a "
        "TensorFlow release that matches the runtime."
    )


def _op_code(match: re.Match[str], ctx: _Context) -> TfedgeError:
    return ModelError(
        f"{ctx.source} uses builtin operator {match.group(1)}, which {ctx.backend.label} does not "
        "know: the model is newer than the runtime. Use a newer runtime (pip install "
        "\"tfedge[litert]\"), or convert with a TensorFlow release that matches the runtime."
    )


def _index_out_of_bounds(match: re.Match[str], ctx: _Context) -> TfedgeError:
    return InvokeError(
        f"{ctx.name or 'The model failed while running'}: {ctx.first}. An input holds an index outside the "
        "table the model looks it up in (a token or class id at or above the vocabulary's size, or a "
        "negative one): check the values of the model's integer inputs."
    )


_CUSTOM = re.compile(r"unresolved custom op: ([^.\s]+)")
#: The one table: a backend message pattern, the stages it applies to, and its error.
_RULES: tuple[tuple[re.Pattern[str], frozenset[Stage], _Builder], ...] = (
    (re.compile(r"Select TensorFlow op\(s\)"), frozenset(Stage), _flex),
    (_CUSTOM, frozenset(Stage), _custom),
    (re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'"), frozenset(Stage), _op_version),
    (re.compile(r"Op builtin_code out of range: (\d+)"), frozenset(Stage), _op_code),
    # GATHER's (and GATHER_ND's) message for an index beyond the looked-up axis.
    (re.compile(r"index out of bounds", re.IGNORECASE), frozenset({Stage.INVOKE}), _index_out_of_bounds),
)


def translate(
    exc: BaseException,
    stage: Stage,
    *,
    backend: Backend,
    source: str = "The model",
    summary: Any = None,
    name: str = "",
) -> TfedgeError:
    """The tfedge error for what ``backend`` raised at ``stage`` (raise it ``from exc``).

    Args:
        exc: The backend's exception.
        stage: Where it was raised.
        backend: The backend that raised it.
        source: How messages name the model (``Model file 'm.tflite'``).
        summary: The model's :class:`~tfedge.verify.ModelSummary`, for op names.
        name: For RESIZE, SET and GET, what failed, which the message starts with
            (``Input 'x' could not be resized to (1, 5)``); for INVOKE, the same in
            place of ``The model failed while running``.
    """
    if isinstance(exc, TfedgeError):
        return exc
    text = str(exc).strip()
    ctx = _Context(backend, source, summary, name, kernel_message(exc))
    for pattern, stages, build in _RULES:
        if stage in stages:
            match = pattern.search(text)
            if match:
                return build(match, ctx)
    if stage is Stage.LOAD:
        return ModelError(f"{source} could not be loaded by {backend.name}: {ctx.first}")
    if stage is Stage.ALLOCATE:
        return ModelError(f"{source} loaded, but {backend.name} could not allocate its tensors: {ctx.first}")
    if stage in (Stage.RESIZE, Stage.SET):
        return InputError(f"{name}: {ctx.first}")
    if stage is Stage.GET:
        return InvokeError(f"{name}: {ctx.first}")
    return InvokeError(f"{name or 'The model failed while running'}: {ctx.first}")


#: What backends raise for a failed call: ValueError/RuntimeError from their wrappers,
#: MemoryError for std::bad_alloc (a tensor a damaged file declares huge), SystemError
#: when a C extension is broken underneath.
BACKEND_ERRORS = (ValueError, RuntimeError, MemoryError, SystemError, TypeError)


@contextlib.contextmanager
def mapped(stage: Stage, *, backend: Backend, source: str = "The model", summary: Any = None,
           name: str = "") -> Iterator[None]:
    """Translate what the backend raises inside the block (see :func:`translate`)."""
    try:
        yield
    except BACKEND_ERRORS as exc:
        raise translate(exc, stage, backend=backend, source=source, summary=summary, name=name) from exc

