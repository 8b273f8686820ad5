"""Rotated crops for the landmark models: bilinear sampling of an image region in fixed point.

A landmark model's input is a rotated square of the image resampled to, say, 192 x 192.
Per frame the work is done once, at the input's size only, in as few numpy passes as
possible, each over contiguous int32/uint32/float32 arrays (numpy's SIMD loops; int64
arithmetic, uint32 -> float casts, short last axes and arithmetic into strided arrays are
several times slower per element):

- only the region's bounding box of the image is touched: its RGB pixels are read as one
  ``uint32`` each (a 4-byte read every 3 bytes: the 4th byte is the next pixel's red,
  never used), so one gather fetches a whole pixel;
- sample positions are affine in the output's row and column: one outer sum per axis, in
  float32, in 1/256 pixel units plus a half, then one cast to int32 (truncation: rounded
  to 1/256 of a pixel); the low 8 bits are the bilinear weights, the rest the pixel;
- the 4 neighbours are 4 gathers of one index (the right and lower neighbours are the same
  index into the buffer shifted by 1 and by one row);
- the blend runs on whole uint32 pixels, no per-lane weights: red and blue masked into two
  16-bit lanes (``p & 0x00FF00FF``: red is the low byte on a little-endian host, as all of
  tfedge's targets are), green left in place (``p & 0xFF00``); each times
  ``256 - w`` plus its neighbour times ``w`` (at most 255 * 256 per lane: no carries), red
  and blue rounded back to whole levels between the rows, green keeps its fraction (room
  in 32 bits); red and blue end in 8.8 fixed point, green in 8.16 (MediaPipe's CPU path, OpenCV's
  ``warpPerspective`` on the 8-bit image, keeps 1/32 of a pixel and rounds to whole
  levels);
- the input's normalization: the three channels as int32, converted, scaled and offset
  in one call each, then one strided copy per channel into the interleaved output.

Where OpenCV imports (``cv2``, which many camera apps already use), ``cv2.warpAffine`` does the
crop instead, as MediaPipe's own CPU path does: 8-bit bilinear, positions kept to 1/32 of a
pixel, levels rounded to whole ones; 2-4x faster than the numpy passes (OpenCV 4.11-5.1). Only the
normalization is then numpy's (one pass over the output). ``Warp(..., opencv=False)`` keeps
numpy (what the native binaries, which leave OpenCV out, always run).

Every buffer is made once per output size and thread (fresh arrays of these sizes cost more
in page faults than the arithmetic), and most hold two things in turn: 48 bytes of scratch
per output pixel besides the output's 12.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from .landmarks import Region

__all__ = ["Warp", "crop"]

_FRAC = 8  # fraction bits of a sample position: the weights are 0..255 of 256
_ONE = 1 << _FRAC
_RB = np.uint32(0x00FF00FF)  # red and blue of a packed pixel, each in its own 16-bit lane
_G = np.uint32(0x0000FF00)  # green, left in place
_ROUND = np.uint32(0x00800080)  # half a level in both lanes
_LOW16 = np.uint32(0xFFFF)
_SIXTEEN = np.uint32(16)
_EIGHT = np.uint32(8)
_UNITS = (1 << 8, 1 << 16, 1 << 8)  # red, green, blue: 8.8, 8.16 and 8.8 fixed point


class _Buffers:
    """One thread's arrays for one output size (48 bytes of scratch per output pixel)."""

    def __init__(self, height: int, width: int) -> None:
        m = height * width
        self.columns = np.arange(width, dtype=np.float32)
        self.rows = np.arange(height, dtype=np.float32)
        self.parts = np.empty((2, height + width), np.float32)  # each axis' row and column terms
        # (x, y) positions in float32, then the neighbours' green; (x, y) in 1/256 pixels,
        # their whole parts, the weights 256 - w, then the floats.
        self.fy = np.empty((2, m), np.uint32)
        self.xy = np.empty((4, m), np.int32)  # rows 2 and 3: the weights w (across, down)
        # The gathers' index, then the right neighbours' green (intp is 4 or 8 bytes).
        self.right = np.empty((2, m), np.uint32)
        self.index = self.right.reshape(-1).view(np.intp)[:m]
        # The 4 neighbours (upper left, lower left, upper right, lower right) as packed pixels,
        # then red and blue in 16-bit lanes, then red, green and blue as int32.
        self.rb = np.empty((4, m), np.uint32)
        self.out = np.empty((1, height, width, 3), np.float32)
        self.scale = np.empty((3, 1), np.float32)
        self.offset = np.empty((3, 1), np.float32)
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


_CV_MAX_SIDE = 32767  # warpAffine keeps coordinates in 16 bits: a larger image takes the numpy path


def _opencv() -> Any:
    """OpenCV's module, or None when ``cv2`` does not import."""
    try:
        import cv2
    except Exception:  # noqa: BLE001 - not installed, or a broken install (a missing libGL: ImportError, OSError)
        return None
    return cv2 if callable(getattr(cv2, "warpAffine", None)) else None


def _clamp(value: float, low: float, high: float) -> float:
    """``value`` within [low, high]; NaN gives ``low``."""
    return low if not value >= low else (high if value > high else value)


class Warp:
    """Samples rotated regions of images to (height, width, 3), bilinear, edges repeated.

    One per model input; thread-safe (each thread has its own buffers). The arrays returned
    are those buffers: use them before the same thread's next call.

    Args:
        height, width: The output's size (the model's input).
        opencv: None: OpenCV's ``warpAffine`` for uint8 images when ``cv2`` imports, else
            numpy; False: numpy; True: OpenCV (an ``InputError`` when it does not import).

    Raises:
        InputError: ``opencv=True`` without OpenCV.
    """

    def __init__(self, height: int, width: int, *, opencv: Optional[bool] = None) -> None:
        self.height, self.width = height, width
        self._local = threading.local()
        self._cv2: Any = None if opencv is False else _opencv()
        if opencv and self._cv2 is None:
            raise InputError("opencv=True needs OpenCV, which does not import here: pip install "
                             "opencv-python-headless (or pass opencv=None to use it only when present).")

    @property
    def opencv(self) -> bool:
        """Whether uint8 images are cropped by OpenCV's ``warpAffine``."""
        return self._cv2 is not None

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
        height, width = self.height, self.width
        h, w = image.shape[:2]
        ax, ay, bx, by, ox, oy = _affine(region, height, width)
        if (self._cv2 is not None and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
                and image.strides[1:] == (3, 1) and image.strides[0] > 0 and max(h, w) < _CV_MAX_SIDE):
            return self._opencv_tensor(image, (ax, bx, ox, ay, by, oy), scale, offset)
        bufs = self._buffers()
        if h < 2 or w < 2:  # two pixels each way for the neighbours: repeat the edge (as the sampling does)
            image = np.pad(image, ((0, max(0, 2 - h)), (0, max(0, 2 - w)), (0, 0)), mode="edge")
            h, w = image.shape[:2]
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
        # Positions in 1/256 pixels, plus a half so that the cast (truncation) rounds: per axis
        # a row term and a column term. Affine: inside the box at the 4 corners means inside
        # everywhere, else each position is clamped to the box.
        parts = bufs.parts
        for k, (a, b, o) in enumerate(((ax, bx, ox - x0), (ay, by, oy - y0))):
            np.multiply(bufs.rows, np.float32(b * _ONE), out=parts[k, :height])
            parts[k, :height] += np.float32(o * _ONE + 0.5)
            np.multiply(bufs.columns, np.float32(a * _ONE), out=parts[k, height:])
        limits = None
        if not (lo_x >= x0 and hi_x <= x1 - 1 and lo_y >= y0 and hi_y <= y1 - 1):
            limits = np.float32((bw - 1) * _ONE), np.float32((bh - 1) * _ONE)
        bufs.scale[:, 0] = [float(v) / unit for v, unit in zip(scale, _UNITS)]
        bufs.offset[:, 0] = offset
        self._sample(bufs, source, bw, limits, any(offset))
        return bufs.out

    def _opencv_tensor(self, image: np.ndarray, matrix: Tuple[float, ...], scale: Sequence[Any],
                       offset: Sequence[Any]) -> np.ndarray:
        """The crop by ``cv2.warpAffine`` (8-bit, edges repeated), then scaled and offset per channel."""
        cv2 = self._cv2
        local = self._local
        pixels: Optional[np.ndarray] = getattr(local, "pixels", None)
        if pixels is None:
            local.pixels = pixels = np.empty((self.height, self.width, 3), np.uint8)
            local.out = np.empty((1, self.height, self.width, 3), np.float32)
        out = local.out
        cv2.warpAffine(image, np.array(matrix, np.float64).reshape(2, 3), (self.width, self.height), dst=pixels,
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        scales, offsets = [float(v) for v in scale], [float(v) for v in offset]
        if scales[0] == scales[1] == scales[2]:  # one pass over a contiguous array (not per channel)
            np.multiply(pixels, np.float32(scales[0]), out=out[0], dtype=np.float32)
        else:
            np.multiply(pixels, np.array(scales, np.float32), out=out[0], dtype=np.float32)
        if any(offsets):
            out += np.array(offsets, np.float32)
        return out

    def _sample(self, bufs: _Buffers, source: np.ndarray, bw: int,
                limits: Optional[Tuple[np.floating, np.floating]], add: bool) -> None:
        """Sample, blend, scale and write the output."""
        height, width = self.height, self.width
        position = bufs.fy.view(np.float32)
        parts = bufs.parts
        for k in range(2):
            np.add(parts[k, height:], parts[k, :height, None], out=position[k].reshape(height, width))
            if limits is not None:
                np.clip(position[k], np.float32(0), limits[k], out=position[k])
        xy, weights, index = bufs.xy[:2], bufs.xy[2:], bufs.index
        np.copyto(xy, position, casting="unsafe")
        np.bitwise_and(xy, _ONE - 1, out=weights)  # w, across and down
        xy >>= _FRAC  # whole pixels
        x, y = xy
        y *= bw
        np.add(y, x, out=index)
        iw, weights = xy.view(np.uint32), weights.view(np.uint32)
        np.subtract(_ONE, weights, out=iw)  # 256 - w
        # The pixel, its lower, right and lower right neighbours. The indices lie in the box
        # by construction; mode="clip" because numpy buffers ``out`` in the default mode.
        rb = bufs.rb
        for k, shift in enumerate((0, bw, 1, bw + 1)):
            np.take(source[shift:], index, out=rb[k], mode="clip")
        # Across: left * (256 - w) + right * w, each lane at most 255 * 256 (no carry between
        # lanes); red and blue rounded back to 8 bits for the step down, green kept (room in
        # 32 bits). Green: the left pair in fy, the right pair (a product) in index's bytes.
        g, right = bufs.fy, bufs.right
        np.bitwise_and(rb[:2], _G, out=g)
        g *= iw[0]
        np.bitwise_and(rb[2:], _G, out=right)
        right *= weights[0]
        g += right
        rb &= _RB
        rb[:2] *= iw[0]
        rb[2:] *= weights[0]
        rb[:2] += rb[2:]
        upper = rb[:2]
        upper += _ROUND
        upper >>= _EIGHT
        upper &= _RB
        # Down: the same between the rows; green ends at most 255 << 24.
        for lanes in (rb, g):
            lanes[0] *= iw[1]
            lanes[1] *= weights[1]
            lanes[0] += lanes[1]
        # Red, green, blue as int32 (converted to float32 by SIMD, unlike uint32): red and blue
        # in 8.8 fixed point, green in 8.16; then floats, scaled, offset, in the weights' block.
        np.bitwise_and(rb[0], _LOW16, out=rb[1])
        np.right_shift(rb[0], _SIXTEEN, out=rb[3])
        np.right_shift(g[0], _EIGHT, out=rb[2])
        floats = bufs.xy[:3].view(np.float32)
        np.copyto(floats, rb[1:].view(np.int32), casting="unsafe")
        floats *= bufs.scale
        if add:
            floats += bufs.offset
        # One strided copy per channel: numpy is slow over a last axis of 3, and slower still
        # doing arithmetic into a strided array.
        out = bufs.out.reshape(-1, 3)
        for c in range(3):
            np.copyto(out[:, c], floats[c])

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


def _affine(region: "Region", height: int, width: int) -> Tuple[float, float, float, float, float, float]:
    """(ax, ay, bx, by, ox, oy): output pixel (row i, column j)'s centre in the image, as sample indices.

    Pixel centres at k + 0.5, so a sample index is x - 0.5: x = ox + ax * j + bx * i,
    y = oy + ay * j + by * i (OpenCV's inverse map, whose pixel centres are whole numbers).
    """
    cos, sin = math.cos(region.rotation), math.sin(region.rotation)
    sx, sy = region.width / width, region.height / height
    dx, dy = (0.5 - width / 2) * sx, (0.5 - height / 2) * sy
    return (cos * sx, sin * sx, -sin * sy, cos * sy,
            region.x - 0.5 + cos * dx - sin * dy, region.y - 0.5 + sin * dx + cos * dy)


def crop(image: np.ndarray, region: "Region", height: int, width: int, *, opencv: Optional[bool] = None) -> np.ndarray:
    """The ``region`` of ``image`` (H, W, 3) resampled upright to (height, width, 3) float32, 0-255.

    Bilinear, edges repeated, as :class:`Warp` (a new array each call).
    """
    return Warp(height, width, opencv=opencv).tensor(image, region, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))[0].copy()
