"""Stub interpreters for fuzzing tfedge.tasks' decoders: model outputs made from the fuzzer's bytes."""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfedge import TensorSpec

# Values a broken or hostile model may answer, picked by the bytes.
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e38, -1e38, 1e-38, 3e9, -3e9, 100.0,
                    -100.0, 65504.0], dtype=np.float32)


class Bytes:
    """Reads the fuzzer's bytes: small ints, floats (raw float32 or special), arrays; zeros when spent."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        out = self.data[self.at:self.at + n]
        self.at += n
        return out + b"\0" * (n - len(out))

    def byte(self) -> int:
        return self.take(1)[0]

    def value(self) -> float:
        kind = self.byte()
        if kind < 64:
            return float(SPECIAL[kind % len(SPECIAL)])
        if kind < 160:
            return float(np.frombuffer(self.take(4), np.float32)[0])
        return (kind - 208) / 8.0  # small numbers around 0

    def array(self, shape: Sequence[int]) -> np.ndarray:
        """An array of ``shape``: a fill from the bytes, then a few entries set one by one."""
        size = int(np.prod(shape))
        mode = self.byte() % 4
        if mode == 0:  # the raw bytes as float32, repeated: anything at all
            raw = self.take(min(4 * size, 256))
            base = np.frombuffer(raw, np.float32)
            out = np.resize(base, size).astype(np.float32)
        else:
            out = np.full(size, self.value(), np.float32)
        for _ in range(self.byte() % 8):
            out[(self.byte() * 256 + self.byte()) % size] = self.value()
        return out.reshape(shape)


def spec(name: str, index: int, shape: Tuple[int, ...]) -> TensorSpec:
    return TensorSpec(name, name, index, shape, shape, np.dtype(np.float32), None)


class StubModel:
    """What tfedge.tasks reads from a model (specs, metadata, run), answering outputs from the bytes."""

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> None:
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        self.metadata = None
        self.source: Optional[Bytes] = None

    def input_specs(self) -> Tuple[TensorSpec, ...]:
        return self._inputs

    def output_specs(self) -> Tuple[TensorSpec, ...]:
        return self._outputs

    def run(self, tensor: np.ndarray) -> Dict[str, np.ndarray]:
        assert self.source is not None
        expected = self._inputs[0].shape
        assert tensor.shape == expected and np.isfinite(tensor).all(), (tensor.shape, expected)
        return {s.name: self.source.array(s.shape) for s in self._outputs}


def image(source: Bytes) -> np.ndarray:
    """A small image of the bytes' choosing: 1..64 px a side, uint8 or float."""
    h, w = 1 + source.byte() % 64, 1 + source.byte() % 64
    pixels = np.frombuffer(source.take(h * w * 3 if h * w <= 64 else 192), np.uint8)
    out = np.resize(pixels, (h, w, 3))
    return out if source.byte() % 2 else out.astype(np.float32) / 255.0
