"""``classify``: top-k categories of a classifier's scores, with labels; ``classify_audio`` per window."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from ..errors import InputError
from ..metadata import ScoreCalibration, TensorMetadata
from ._fit import check_task
from ._image import Model, _metadata, image_input, load_image, prepare

__all__ = ["ACTIVATIONS", "Category", "classify", "classify_audio", "read_labels"]

Labels = Union[Sequence[str], str, "os.PathLike[str]", None]
ACTIVATIONS = ("none", "sigmoid", "softmax")


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


def _is_image_model(interp: Model) -> bool:
    specs = interp.input_specs()
    return len(specs) == 1 and len(specs[0].shape) == 4 and specs[0].shape[3] in (1, 3)


def audio_window(interp: Model) -> Optional[int]:
    """The samples per window of a model with one ``(batch, samples)`` input (0: any length), else None."""
    specs = interp.input_specs()
    if len(specs) != 1 or len(specs[0].shape) != 2:
        return None
    signature = specs[0].shape_signature
    return 0 if len(signature) == 2 and signature[1] == -1 else int(specs[0].shape[1])


def model_inputs(interp: Model, x: Any) -> Any:
    """What ``run()`` gets for ``x``: an image (path, (H, W, 3) or (1, H, W, 3) array) is resized and normalized.

    With or without a batch axis, an image array is read by the same rule (see ``load_image``).
    """
    if _is_image_model(interp) and (isinstance(x, (str, os.PathLike)) or np.ndim(x) in (2, 3)
                                    or (np.ndim(x) == 4 and np.shape(x)[0] == 1)):
        tensor, _ = prepare(load_image(x), image_input(interp), letterbox=False)
        return tensor
    if isinstance(x, (str, os.PathLike)):
        specs = interp.input_specs()
        takes = ", ".join(f"{s.name!r} {s.describe()}" for s in specs)
        fix = ("Give it a .npy array of that shape." if len(specs) == 1
               else "Run it with tfedge run --input NAME=FILE.npy for each.")
        raise InputError(f"{str(x)!r}: only models with one (1, H, W, 3) image input take image files; this one "
                         f"takes {takes}. {fix}")
    window = audio_window(interp)
    if window is not None:
        samples = _samples(x)
        if samples.ndim == 2 and samples.shape[0] == 1:
            samples = samples[0]
        if samples.ndim != 1 or (window and len(samples) != window):
            raise InputError(f"classify takes one window of {window or 'any number of'} samples, got shape "
                             f"{samples.shape} {samples.dtype.name}; classify_audio() (tfedge classify) takes "
                             "audio of any length and scores each window.")
        return samples[None].astype(interp.input_specs()[0].dtype, copy=False)
    return x


def _samples(x: Any) -> np.ndarray:
    """Audio as a float array: 1-D samples or (windows, samples), any real dtype."""
    samples = np.asarray(x)
    if samples.dtype.kind not in "fiu" or samples.ndim not in (1, 2) or samples.size == 0:
        raise InputError(f"Audio must be a non-empty 1-D array of samples (or windows x samples) of numbers, "
                         f"got shape {samples.shape} {samples.dtype.name}.")
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise InputError("The audio holds NaN or infinite samples; give finite values.")
    return samples


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


def _activate(scores: np.ndarray, activation: Optional[str]) -> np.ndarray:
    """Scores through ``activation`` ("none", "sigmoid", "softmax")."""
    if activation is None or activation == "none":
        return scores
    if activation == "sigmoid":
        return (1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))).astype(np.float32)
    if activation == "softmax":
        e = np.exp(scores - np.max(scores))
        return (e / e.sum()).astype(np.float32)
    raise InputError(f"Unknown activation {activation!r}. Choose one of: {', '.join(ACTIVATIONS)}.")


def classify(interp: Model, x: Any, *, top_k: int = 5, score_threshold: Optional[float] = None,
             labels: Labels = None, activation: Optional[str] = None) -> List[Category]:
    """The ``top_k`` best classes of a classifier's output, best first.

    Args:
        interp: The classifier (an Interpreter or an InterpreterPool).
        x: An image ((H, W, 3) or (1, H, W, 3) array, or a file path: read by the rule of
            ``load_image``, resized and normalized as the model's metadata says) for image
            models; one window of samples for a ``(batch, samples)`` audio model
            (``classify_audio`` takes any length); else the model's input as ``run()`` takes it.
        top_k: How many categories at most.
        score_threshold: Leave out categories scoring below it (default: the metadata's
            score threshold, if any).
        labels: A sequence of labels or a labels file (one per line); default: the
            labels in the model's metadata.
        activation: "sigmoid" or "softmax" for a model that outputs logits; default:
            the metadata's score calibration if any, else the output as it is ("none").

    Returns:
        Categories, highest score first. Scores are the model's output, dequantized,
        through the activation (or the metadata's calibration); a class scoring NaN is
        left out.

    Raises:
        ModelError: The model is not a classifier (the message names the task that fits).
        InputError: A bad input, labels or option.
    """
    if top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}.")
    if activation is not None and activation not in ACTIVATIONS:
        _activate(np.zeros(1, np.float32), activation)  # raises the message listing the choices
    check_task(interp, "classify")
    outputs = interp.run(model_inputs(interp, x))
    return _top(interp, outputs, top_k, score_threshold, labels, activation)


def _top(interp: Model, outputs: Any, top_k: int, score_threshold: Optional[float], labels: Labels,
         activation: Optional[str]) -> List[Category]:
    """The best categories of one run's outputs."""
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
    if activation is not None:
        scores = _activate(scores, activation)
    elif out_meta is not None and out_meta.score_calibration is not None:
        scores = _calibrate(scores, out_meta.score_calibration)
    if score_threshold is None and out_meta is not None:
        score_threshold = out_meta.score_threshold
    # A NaN is no class's score (a broken model's output, or softmax over an infinity): left out.
    candidates = np.flatnonzero(~np.isnan(scores))
    k = min(top_k, len(candidates))
    if k == 0:
        return []
    best = candidates[np.argpartition(-scores[candidates], k - 1)[:k]] if k < len(candidates) else candidates
    best = best[np.lexsort((best, -scores[best]))]  # score descending, index ascending on ties
    return [Category(index=int(i), score=float(scores[i]), label=names[i] if names else "")
            for i in best if score_threshold is None or scores[i] >= score_threshold]


def classify_audio(interp: Model, samples: Any, *, hop: Optional[int] = None, top_k: int = 5,
                   score_threshold: Optional[float] = None, labels: Labels = None,
                   activation: Optional[str] = None) -> List[List[Category]]:
    """Categories of each window of audio of any length, for a model with one ``(batch, samples)`` input.

    The audio is cut into the model's windows, ``hop`` samples apart (default: the window,
    no overlap; less overlaps them); a clip shorter than a window, or the tail after the
    last whole window, is padded with zeros. Window ``i`` starts at sample ``i * hop``.

    Args:
        interp: The classifier (an Interpreter or an InterpreterPool), such as BirdNET.
        samples: 1-D samples of any length and real dtype, or (windows, samples) already cut.
        hop: Samples between window starts (1 to the window).
        top_k, score_threshold, labels, activation: as :func:`classify`.

    Returns:
        One list of categories per window, in time order.
    """
    window = audio_window(interp)
    if window is None:
        got = ", ".join(f"{s.name} {s.describe()}" for s in interp.input_specs()) or "none"
        raise InputError(f"classify_audio needs a model with one (batch, samples) input, got: {got}.")
    audio = _samples(samples)
    windows: List[np.ndarray]
    if audio.ndim == 2:
        if window and audio.shape[1] != window:
            raise InputError(f"Windows of {audio.shape[1]} samples given; the model takes {window}. "
                             "Give 1-D audio of any length to have it cut.")
        windows = list(audio)
    else:
        size = window or len(audio)
        step = size if hop is None else hop
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= size:
            raise InputError(f"hop must be a whole number of samples from 1 to the window ({size}), got {hop!r}.")
        starts = list(range(0, max(len(audio) - size, 0) + 1, step))
        if starts[-1] + size < len(audio):
            starts.append(starts[-1] + step)  # the tail, padded
        windows = []
        for start in starts:
            piece = audio[start:start + size]
            if len(piece) < size:
                piece = np.concatenate([piece, np.zeros(size - len(piece), piece.dtype)])
            windows.append(piece)
    check_task(interp, "classify")
    dtype = interp.input_specs()[0].dtype
    if activation is not None and activation not in ACTIVATIONS:
        _activate(np.zeros(1, np.float32), activation)
    if top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}.")
    return [_top(interp, interp.run(w[None].astype(dtype, copy=False)), top_k, score_threshold, labels, activation)
            for w in windows]
