"""The converter's calibration and evaluation readers: ``.npy``, ``.npz``, image folders, labels.

The first byte picks the reader, the rest is the file: a ``.npy`` for a one-input model, a
``.npz`` for a two-input model, one image (its suffix picked by the second byte) in a folder,
or a ``.npy`` of evaluation labels. Only ConversionError may come out.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
from _harness import scratch_dir
from PIL import Image

from tfedge.converters.calibration import IMAGE_SUFFIXES, load_labels, load_samples
from tfedge.converters.sources import InputSpec
from tfedge.errors import ConversionError

ALLOWED: tuple[type[BaseException], ...] = (ConversionError,)

NPY, NPZ, IMAGES, LABELS = range(4)
_ONE = [InputSpec("x", (None, 4), np.dtype("float32"))]
_TWO = [InputSpec("a", (None, 2), np.dtype("float32")), InputSpec("b", (None, 3), np.dtype("int32"))]
_IMAGE = [InputSpec("image", (None, 8, 8, 3), np.dtype("float32"))]
_FOLDER = scratch_dir("fuzz-calibration-")


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _npz(compressed: bool, **arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(out, **arrays)
    return out.getvalue()


def _image(fmt: str, rng: np.random.Generator) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(out, format=fmt)
    return out.getvalue()


def seeds() -> list[bytes]:
    """Calibration files as users give them: arrays, archives, PNG/JPEG/BMP/GIF/WebP, labels."""
    rng = np.random.default_rng(0)
    out = [bytes([NPY]) + _npy(rng.random((3, 4), dtype=np.float32)),
           bytes([NPY]) + _npy(rng.random((2, 4)))]
    for compressed in (False, True):
        out.append(bytes([NPZ]) + _npz(compressed, a=rng.random((2, 2), dtype=np.float32),
                                       b=rng.integers(0, 9, (2, 3), dtype=np.int32)))
    for fmt in ("PNG", "JPEG", "BMP", "GIF", "WEBP"):
        suffix = IMAGE_SUFFIXES.index("." + fmt.lower().replace("jpeg", "jpg"))
        out.append(bytes([IMAGES, suffix]) + _image(fmt, rng))
    out.append(bytes([LABELS]) + _npy(np.array([1, 0, 2], np.int64)))
    return out


def one_input(data: bytes) -> None:
    """Read ``data[1:]`` with the reader ``data[0]`` picks, as tfedge-convert would."""
    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    if kind == IMAGES:
        suffix = IMAGE_SUFFIXES[body[0] % len(IMAGE_SUFFIXES)] if body else ".png"
        folder = _FOLDER / "images"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / f"sample{suffix}").write_bytes(body[1:])
        load_samples(folder, _IMAGE, limit=4)
        return
    path = _FOLDER / ("data.npz" if kind == NPZ else "data.npy")
    path.write_bytes(body)
    if kind == LABELS:
        load_labels(path, 2)
    else:
        load_samples(path, _TWO if kind == NPZ else _ONE, limit=4)
