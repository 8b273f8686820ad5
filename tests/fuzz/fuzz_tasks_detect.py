"""Fuzz target: ``tfedge.tasks.detect`` on adversarial outputs of each layout (SSD, PostProcess, YOLO).

The first byte picks the layout; the rest makes the image and the model's answer (NaN,
inf, huge or negative sizes, boxes outside the image, counts larger than the arrays).
"""

from __future__ import annotations

import math
from typing import Tuple, Type

from _tasks_stub import Bytes, StubModel, image, spec

from tfedge.errors import TfedgeError
from tfedge.tasks import SsdAnchors, detect

ALLOWED: Tuple[Type[BaseException], ...] = (TfedgeError,)

_INPUT_SSD = spec("input", 0, (1, 128, 128, 3))
_INPUT = spec("images", 0, (1, 64, 64, 3))
_SMALL_ANCHORS = SsdAnchors(16, 16, 2, (8, 16))  # 2x2 cells x 2 anchors + 1 cell x 2: 10 anchors
_MID_ANCHORS = SsdAnchors(32, 32, 2, (8, 16))  # 4x4 cells x 2 + 2x2 x 2: 40 anchors, past nms()'s few-box path
MODELS = (
    # A small anchor-based SSD (explicit anchors), 2 keypoints, 3 classes: fast, so most inputs go here.
    StubModel([spec("input", 0, (1, 16, 16, 3))], [spec("regressors", 1, (1, 10, 8)),
                                                    spec("classificators", 2, (1, 10, 3))]),
    StubModel([spec("input", 0, (1, 16, 16, 3))], [spec("regressors", 1, (1, 10, 8)),
                                                    spec("classificators", 2, (1, 10, 1))]),
    # TFLite_Detection_PostProcess, TF2 names.
    StubModel([_INPUT], [spec("detection_boxes", 1, (1, 10, 4)), spec("detection_classes", 2, (1, 10)),
                         spec("detection_scores", 3, (1, 10)), spec("num_detections", 4, (1,))]),
    # YOLO, both orientations.
    StubModel([_INPUT], [spec("output0", 1, (1, 20, 7))]),
    StubModel([_INPUT], [spec("output0", 1, (1, 7, 20))]),
    # MediaPipe's short-range face detector: 896 anchors derived from the input size, 6 keypoints.
    StubModel([_INPUT_SSD], [spec("regressors", 1, (1, 896, 16)), spec("classificators", 2, (1, 896, 1))]),
    # Explicit anchors, 40 of them: many candidates (the vectorized nms()) at a small cost.
    StubModel([spec("input", 0, (1, 32, 32, 3))], [spec("regressors", 1, (1, 40, 8)),
                                                    spec("classificators", 2, (1, 40, 2))]),
)
_FACE, _MID = MODELS[-2], MODELS[-1]
_ANCHORS = {16: _SMALL_ANCHORS, 32: _MID_ANCHORS}


def seeds() -> list[bytes]:
    return [bytes([pick]) + bytes(range(i, 256)) + bytes(64) for pick in (0, 1, 2, 3, 4, 14, 15) for i in (0, 7, 61)]


def one_input(data: bytes) -> None:
    source = Bytes(data)
    pick = source.byte()
    model = {15: _FACE, 14: _MID}.get(pick % 16) or MODELS[pick % (len(MODELS) - 2)]
    model.source = source
    picture = image(source)
    threshold = (source.byte() % 11) / 10
    # The face detector's 896 candidates always get a limit: unlimited, a low threshold keeps
    # hundreds of boxes (1/16 of the inputs, yet libFuzzer drifts to them: 70 runs/s). The
    # unlimited path over many candidates is the 40-anchor model's.
    limit = 1 + source.byte() % 4 if model is _FACE else source.byte() % 4 or None
    anchors = _ANCHORS.get(model.input_specs()[0].shape[1])
    found = detect(model, picture, score_threshold=threshold, max_results=limit,  # type: ignore[arg-type]
                   anchors=anchors)
    h, w = picture.shape[:2]
    for d in found:
        x0, y0, x1, y1 = d.box
        # Boxes are clipped to the image; NaN or infinity never comes out.
        assert 0.0 <= x0 <= w and 0.0 <= x1 <= w and 0.0 <= y0 <= h and 0.0 <= y1 <= h, d
        assert math.isfinite(d.score) and all(math.isfinite(v) for k in d.keypoints for v in k), d
        assert isinstance(d.label, str) and isinstance(d.index, int)
    assert limit is None or len(found) <= limit


if __name__ == "__main__":
    for seed in seeds():
        one_input(seed)
