"""Fuzz target: ``tfedge.tasks.segment`` on adversarial masks (NaN, inf, huge logits) of each layout.

The first byte picks the model: one channel (a foreground probability or logit, with or
without the channel axis) or several classes; the rest makes the image and the mask.
"""

from __future__ import annotations

from typing import Tuple, Type

import numpy as np
from _tasks_stub import Bytes, StubModel, image, spec

from tfedge.errors import TfedgeError
from tfedge.tasks import segment

ALLOWED: Tuple[Type[BaseException], ...] = (TfedgeError,)

_INPUT = spec("input", 0, (1, 8, 8, 3))
MODELS = (
    StubModel([_INPUT], [spec("mask", 1, (1, 8, 8, 1))]),
    StubModel([_INPUT], [spec("mask", 1, (1, 4, 6, 1))]),
    StubModel([_INPUT], [spec("mask", 1, (1, 8, 8))]),
    StubModel([_INPUT], [spec("classes", 1, (1, 4, 4, 5))]),
)


def seeds() -> list[bytes]:
    return [bytes([pick]) + bytes(range(i, 256)) + bytes(64) for pick in range(4) for i in (0, 7, 61)]


def one_input(data: bytes) -> None:
    source = Bytes(data)
    pick = source.byte() % len(MODELS)
    model = MODELS[pick]
    model.source = source
    picture = image(source)
    mask = segment(model, picture)  # type: ignore[arg-type]
    h, w = picture.shape[:2]
    assert mask.shape == (h, w), (mask.shape, picture.shape)
    if model.output_specs()[0].shape[-1] == 5:
        assert mask.dtype == np.uint8 and int(mask.max()) < 5, (mask.dtype, mask.max())
    else:  # probabilities: finite, in [0, 1]
        assert mask.dtype == np.float32 and np.isfinite(mask).all() and 0 <= mask.min() and mask.max() <= 1, mask


if __name__ == "__main__":
    for seed in seeds():
        one_input(seed)
