"""Fuzz target: ``tfedge.tasks.Landmarker`` (face, hand, pose) on adversarial detector and landmark outputs.

Both models are stubs answering from the bytes; a stream of up to 3 frames runs, so the
regions built from the previous frame's landmarks (NaN, inf, huge, all at one point) are
fuzzed as well as those from the detector's keypoints.
"""

from __future__ import annotations

import math
from typing import Tuple, Type

import numpy as np
from _tasks_stub import Bytes, StubModel, image, spec

from tfedge.errors import TfedgeError
from tfedge.tasks import Landmarker, SsdAnchors

ALLOWED: Tuple[Type[BaseException], ...] = (TfedgeError,)

# Small stand-ins of MediaPipe's models: the same output layouts, tiny inputs (fast crops).
_ANCHORS = SsdAnchors(16, 16, 2, (8, 16))  # 10 anchors


def _landmarker(kind: str) -> Landmarker:
    keypoints, points, values, extra = {"face": (6, 468, 3, 1), "hand": (7, 21, 3, 2), "pose": (4, 39, 5, 1)}[kind]
    detector = StubModel([spec("input", 0, (1, 16, 16, 3))], [spec("regressors", 1, (1, 10, 4 + 2 * keypoints)),
                                                              spec("classificators", 2, (1, 10, 1))])
    outputs = [spec("points", 1, (1, points * values))] + [spec(f"score_{i}", 2 + i, (1, 1)) for i in range(extra)]
    marks = StubModel([spec("input_1", 0, (1, 8, 8, 3))], outputs)
    return Landmarker(kind, detector, marks, anchors=_ANCHORS)  # type: ignore[arg-type]


LANDMARKERS = {kind: _landmarker(kind) for kind in ("face", "hand", "pose")}


def seeds() -> list[bytes]:
    return [bytes([k, f]) + bytes(range(i, 256)) * 2 for k in range(3) for f in (0, 1, 2) for i in (0, 9, 77)]


def one_input(data: bytes) -> None:
    source = Bytes(data)
    finder = LANDMARKERS[("face", "hand", "pose")[source.byte() % 3]]
    finder.reset()
    for model in (finder.detector, finder.landmarker):
        model.source = source  # type: ignore[union-attr]
    frames = 1 + source.byte() % 3
    finder.presence_threshold = (source.byte() % 11) / 10
    for _ in range(frames):
        picture = image(source)
        found = finder(picture) if frames > 1 else finder.find(picture)
        for lm in found:
            assert lm.points.shape == (finder.kind.keep, 3) and bool(np.isfinite(lm.points).all()), lm.points
            assert math.isfinite(lm.score) and lm.score >= finder.presence_threshold
            assert all(math.isfinite(v) for v in (lm.region.x, lm.region.y, lm.region.width, lm.region.rotation))


if __name__ == "__main__":
    for seed in seeds():
        one_input(seed)
