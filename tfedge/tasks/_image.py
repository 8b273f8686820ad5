"""Images for vision models: loading, bilinear resize and letterbox in numpy, normalization."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from ..errors import InputError
from ..interpreter import Interpreter, TensorSpec
from ..metadata import ModelMetadata

if TYPE_CHECKING:
    from ..pool import InterpreterPool

ImageLike = Union[np.ndarray, str, "os.PathLike[str]"]
# What a task runs: one Interpreter, or an InterpreterPool (the same reads: specs, metadata, run).
Model = Union[Interpreter, "InterpreterPool"]
_UINT8 = np.dtype(np.uint8)  # an identity test: comparing dtypes costs a conversion per call


def load_image(image: ImageLike) -> np.ndarray:
    """An (H, W, 3) array of 0-255 pixels: paths open with Pillow, arrays are read by rule.

    The rule, by dtype and range: integer pixels are 0-255; float pixels are [0, 1] when
    none is above 1.0 (``img / 255.``: scaled by 255 here), else 0-255. A batch axis of
    one, ``(1, H, W, 3)``, is dropped; grayscale ``(H, W)`` or ``(H, W, 1)`` gets 3 channels,
    RGBA loses its alpha.
    """
    if type(image) is np.ndarray and image.ndim == 3 and image.shape[2] == 3 and image.dtype is _UINT8 \
            and image.shape[0] and image.shape[1]:
        return image  # the common case, checked in a few attribute reads
    if isinstance(image, (str, os.PathLike)):
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise InputError(f"Reading {str(image)!r} needs Pillow: pip install pillow "
                             "(or pass the image as an (H, W, 3) array).") from None
        try:
            with Image.open(image) as img:
                return np.asarray(img.convert("RGB"))
        except FileNotFoundError:
            raise InputError(f"Image {str(image)!r} does not exist.") from None
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(f"{str(image)!r} is not an image Pillow can read ({type(exc).__name__}).") from None
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]  # (1, H, W, C): the same image as without the batch axis
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim == 3 and 0 in array.shape:
        raise InputError(f"The image is empty (shape {array.shape}); give an image of at least 1x1 pixels.")
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise InputError(f"An image must be an (H, W, 3) array, got shape {array.shape}.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"An image must be uint8 or float pixels, got dtype {array.dtype}.")
    if array.dtype.kind == "f":
        top = float(np.max(array))
        if not np.isfinite(top) or not np.isfinite(float(np.min(array))):
            raise InputError("The image holds NaN or infinite pixels; give finite values (0-255, or [0, 1] floats).")
        if top <= 1.0:
            array = array * np.float32(255.0)  # [0, 1] floats, as img / 255. gives
    return array


@lru_cache(maxsize=64)
def _axis(src: int, dst: int, offset: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps (i0, i1, weight of i1) for ``dst`` outputs: ``size`` of them cover ``src`` from ``offset``."""
    scale = src / size
    pos = (np.arange(dst, dtype=np.float64) - offset + 0.5) * scale - 0.5  # half-pixel centers
    pos = np.clip(pos, 0, src - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, src - 1)
    w = (pos - i0).astype(np.float32)
    return i0, i1, w


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H, W, C) resized to (height, width, C) float32, half-pixel bilinear (as TF/OpenCV)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image.astype(np.float32, copy=False)
    return _taps(image, _corners(h, w, height, width))


@lru_cache(maxsize=64)
def _corners(h: int, w: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices of the 4 source pixels of each output pixel (4, height, width), and the weights."""
    y0, y1, wy = _axis(h, height, 0, height)
    x0, x1, wx = _axis(w, width, 0, width)
    index = np.stack([y0[:, None] * w + x0, y0[:, None] * w + x1, y1[:, None] * w + x0, y1[:, None] * w + x1])
    return index, wy.reshape(height, 1), wx


def _taps(image: np.ndarray, corners: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Bilinear interpolation: one gather of the 4 corners (source dtype), then float math on the output size.

    The math runs on (height, width * C) rows: numpy's broadcasting over a last axis of
    3 channels is several times slower than over whole rows.
    """
    index, wy, wx = corners
    height, width, channels = index.shape[1], index.shape[2], image.shape[2]
    flat = np.ascontiguousarray(image).reshape(-1, channels)
    p = flat.take(index, axis=0).astype(np.float32).reshape(4, height, width * channels)
    wxc = _repeat(wx.tobytes(), width, channels)
    top = p[0] + (p[1] - p[0]) * wxc
    bottom = p[2] + (p[3] - p[2]) * wxc
    return (top + (bottom - top) * wy).reshape(height, width, channels)


@lru_cache(maxsize=64)
def _repeat(wx: bytes, width: int, channels: int) -> np.ndarray:
    """Column weights repeated per channel, as one (1, width * channels) row."""
    return np.repeat(np.frombuffer(wx, dtype=np.float32), channels).reshape(1, width * channels)


@dataclass(frozen=True)
class Letterbox:
    """How an image was fit into a model's input: ``input = image * scale + (pad_x, pad_y)``."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    image_width: int
    image_height: int

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input-pixel coordinates (..., 2k) as x, y pairs back to image pixels."""
        n = xy.shape[-1] // 2
        pad = np.array([self.pad_x, self.pad_y] * n, dtype=np.float32)
        scale = np.array([1.0 / self.scale_x, 1.0 / self.scale_y] * n, dtype=np.float32)
        return (xy - pad) * scale


@dataclass(frozen=True)
class ImageInput:
    """What a vision model's first input wants, worked out once per interpreter."""

    spec: TensorSpec
    height: int
    width: int
    channels: int
    mean: np.ndarray
    std: np.ndarray
    raw: bool  # integer pixels of the model's own type (uint8, or int8 as pixel - 128): run() takes them as quantized
    # One mean and std for every channel of a float 3-channel input: pixel * scale + offset,
    # as float32 scalars made once (each numpy scalar made per call costs microseconds).
    uniform: bool = False
    scale: Any = None
    offset: Any = None


def image_input(interp: Model, mean: Any = None, std: Any = None) -> ImageInput:
    """The image input of ``interp``: size, and the normalization from ``mean/std``, else the metadata."""
    specs = interp.input_specs()
    if len(specs) != 1 or len(specs[0].shape) != 4 or specs[0].shape[3] not in (1, 3):
        got = ", ".join(f"{s.name} {s.describe()}" for s in specs) or "none"
        raise InputError(f"Expected a model with one image input of shape (1, H, W, 3), got: {got}.")
    spec = specs[0]
    meta = _metadata(interp)
    norm = meta.inputs[0].normalization if meta is not None and meta.inputs else None
    raw = False
    if mean is None and std is None:
        if norm is not None:
            mean, std = norm.mean, norm.std
        elif spec.dtype in (np.uint8, np.int8):
            mean, std, raw = 0.0, 1.0, True
        else:
            mean, std = 0.0, 255.0  # no metadata, float input: [0, 1], the most common convention
    mean_a = np.asarray(1.0 * np.asarray(0.0 if mean is None else mean), np.float32).reshape(-1)
    std_a = np.asarray(1.0 * np.asarray(1.0 if std is None else std), np.float32).reshape(-1)
    if not np.all(std_a != 0) or len(mean_a) not in (1, 3) or len(std_a) not in (1, 3):
        raise InputError(f"mean and std must be 1 or 3 numbers, std nonzero; got mean {mean}, std {std}.")
    uniform = not raw and len(mean_a) == 1 and len(std_a) == 1 and spec.shape[3] == 3
    return ImageInput(spec=spec, height=spec.shape[1], width=spec.shape[2], channels=spec.shape[3],
                      mean=mean_a, std=std_a, raw=raw, uniform=uniform,
                      scale=np.float32(1.0 / std_a[0]), offset=np.float32(-mean_a[0] / std_a[0]))


def _metadata(interp: Model) -> Optional[ModelMetadata]:
    """The interpreter's metadata, or None when it has none or it is unreadable (the model still runs)."""
    try:
        return interp.metadata
    except ValueError:
        return None


@lru_cache(maxsize=32)
def _fit_taps(h: int, w: int, height: int, width: int, letterbox: bool) -> tuple[Any, ...]:
    """Resize taps and placement of an (h, w) image in a (height, width) input."""
    if letterbox:
        scale = min(height / h, width / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    else:
        nh, nw = height, width
    top, left = (height - nh) // 2, (width - nw) // 2
    box = Letterbox(scale_x=nw / w, scale_y=nh / h, pad_x=float(left), pad_y=float(top),
                    image_width=w, image_height=h)
    return box, (top, left, nh, nw), _corners(h, w, nh, nw)


_buffers = threading.local()


def _buffer(info: ImageInput) -> tuple[np.ndarray, np.ndarray]:
    """A float32 (1, H, W, C) array owned by this thread and reused across calls, and its image view."""
    key = (info.height, info.width, info.channels)
    held = getattr(_buffers, "arrays", None)
    if held is None:
        held = _buffers.arrays = {}
    pair = held.get(key)
    if pair is None:
        out = np.empty((1, *key), dtype=np.float32)
        pair = held[key] = (out, out[0])
    return pair


def prepare(image: np.ndarray, info: ImageInput, *, letterbox: bool) -> tuple[np.ndarray, Letterbox]:
    """The model's input tensor for ``image`` and where the image landed in it.

    The tensor may be this thread's reused buffer: use it before the next call.
    """
    h, w = image.shape[:2]
    box, (top, left, nh, nw), taps = _fit_taps(h, w, info.height, info.width, letterbox)
    if info.uniform and h == info.height and w == info.width:
        # The image is the input's size: normalize into this thread's buffer, no allocation
        # (run() copies it into the model's tensor before returning). A cast copy, then
        # in-place float32 math: cheaper than one multiply that casts (numpy buffers a
        # casting ufunc in small chunks); measured in benchmarks/tasks.py.
        out, view = _buffer(info)
        np.copyto(view, image, casting="unsafe")
        out *= info.scale
        out += info.offset
        return out, box
    if (nh, nw) == (h, w):
        pixels = image if info.raw else image.astype(np.float32)
        if info.uniform:
            pixels *= info.scale  # in place on our own copy
            pixels += info.offset
            return _pad(pixels, info, top, left, float(info.offset)), box
    else:
        pixels = _taps(image, taps)
    if info.channels == 1:
        pixels = pixels[..., :1] * 0.299 + pixels[..., 1:2] * 0.587 + pixels[..., 2:3] * 0.114
    if info.raw:
        values = np.clip(np.rint(pixels), 0, 255) if pixels.dtype.kind == "f" else pixels
        if info.spec.dtype == np.int8:
            values = values.astype(np.int16) - 128
        values = values.astype(info.spec.dtype)
        fill = 0.0 if info.spec.dtype == np.uint8 else -128.0
    else:
        # One scale and offset per channel (scalars when uniform: broadcasting over 3 channels is slow).
        if len(info.mean) == 1 and len(info.std) == 1:
            values = pixels * info.scale + info.offset
        else:
            scale = 1.0 / info.std
            values = pixels * scale + (-info.mean * scale)
        values = values.astype(np.float32, copy=False)
        fill = float(((0.0 - info.mean) / info.std)[0])  # black padding, normalized
    if (nh, nw) == (info.height, info.width):
        return values[None], box
    return _pad(values, info, top, left, fill), box


def _pad(values: np.ndarray, info: ImageInput, top: int, left: int, fill: float) -> np.ndarray:
    """``values`` placed at (top, left) in a batch-of-one input filled with ``fill``."""
    out = np.full((1, info.height, info.width, info.channels), fill, dtype=values.dtype)
    out[0, top:top + values.shape[0], left:left + values.shape[1]] = values
    return out

