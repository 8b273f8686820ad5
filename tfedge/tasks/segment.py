"""``segment``: a class index or foreground probability for every pixel of the image given."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ._fit import check_task
from ._image import ImageLike, Model, _axis, image_input, load_image, prepare, resize_bilinear

__all__ = ["segment"]


def segment(interp: Model, image: ImageLike) -> np.ndarray:
    """Segment ``image`` (an (H, W, 3) array or a file path) with a segmentation model.

    ``interp`` is an Interpreter or an InterpreterPool; the image is read by the rule of
    ``load_image`` (uint8 0-255, float [0, 1] or 0-255).

    Returns:
        An (H, W) array for the image given: float32 foreground probabilities in [0, 1]
        for a model with one output channel (MediaPipe's selfie segmenter), else the
        uint8 (int32 beyond 256 classes) index of the best class per pixel.

    Raises:
        ModelError: The model's output is not a (1, h, w, C) mask (the message names
            the task its outputs fit).
    """
    check_task(interp, "segment")
    pixels = load_image(image)
    info = image_input(interp)
    tensor, _ = prepare(pixels, info, letterbox=False)
    out_spec = interp.output_specs()[0]
    mask = interp.run(tensor)[out_spec.name]
    if mask.ndim == 3:
        mask = mask[..., None]
    if mask.ndim != 4 or mask.shape[0] != 1:
        raise ModelError(f"Output {out_spec.name!r} has shape {mask.shape}; a segmentation model outputs "
                         "(1, height, width, classes).")
    h, w = pixels.shape[:2]
    scores = mask[0]
    if scores.shape[2] == 1:
        prob = np.nan_to_num(scores, nan=0.0)  # a broken model's NaN: no evidence either way
        if float(prob.min()) < 0 or float(prob.max()) > 1:  # logits
            prob = 1 / (1 + np.exp(-np.clip(prob, -80, 80)))  # no overflow on huge logits
        return np.clip(resize_bilinear(prob, h, w)[:, :, 0], 0, 1)
    best = scores.argmax(axis=2).astype(np.uint8 if scores.shape[2] <= 256 else np.int32)
    # Nearest class per image pixel (bilinear on C score maps would cost C times as much).
    rows = _axis(best.shape[0], h, 0, h)
    cols = _axis(best.shape[1], w, 0, w)
    ri = np.where(rows[2] < 0.5, rows[0], rows[1])
    ci = np.where(cols[2] < 0.5, cols[0], cols[1])
    return best[ri][:, ci]
