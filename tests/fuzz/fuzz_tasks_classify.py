"""Fuzz target: ``tfedge.tasks.classify`` and ``classify_audio`` on adversarial model outputs and audio.

The first byte picks the model (an image classifier, a fixed-window or any-length audio
classifier, two outputs) and the call; the rest makes the input, the options (top_k, the
threshold, the activation, labels, the hop) and the model's scores (NaN, inf, huge values).
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple, Type

import numpy as np
from _tasks_stub import Bytes, StubModel, image, spec

from tfedge import TensorSpec
from tfedge.errors import TfedgeError
from tfedge.tasks import Category, classify, classify_audio

ALLOWED: Tuple[Type[BaseException], ...] = (TfedgeError,)


def _audio_spec(name: str, samples: int, free: bool) -> TensorSpec:
    return TensorSpec(name, name, 0, (1, samples), (1, -1 if free else samples), np.dtype(np.float32), None)


class _AnyLength(StubModel):
    """An audio model whose input takes any number of samples (``(1, -1)``)."""

    def run(self, tensor: np.ndarray) -> Dict[str, np.ndarray]:
        assert self.source is not None
        assert tensor.ndim == 2 and tensor.shape[0] == 1 and np.isfinite(tensor).all(), tensor.shape
        return {s.name: self.source.array(s.shape) for s in self._outputs}


MODELS = (
    StubModel([spec("image", 0, (1, 8, 8, 3))], [spec("scores", 1, (1, 10))]),
    StubModel([_audio_spec("audio", 16, False)], [spec("logits", 1, (1, 6))]),
    _AnyLength([_audio_spec("audio", 16, True)], [spec("logits", 1, (1, 3))]),
    StubModel([spec("image", 0, (1, 8, 8, 3))], [spec("scores", 1, (1, 4)), spec("extra", 2, (1, 4))]),
)
ACTIVATIONS = (None, "none", "sigmoid", "softmax")


def seeds() -> list[bytes]:
    return [bytes([pick, option]) + bytes(range(i, 256)) + bytes(64)
            for pick in range(8) for option in (0, 5, 130) for i in (0, 61)]


def _audio(source: Bytes) -> np.ndarray:
    """1-D audio (or windows x samples) of the bytes' choosing, float or int."""
    n = source.byte() % 48
    values = np.array([source.value() for _ in range(min(n, 8))] or [0.0], np.float32)
    audio = np.resize(values, n)
    kind = source.byte() % 4
    if kind == 1:
        return np.clip(np.nan_to_num(audio), -3e4, 3e4).astype(np.int16)
    if kind == 2 and n >= 16:
        return audio[:16 * (n // 16)].reshape(-1, 16)
    return audio


def _check(found: List[Category], top_k: int, classes: int) -> None:
    assert len(found) <= top_k, (len(found), top_k)
    scores = [c.score for c in found]
    # Best first; a NaN score is never a class's score.
    assert not any(math.isnan(s) for s in scores) and scores == sorted(scores, reverse=True), scores
    for c in found:
        assert isinstance(c.index, int) and 0 <= c.index < classes and isinstance(c.label, str), c


def one_input(data: bytes) -> None:
    source = Bytes(data)
    pick = source.byte()
    model = MODELS[pick % len(MODELS)]
    model.source = source
    option = source.byte()
    top_k = option % 7 - 1  # 0 and -1 are refused
    threshold = None if option & 0x80 else source.value()
    activation = ACTIVATIONS[(option >> 3) % 4]
    classes = model.output_specs()[0].shape[1]
    labels = [f"c{i}" for i in range(classes + (option >> 5) % 2)] if option & 0x40 else None
    if pick % len(MODELS) in (1, 2):
        audio = _audio(source)
        if (pick >> 2) % 2:
            hop = source.byte() % 20
            for window in classify_audio(model, audio, hop=hop or None, top_k=top_k,  # type: ignore[arg-type]
                                         score_threshold=threshold, labels=labels, activation=activation):
                _check(window, top_k, classes)
            return
        found = classify(model, audio, top_k=top_k, score_threshold=threshold,  # type: ignore[arg-type]
                         labels=labels, activation=activation)
    else:
        found = classify(model, image(source), top_k=top_k, score_threshold=threshold,  # type: ignore[arg-type]
                         labels=labels, activation=activation)
    _check(found, top_k, classes)


if __name__ == "__main__":
    for seed in seeds():
        one_input(seed)
