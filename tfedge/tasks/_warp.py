"""Rotated crops for the landmark models: bilinear sampling of an image region in fixed point.

A landmark model's input is a rotated square of the image resampled to, say, 192 x 192.
Per frame the work is done once, at the input's size only, in as few numpy passes as
possible (each pass over the output costs about as much as the arithmetic in it):

- only the region's bounding box of the image is touched: its RGB pixels are read as one
  ``uint32`` each (a 4-byte read every 3 bytes: the 4th byte is the next pixel's red,
  never used), so one gather fetches a whole pixel;
- sample positions are affine in the output's row and column: one outer sum per axis, in
  float32, in 1/256 pixel units; the 8 fraction bits are the bilinear weights;
- the 4 neighbours are 4 gathers of one index (the right and lower neighbours are the same
  index into the buffer shifted by 1 and by one row);
- the blend runs in ``uint16`` lanes (one per channel), weights repeated per lane by one
  multiply: ``(p00 * (256 - wx) + p01 * wx + 128) >> 8`` per row, then the same between
  the rows, which leaves each channel in 8.8 fixed point: 1/256 of a pixel position and of
  a level (MediaPipe's CPU path, OpenCV's ``warpPerspective`` on the 8-bit image, keeps
  1/32 of a pixel and rounds to whole levels);
- the input's normalization is folded into the one pass that writes each channel's floats.

Every buffer is made once per output size and thread: fresh arrays of these sizes cost more
in page faults than the arithmetic.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from .landmarks import Region

__all__ = ["Warp", "crop"]

_FRAC = 8  # fraction bits of a sample position: the weights are 0..255 of 256
_ONE = 1 << _FRAC
_LANES = np.int64(0x0001000100010001)  # a weight times this: the weight in each of 4 uint16 lanes
_ROUND = np.uint16(_ONE // 2)
_SHIFT = np.uint16(_FRAC)


class _Buffers:
    """One thread's arrays for one output size."""

    def __init__(self, height: int, width: int) -> None:
        shape = (height, width)
        self.columns = np.arange(width, dtype=np.float32)
        self.rows = np.arange(height, dtype=np.float32)
        self.x = np.empty(shape, np.float32)
        self.y = np.empty(shape, np.float32)
        self.whole = np.empty(shape, np.int64)
        self.index = np.empty(shape, np.intp)
        # Weights (w and 256 - w) repeated in 4 uint16 lanes: int64 to compute, uint16 to use;
        # across, then (the same arrays) down: the fewer bytes touched, the less of the
        # landmark model's own data is pushed out of the caches.
        self.weights = np.empty((2, height, width), np.int64)
        self.pixels = np.empty((4, height, width), np.uint32)
        self.lanes = np.empty((4, height, width, 4), np.uint16)
        self.out = np.empty((1, height, width, 3), np.float32)
        self.source = np.empty(0, np.uint32)
        self.raw = np.empty(0, np.uint8)

    def source_buffer(self, size: int) -> np.ndarray:
        if self.source.size < size:
            self.source = np.zeros(size + size // 4, np.uint32)
        return self.source

    def raw_buffer(self, size: int) -> np.ndarray:
        if self.raw.size < size:
            self.raw = np.empty(size + size // 4, np.uint8)
        return self.raw


def _weights(position: np.ndarray, weights: np.ndarray) -> None:
    """The fraction of ``position`` (1/256 pixels) as w and 256 - w, each repeated in 4 uint16 lanes."""
    w, iw = weights
    np.bitwise_and(position, _ONE - 1, out=w)
    w *= _LANES
    np.subtract(_LANES * _ONE, w, out=iw)


def _clamp(value: float, low: float, high: float) -> float:
    """``value`` within [low, high]; NaN gives ``low``."""
    return low if not value >= low else (high if value > high else value)


class Warp:
    """Samples rotated regions of images to (height, width, 3), bilinear, edges repeated.

    One per model input; thread-safe (each thread has its own buffers). The arrays returned
    are those buffers: use them before the same thread's next call.

    Args:
        height, width: The output's size (the model's input).
    """

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self._local = threading.local()

    def _buffers(self) -> _Buffers:
        bufs: Optional[_Buffers] = getattr(self._local, "buffers", None)
        if bufs is None:
            bufs = self._local.buffers = _Buffers(self.height, self.width)
        return bufs

    def tensor(self, image: np.ndarray, region: Region, scale: Sequence[Any], offset: Sequence[Any]) -> np.ndarray:
        """The (1, height, width, 3) float32 input: each channel ``pixel * scale[c] + offset[c]``.

        ``image`` is (H, W, 3), 0-255 (uint8 is the fast path; other dtypes are rounded
        to 8 bits in the region's bounding box).
        """
        bufs = self._buffers()
        fixed = self._sample(bufs, image, region)
        out = bufs.out[0]
        for c in range(3):  # one strided pass per channel: numpy is slow over a last axis of 3
            channel = out[..., c]
            np.multiply(fixed[..., c], np.float32(float(scale[c]) / _ONE), out=channel)
            if float(offset[c]):
                channel += np.float32(offset[c])
        return bufs.out

    def _sample(self, bufs: _Buffers, image: np.ndarray, region: Region) -> np.ndarray:
        """The region as (height, width, 4) uint16: each channel's value times 256 (8.8 fixed point)."""
        height, width = self.height, self.width
        h, w = image.shape[:2]
        if h < 2 or w < 2:  # two pixels each way for the neighbours: repeat the edge (as the sampling does)
            image = np.pad(image, ((0, max(0, 2 - h)), (0, max(0, 2 - w)), (0, 0)), mode="edge")
            h, w = image.shape[:2]
        # Output pixel (i, j)'s centre in the image, as sample indices (pixel centres at k + 0.5):
        # x = ox + ax * j + bx * i, y = oy + ay * j + by * i.
        cos, sin = math.cos(region.rotation), math.sin(region.rotation)
        sx, sy = region.width / width, region.height / height
        ax, ay, bx, by = cos * sx, sin * sx, -sin * sy, cos * sy
        dx, dy = (0.5 - width / 2) * sx, (0.5 - height / 2) * sy
        ox = region.x - 0.5 + cos * dx - sin * dy
        oy = region.y - 0.5 + sin * dx + cos * dy
        far_x, far_y = ax * (width - 1), bx * (height - 1)
        xs = (ox, ox + far_x, ox + far_y, ox + far_x + far_y)
        far_x, far_y = ay * (width - 1), by * (height - 1)
        ys = (oy, oy + far_x, oy + far_y, oy + far_x + far_y)
        lo_x, hi_x = _clamp(min(xs), -1.0, w + 1.0), _clamp(max(xs), -1.0, w + 1.0)
        lo_y, hi_y = _clamp(min(ys), -1.0, h + 1.0), _clamp(max(ys), -1.0, h + 1.0)
        # The bounding box of the samples and their right and lower neighbours, in the image.
        x0 = min(max(math.floor(lo_x), 0), w - 2)
        x1 = min(max(math.floor(hi_x) + 2, x0 + 2), w)
        y0 = min(max(math.floor(lo_y), 0), h - 2)
        y1 = min(max(math.floor(hi_y) + 2, y0 + 2), h)
        bw, bh = x1 - x0, y1 - y0
        source = self._pack(bufs, image, x0, y0, bw, bh)

        x, y = bufs.x, bufs.y
        np.add(bufs.columns * np.float32(ax * _ONE), (bufs.rows * np.float32(bx * _ONE)
                                                       + np.float32((ox - x0) * _ONE))[:, None], out=x)
        np.add(bufs.columns * np.float32(ay * _ONE), (bufs.rows * np.float32(by * _ONE)
                                                       + np.float32((oy - y0) * _ONE))[:, None], out=y)
        # Positions are affine: inside the box at the 4 corners means inside everywhere.
        if not (lo_x >= x0 and hi_x <= x1 - 1 and lo_y >= y0 and hi_y <= y1 - 1):
            np.maximum(x, np.float32(0), out=x)
            np.minimum(x, np.float32((bw - 1) * _ONE), out=x)
            np.maximum(y, np.float32(0), out=y)
            np.minimum(y, np.float32((bh - 1) * _ONE), out=y)
        whole, index, weights = bufs.whole, bufs.index, bufs.weights
        np.copyto(whole, x, casting="unsafe")  # >= 0: truncation is floor
        np.copyto(index, y, casting="unsafe")
        index >>= _FRAC
        index *= bw
        _weights(whole, weights)
        whole >>= _FRAC
        index += whole
        # The pixel, then its right, lower and lower right neighbours. The indices lie in the box
        # by construction; mode="clip" because numpy buffers ``out`` in the default mode.
        pixels = bufs.pixels
        np.take(source, index, out=pixels[0], mode="clip")
        np.take(source[1:], index, out=pixels[1], mode="clip")
        np.take(source[bw:], index, out=pixels[2], mode="clip")
        np.take(source[bw + 1:], index, out=pixels[3], mode="clip")
        lanes = bufs.lanes
        np.copyto(lanes, pixels.view(np.uint8).reshape(lanes.shape))  # each byte in a uint16 lane
        n = height * width * 4
        top, right, bottom, corner = lanes.reshape(4, n)
        w, iw = weights.view(np.uint16).reshape(2, n)
        top *= iw
        right *= w
        top += right
        top += _ROUND
        top >>= _SHIFT
        bottom *= iw
        corner *= w
        bottom += corner
        bottom += _ROUND
        bottom >>= _SHIFT
        np.copyto(whole, y, casting="unsafe")
        _weights(whole, weights)  # down
        top *= iw
        bottom *= w
        top += bottom  # at most 255 * 256: no lane overflows
        return lanes[0]

    @staticmethod
    def _pack(bufs: _Buffers, image: np.ndarray, x0: int, y0: int, bw: int, bh: int) -> np.ndarray:
        """The box's pixels as one uint32 each (R, G, B, and a byte not used), one row of padding after."""
        h, w = image.shape[:2]
        source = bufs.source_buffer((bh + 1) * bw + 1)
        box = source[:bh * bw].reshape(bh, bw)
        if image.dtype == np.uint8 and image.flags.c_contiguous and (y0 + bh < h or x0 + bw < w):
            # Straight from the image: the last pixel's 4-byte read would go one byte past its end.
            np.copyto(box, np.ndarray((bh, bw), np.uint32, buffer=image, offset=(y0 * w + x0) * 3,
                                      strides=(w * 3, 3)))
            return source
        raw = bufs.raw_buffer(bh * bw * 3 + 1)
        rgb = raw[:bh * bw * 3].reshape(bh, bw, 3)
        part = image[y0:y0 + bh, x0:x0 + bw]
        if part.dtype == np.uint8:
            np.copyto(rgb, part)
        else:  # 0-255 in another dtype: sampled at 8 bits, as the uint8 pictures are
            np.copyto(rgb, np.clip(np.rint(part), 0, 255), casting="unsafe")
        np.copyto(box, np.ndarray((bh, bw), np.uint32, buffer=raw, strides=(bw * 3, 3)))
        return source


def crop(image: np.ndarray, region: "Region", height: int, width: int) -> np.ndarray:
    """The ``region`` of ``image`` (H, W, 3) resampled upright to (height, width, 3) float32, 0-255.

    Bilinear, edges repeated, as :class:`Warp` (a new array each call).
    """
    return Warp(height, width).tensor(image, region, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))[0].copy()
