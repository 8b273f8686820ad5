"""``classify``: top-k categories of a classifier's scores, with labels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from ..errors import InputError
from ..interpreter import Interpreter
from ..metadata import ScoreCalibration, TensorMetadata
from ._image import _metadata, image_input, load_image, prepare

__all__ = ["Category", "classify", "read_labels"]

Labels = Union[Sequence[str], str, "os.PathLike[str]", None]


@dataclass(frozen=True)
class Category:
    """One class of a result: its index in the output, score and label ("" when unknown)."""

    index: int
    score: float
    label: str = ""


def read_labels(labels: Labels) -> Optional[List[str]]:
    """Labels from a sequence, or from a text file with one label per line."""
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        try:
            with open(labels, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise InputError(f"Labels file {str(labels)!r} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read labels file {str(labels)!r}: {exc}.") from None
        while lines and not lines[-1].strip():
            lines.pop()
        return lines
    return [str(label) for label in labels]


def _is_image_model(interp: Interpreter) -> bool:
    specs = interp.input_specs()
    return len(specs) == 1 and len(specs[0].shape) == 4 and specs[0].shape[3] in (1, 3)


def model_inputs(interp: Interpreter, x: Any) -> Any:
    """What ``run()`` gets for ``x``: an image (path or (H, W, 3) array) is resized and normalized."""
    if _is_image_model(interp) and (isinstance(x, (str, os.PathLike)) or np.ndim(x) in (2, 3)):
        tensor, _ = prepare(load_image(x), image_input(interp), letterbox=False)
        return tensor
    if isinstance(x, (str, os.PathLike)):
        raise InputError(f"{str(x)!r}: only models with one (1, H, W, 3) image input take image files.")
    return x


def _calibrate(scores: np.ndarray, calibration: ScoreCalibration) -> np.ndarray:
    """Scores through the metadata's sigmoid calibration (TFLite Support's formula)."""
    out = np.full_like(scores, calibration.default_score)
    for i, params in enumerate(calibration.parameters[:len(scores)]):
        if params is None:
            continue
        scale, slope, offset, min_score = params
        x = float(scores[i])
        if calibration.transformation == "LOG":
            x = float(np.log(x)) if x > 0 else -np.inf
        elif calibration.transformation == "INVERSE_LOGISTIC":
            x = float(np.log(x / (1 - x))) if 0 < x < 1 else (np.inf if x >= 1 else -np.inf)
        value = scale / (1 + np.exp(-(slope * x + offset)))
        out[i] = calibration.default_score if value < min_score else value
    return out


def label_list(given: Labels, meta: Optional[TensorMetadata], classes: int) -> List[str]:
    """Labels for ``classes`` outputs: given ones, else the metadata's, else none ([])."""
    labels = read_labels(given)
    source = "given"
    if labels is None:
        labels = list(meta.labels) if meta is not None and meta.labels else []
        source = "in the model's metadata"
    if labels and len(labels) != classes:
        raise InputError(f"{len(labels)} labels {source} for an output of {classes} classes; "
                         f"pass a labels file with one line per class ({classes} lines).")
    return labels


def classify(interp: Interpreter, x: Any, *, top_k: int = 5, score_threshold: Optional[float] = None,
             labels: Labels = None) -> List[Category]:
    """The ``top_k`` best classes of a classifier's output, best first.

    Args:
        interp: The classifier.
        x: An image ((H, W, 3) uint8/float array or a file path, resized and normalized
            as the model's metadata says) for image models, else the model's input as
            ``run()`` takes it.
        top_k: How many categories at most.
        score_threshold: Leave out categories scoring below it (default: the metadata's
            score threshold, if any).
        labels: A sequence of labels or a labels file (one per line); default: the
            labels in the model's metadata.

    Returns:
        Categories, highest score first. Scores are the model's output (softmax or
        sigmoid), dequantized, calibrated when the metadata says so.
    """
    if top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}.")
    outputs = interp.run(model_inputs(interp, x))
    meta = _metadata(interp)
    specs = interp.output_specs()
    pick = 0
    if meta is not None and len(meta.outputs) == len(specs):
        pick = next((i for i, t in enumerate(meta.outputs) if t.labels), 0)
    out_meta = meta.outputs[pick] if meta is not None and len(meta.outputs) == len(specs) else None
    scores = outputs[specs[pick].name]
    if scores.ndim > 1 and scores.shape[0] != 1:
        raise InputError(f"classify takes one input at a time; output {specs[pick].name!r} has a batch "
                         f"of {scores.shape[0]}.")
    scores = scores.reshape(-1).astype(np.float32, copy=False)
    names = label_list(labels, out_meta, len(scores))
    if out_meta is not None and out_meta.score_calibration is not None:
        scores = _calibrate(scores, out_meta.score_calibration)
    if score_threshold is None and out_meta is not None:
        score_threshold = out_meta.score_threshold
    k = min(top_k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    best = best[np.lexsort((best, -scores[best]))]  # score descending, index ascending on ties
    return [Category(index=int(i), score=float(scores[i]), label=names[i] if names else "")
            for i in best if score_threshold is None or scores[i] >= score_threshold]
