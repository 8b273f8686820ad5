"""Which task a model fits, from its outputs' shapes, so a model given to the wrong task says which fits."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Dict, Sequence, Tuple

from ..errors import ModelError
from ..interpreter import TensorSpec

# How each task is called: the Python function and the command.
CALLS: Dict[str, str] = {
    "classify": "tfedge.tasks.classify() (tfedge classify)",
    "detect": "tfedge.tasks.detect() (tfedge detect)",
    "segment": "tfedge.tasks.segment() (tfedge segment)",
    "landmarks": "tfedge.tasks.Landmarker as a landmark model (tfedge landmarks)",
}
NOUNS: Dict[str, str] = {"classify": "a classifier", "detect": "a detector", "segment": "a segmentation model",
                         "landmarks": "a landmark model"}
# MediaPipe's landmark models: face (468 x 3), hand (21 x 3), pose (39 x 5) values in one output.
LANDMARK_SIZES = (468 * 3, 21 * 3, 39 * 5)

_known: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _size(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def task_of_outputs(specs: Sequence[TensorSpec]) -> str:
    """The task whose outputs these are: "classify", "detect", "segment", "landmarks", or "" (unknown)."""
    from .detect import _postprocess  # detect imports this module

    shapes = [tuple(int(d) for d in s.shape) for s in specs]
    sizes = [_size(shape) for shape in shapes]
    if 1 in sizes and any(size in LANDMARK_SIZES for size in sizes):
        return "landmarks"
    if _postprocess(specs) is not None:
        return "detect"
    three = [shape for shape in shapes if len(shape) == 3 and shape[0] == 1]
    if len(shapes) == 2 and len(three) == 2 and three[0][1] == three[1][1] and max(three[0][2], three[1][2]) >= 4:
        return "detect"
    if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1] > 1 and shapes[0][2] > 1:
        return "segment"
    if shapes and all(sum(d > 1 for d in shape[1:]) <= 1 for shape in shapes):
        return "classify"
    if len(shapes) == 1 and len(three) == 1 and max(three[0][1:]) > 4:
        return "detect"  # YOLO-style
    return ""


def describe_outputs(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{s.name} {tuple(s.shape)}" for s in specs)


def fit_hint(specs: Sequence[TensorSpec], task: str) -> str:
    """" It fits <other task>: use ...." when the outputs fit another task, else ""."""
    fits = task_of_outputs(specs)
    return f" It fits {fits}: use {CALLS[fits]}." if fits and fits != task else ""


def check_task(interp: Any, task: str) -> None:
    """Raise ``ModelError`` when ``interp``'s outputs fit another task than ``task`` (cached per model)."""
    fits = _known.get(interp)
    if fits is None:
        fits = task_of_outputs(interp.output_specs())
        with _lock:
            _known[interp] = fits
    if fits and fits != task:
        raise ModelError(f"This model is not {NOUNS[task]}: its outputs "
                         f"({describe_outputs(interp.output_specs())}) fit {fits}; use {CALLS[fits]}.")


def fits(interp: Any) -> Tuple[str, str]:
    """The task ``interp`` fits and how to call it ("" and "" when unknown)."""
    task = task_of_outputs(interp.output_specs())
    return task, CALLS.get(task, "")
