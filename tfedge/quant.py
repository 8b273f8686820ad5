"""Affine (de)quantization of arrays, as TFLite defines it.

``real = scale * (q - zero_point)``, per tensor or per channel along
``quantized_dimension``. Quantization rounds half to even and clips to the integer
type's range; the integer part is done in int64 so no zero point can overflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["QUANTIZED_DTYPES", "QuantParams", "dequantize", "quantize"]

#: Integer tensor types that carry real values through a scale and zero point.
QUANTIZED_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.uint8, np.int16))


@dataclass(frozen=True)
class QuantParams:
    """Scale(s) and zero point(s) of a quantized tensor.

    Attributes:
        scales: One scale per tensor, or one per channel.
        zero_points: Same length as ``scales``.
        axis: The channel axis for per-channel parameters (``quantized_dimension``).
    """

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        """True when there is one scale per channel."""
        return len(self.scales) > 1

    @classmethod
    def from_details(cls, details: dict) -> QuantParams | None:
        """Parameters from a backend's tensor details dict, or None if not quantized."""
        params = details.get("quantization_parameters") or {}
        scales = tuple(float(s) for s in params.get("scales", ()))
        if not scales or not any(scales):
            return None
        zero_points = tuple(int(z) for z in params.get("zero_points", ()))
        if len(zero_points) != len(scales):
            zero_points = (zero_points[0] if zero_points else 0,) * len(scales)
        return cls(scales, zero_points, int(params.get("quantized_dimension", 0)))

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Scales (float64) and zero points (int64) as arrays, made once (hot path)."""
        return np.asarray(self.scales, dtype=np.float64), np.asarray(self.zero_points, dtype=np.int64)

    def _broadcast(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """Scales (float64) and zero points (int64) shaped to broadcast over ``ndim`` axes."""
        scale, zero = self._arrays
        if self.per_channel:
            shape = [1] * ndim
            shape[self.axis] = -1
            return scale.reshape(shape), zero.reshape(shape)
        return scale[0], zero[0]


def quantize(values: np.ndarray, params: QuantParams, dtype: np.dtype | type) -> np.ndarray:
    """Real ``values`` to integers of ``dtype``: ``clip(round(x / scale) + zero_point)``."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    scale, zero = params._broadcast(np.ndim(values))
    q = np.rint(np.asarray(values, dtype=np.float64) / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integers to float32 reals: ``scale * (q - zero_point)``."""
    scale, zero = params._broadcast(np.ndim(values))
    centered = np.asarray(values).astype(np.int64) - zero
    return (centered * scale).astype(np.float32)
