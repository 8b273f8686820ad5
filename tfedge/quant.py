"""Affine (de)quantization of arrays, as TFLite defines it.

``real = scale * (q - zero_point)``, per tensor or per channel along
``quantized_dimension``. Quantization rounds half to even and clips to the integer
type's range. Float32 (and float16) values are divided by the scale in float32, as
TFLite's own kernels work; other values in float64. Dequantization subtracts the zero
point in int64, so no zero point can overflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Optional

import numpy as np

__all__ = ["QUANTIZED_DTYPES", "QuantParams", "dequantize", "quantize", "quantizer"]

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
    values = np.asarray(values)
    work = np.float32 if values.dtype in _FLOAT32_WORK else np.float64
    scale, zero = params._broadcast(values.ndim)
    q = np.rint(np.divide(values, np.asarray(scale, work), dtype=work))
    q += np.asarray(zero, work)
    info = np.iinfo(dtype)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


_FLOAT32_WORK = frozenset(np.dtype(t) for t in (np.float16, np.float32))


def quantizer(
    params: QuantParams, dtype: np.dtype | type, shape: tuple[int, ...]
) -> Callable[[np.ndarray], Optional[np.ndarray]]:
    """A fast :func:`quantize` for float32 arrays of one ``shape``, per-tensor parameters.

    The function it returns works in buffers made here, once (the hot path of
    ``Interpreter.run``), and gives exactly what :func:`quantize` gives. It returns None
    for what it does not take (another shape or dtype, or NaN values), for the general
    path to convert or explain. The array it returns is reused by the next call.
    """
    dtype = np.dtype(dtype)
    scale = np.float32(params.scales[0])
    zero = np.float32(params.zero_points[0])
    info = np.iinfo(dtype)
    low, high = np.float32(info.min), np.float32(info.max)
    work: np.ndarray = np.empty(shape, np.float32)
    out = np.empty(shape, dtype)
    float32 = np.dtype(np.float32)

    def fast(values: np.ndarray) -> np.ndarray | None:
        if values.shape != shape or values.dtype != float32:
            return None
        np.divide(values, scale, out=work)
        np.rint(work, out=work)
        if zero:
            np.add(work, zero, out=work)
        # Two reductions cost a fraction of numpy's clip, which most inputs do not need.
        top, bottom = work.max(), work.min()
        if not (low <= bottom and top <= high):
            if top != top or bottom != bottom:  # NaN: the general path says which input
                return None
            np.clip(work, low, high, out=work)
        np.copyto(out, work, casting="unsafe")
        return out

    return fast


def dequantize(values: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integers to float32 reals: ``scale * (q - zero_point)``."""
    scale, zero = params._broadcast(np.ndim(values))
    centered = np.asarray(values).astype(np.int64) - zero
    return (centered * scale).astype(np.float32)
