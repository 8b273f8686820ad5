"""Sample data for calibration and validation, checked against the model's inputs.

Data comes as a ``.npy`` file (one input), a ``.npz`` file keyed by input name, a
directory of images, or (from Python) an array, a mapping, or any iterable of samples.
Whatever the form, it ends as one array per input whose first axis counts samples, and
it is checked against the signature before any conversion starts.
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, Optional

import numpy as np

from tfedge.errors import ConversionError

from .config import NORMALIZATION_PRESETS
from .sources import InputSpec

__all__ = ["IMAGE_SUFFIXES", "Samples", "load_labels", "load_samples"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class Samples:
    """One array per input, the first axis counting samples.

    Attributes:
        arrays: ``{input name: array of shape (N, ...)}``, in the model's dtypes.
        origin: Where they came from, as the report says it.
    """

    arrays: Mapping[str, np.ndarray]
    origin: str
    #: Samples fed at once (a model converted with a static batch N takes N at a time).
    batch: int = 1

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def part(self, start: int, stop: int | None, origin: str | None = None) -> Samples:
        """Samples ``start:stop``."""
        return Samples({k: v[start:stop] for k, v in self.arrays.items()}, origin or self.origin, self.batch)

    def one_by_one(self) -> Iterator[dict[str, np.ndarray]]:
        """Each sample as ``{name: array with a batch axis of 1}`` (of ``batch``; a last short group is left out)."""
        for i in range(0, len(self) - self.batch + 1, self.batch):
            yield {k: v[i : i + self.batch] for k, v in self.arrays.items()}


def load_samples(
    data: Any,
    inputs: Sequence[InputSpec],
    *,
    limit: int,
    what: str = "Calibration data",
    normalization: str = "unit",
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    progress: bool = False,
    stream: Any = None,
) -> Samples:
    """Read ``data`` and check it against ``inputs``.

    Args:
        data: A path (.npy, .npz, image directory), an array, a mapping by input
            name, a ``ray.data.Dataset`` (columns named like the inputs, or one
            column for a one-input model; other columns are ignored), or an iterable
            of samples (arrays, sequences in input order, or mappings), each with or
            without a batch axis.
        inputs: The model's inputs.
        limit: Use at most this many samples.
        what: How messages name the data (``Calibration data``, ``Evaluation data``).
        normalization: Preset for image directories (see ``NORMALIZATION_PRESETS``).
        mean: Pixel mean for image directories; overrides the preset.
        std: Pixel standard deviation for image directories; overrides the preset.
        progress: Show a progress bar while reading images.
        stream: Where the progress bar goes (default stderr).

    Raises:
        ConversionError: unreadable data, or a wrong input name, rank, shape or dtype
            (the message names the input, the expected and the given spec).
    """
    origin = "given arrays"
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        origin = str(path)
        if not path.exists():
            raise ConversionError(f"{what} {str(path)!r} does not exist.")
        if path.is_dir():
            arrays = _read_images(path, inputs, limit, what, normalization, mean, std, progress, stream)
            origin = f"images in {path}"
        elif path.suffix == ".npy":
            arrays = {_single(inputs, what, path.name).name: _np_array(path, what)}
        elif path.suffix == ".npz":
            loaded = _np_load(path, what)
            if not isinstance(loaded, dict):
                raise ConversionError(
                    f"{what} {str(path)!r} holds one array (a .npy file), not a .npz archive of arrays by input "
                    "name; name it .npy, or save it with np.savez(path, input_name=array)."
                )
            arrays = loaded
        else:
            raise ConversionError(
                f"{what} {str(path)!r} is not a .npy file, a .npz file or a directory of images."
            )
    elif _is_ray_dataset(data):
        arrays = _from_ray(data, inputs, limit, what)
        origin = "a Ray Dataset"
    elif isinstance(data, np.ndarray):
        arrays = {_single(inputs, what, "an array").name: data}
    elif isinstance(data, Mapping):
        arrays = {str(k): np.asarray(v) for k, v in data.items()}
    elif isinstance(data, Iterable):
        arrays = _from_iterable(data, inputs, limit, what)
        origin = "given iterable"
    else:
        raise ConversionError(
            f"{what} must be a path, an array, a mapping or an iterable, got {type(data).__name__}."
        )
    # A 0-d array cannot be sliced; _check names its shape.
    arrays = {k: v[:limit] if np.ndim(v) else v for k, v in arrays.items()}
    return Samples(_check(arrays, inputs, what), origin)


def _is_ray_dataset(data: Any) -> bool:
    """Whether ``data`` is a ``ray.data.Dataset``, without importing Ray."""
    return any(c.__module__.startswith("ray.data") and c.__name__ == "Dataset" for c in type(data).__mro__)


def _from_ray(data: Any, inputs: Sequence[InputSpec], limit: int, what: str) -> dict[str, np.ndarray]:
    """The first ``limit`` rows of a Ray Dataset, materialized as one array per input."""
    try:
        batch = data.take_batch(limit, batch_format="numpy")
    except ValueError as exc:  # Ray: "The dataset is empty."
        raise ConversionError(f"{what}: the Ray Dataset cannot be read: {exc}") from exc
    names = [s.name for s in inputs]
    if all(n in batch for n in names):
        return {n: np.asarray(batch[n]) for n in names}
    if len(names) == 1 and len(batch) == 1:
        return {names[0]: np.asarray(next(iter(batch.values())))}
    columns = ", ".join(repr(c) for c in batch) or "none"
    raise ConversionError(
        f"{what}: the Ray Dataset has columns {columns}; the model takes {', '.join(repr(n) for n in names)}. "
        "Rename the columns like the inputs (ds.rename_columns({...}))."
    )


def _np_load(path: Path, what: str) -> np.ndarray | dict[str, np.ndarray]:
    """np.load without pickles: a .npy's array, or a .npz's arrays by name; ConversionError on a bad file."""
    try:
        _check_sizes(path, what)
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return np.asarray(loaded)
        with loaded:  # a .npz reads its members only when asked: read them here, where errors are caught
            return {k: loaded[k] for k in loaded.files}
    # numpy and zipfile report a damaged file in many ways: OSError, ValueError (a bad header), EOFError,
    # zipfile.BadZipFile, zlib.error (bad compressed data), NotImplementedError (a compression it lacks),
    # tokenize.TokenError and SyntaxError (a header that is not a Python literal), TypeError (a header
    # literal Python cannot build, such as a set of dicts: ``{{'descr': ...}}``).
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
            SyntaxError, tokenize.TokenError, OverflowError, TypeError) as exc:
        raise ConversionError(f"{what} {str(path)!r} cannot be read by numpy: {exc}") from exc
    except MemoryError as exc:
        raise ConversionError(
            f"{what} {str(path)!r} holds more than this machine's memory can load ({exc or 'MemoryError'}); "
            "give fewer samples."
        ) from exc


#: How many bytes one compressed byte can become (deflate's limit), to bound what a .npz member holds.
_DEFLATE_RATIO = 1032


def _check_claim(stream: IO[bytes], available: int, path: Path, what: str, name: str) -> None:
    """ConversionError for an array header claiming more bytes than ``available`` (numpy allocates them first)."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(stream)
    claimed = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    if claimed > available:
        raise ConversionError(
            f"{what} {str(path)!r}: array {name!r} claims shape {shape} {dtype.name} ({claimed} bytes) but holds "
            f"at most {available} bytes; the file is damaged. Save it again."
        )


def _check_sizes(path: Path, what: str) -> None:
    """Check every array header in a .npy or .npz file against the bytes the file can hold."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        # np.load's own test of the format (the first bytes), not zipfile's (which finds an archive's
        # end record anywhere in the last 64 KiB, so a .npy carrying one would skip the .npy check).
        if stream.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            stream.seek(0)
            _check_claim(stream, size, path, what, path.stem)
            return
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: _DEFLATE_RATIO}.get(info.compress_type)
            available = info.file_size if ratio is None else min(info.file_size, size * ratio)
            with archive.open(info) as member:
                _check_claim(member, available, path, what, info.filename[:-4])


def _np_array(path: Path, what: str) -> np.ndarray:
    """The array of a .npy file; ConversionError on a bad file or a .npz archive."""
    loaded = _np_load(path, what)
    if isinstance(loaded, dict):
        raise ConversionError(
            f"{what} {str(path)!r} is a .npz archive of arrays ({', '.join(loaded) or 'none'}), not a .npy array; "
            "name it .npz, or save one array with np.save."
        )
    return loaded


def _single(inputs: Sequence[InputSpec], what: str, given: str) -> InputSpec:
    """The model's only input; ConversionError when it has several."""
    if len(inputs) != 1:
        names = ", ".join(repr(s.name) for s in inputs)
        raise ConversionError(
            f"{what}: {given} holds one input, but the model takes {len(inputs)} ({names}). "
            "Use a .npz file (or a mapping) keyed by input name."
        )
    return inputs[0]


def _from_iterable(data: Iterable[Any], inputs: Sequence[InputSpec], limit: int, what: str) -> dict[str, np.ndarray]:
    """Stack up to ``limit`` samples from an iterable (arrays, sequences or mappings)."""
    names = [s.name for s in inputs]
    ranks = {s.name: len(s.shape) for s in inputs}
    collected: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for item in islice(iter(data), limit):
        if isinstance(item, Mapping):
            sample = {str(k): np.asarray(v) for k, v in item.items()}
        elif isinstance(item, (list, tuple)):
            if len(item) != len(names):
                raise ConversionError(
                    f"{what}: a sample has {len(item)} arrays; the model takes {len(names)} "
                    f"({', '.join(repr(n) for n in names)})."
                )
            sample = {n: np.asarray(v) for n, v in zip(names, item)}
        else:
            sample = {_single(inputs, what, "a sample array").name: np.asarray(item)}
        for name, value in sample.items():
            if name not in collected:
                raise _unknown(name, inputs, what)
            # A sample may come with or without its batch axis of 1.
            collected[name].append(value[None] if value.ndim == ranks[name] - 1 else value)
    if not any(collected.values()):
        raise ConversionError(f"{what} is empty: the iterable yielded no samples.")
    out = {}
    for name, values in collected.items():
        if values:
            shapes = {v.shape[1:] for v in values}
            if len(shapes) > 1:
                raise ConversionError(f"{what}: samples for input {name!r} have different shapes {sorted(shapes)}.")
            out[name] = np.concatenate(values)
    return out


def _unknown(name: str, inputs: Sequence[InputSpec], what: str) -> ConversionError:
    """The error for data under a name the model does not have."""
    known = ", ".join(repr(s.name) for s in inputs)
    return ConversionError(f"{what} has an array for input {name!r}, which the model does not have. Available: {known}.")


def _check(arrays: Mapping[str, np.ndarray], inputs: Sequence[InputSpec], what: str) -> dict[str, np.ndarray]:
    """Arrays in the model's dtypes, after checking names, ranks, shapes, dtypes and counts."""
    by_name = {s.name: s for s in inputs}
    for name in arrays:
        if name not in by_name:
            raise _unknown(name, inputs, what)
    missing = [s.name for s in inputs if s.name not in arrays]
    if missing:
        raise ConversionError(f"{what} has no array for input(s) {', '.join(repr(m) for m in missing)}.")
    out: dict[str, np.ndarray] = {}
    for spec in inputs:
        value = np.asarray(arrays[spec.name])
        given = f"{tuple(value.shape)} {value.dtype.name}"
        expected = f"{spec.describe()} (the first axis counts samples)"
        fits = value.ndim == len(spec.shape) and all(
            d is None or i == 0 or d == v for i, (d, v) in enumerate(zip(spec.shape, value.shape))
        )
        if not fits:
            raise ConversionError(f"{what} for input {spec.name!r} has shape {given}; the model expects {expected}.")
        if value.shape[0] == 0:
            raise ConversionError(f"{what} for input {spec.name!r} holds no samples (shape {given}).")
        kind, want = value.dtype.kind, spec.dtype.kind
        if want == "f" and kind == "f":
            value = value.astype(spec.dtype, copy=False)
        elif kind != want or (want in "iu" and value.dtype != spec.dtype):
            hint = " Normalize images to floats first (e.g. --normalization unit)." if want == "f" and kind in "iu" else ""
            raise ConversionError(
                f"{what} for input {spec.name!r} has dtype {value.dtype.name}; the model expects {expected}.{hint}"
            )
        out[spec.name] = value
    counts = {k: v.shape[0] for k, v in out.items()}
    if len(set(counts.values())) > 1:
        raise ConversionError(f"{what} has different sample counts per input: {counts}.")
    return out


def _read_images(
    path: Path,
    inputs: Sequence[InputSpec],
    limit: int,
    what: str,
    normalization: str,
    mean: Optional[Sequence[float]],
    std: Optional[Sequence[float]],
    progress: bool,
    stream: Any,
) -> dict[str, np.ndarray]:
    """Images under ``path`` resized to the input's (H, W), normalized as asked."""
    spec = _single(inputs, what, f"the image directory {str(path)!r}")
    if len(spec.shape) != 4 or spec.shape[3] not in (1, 3) or spec.shape[1] is None or spec.shape[2] is None:
        raise ConversionError(
            f"{what}: images need an input of shape (batch, height, width, 1 or 3); "
            f"input {spec.name!r} is {spec.describe()}. Pass a .npy file instead."
        )
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ConversionError(
            f"{what} directory {str(path)!r} has no images ({', '.join(IMAGE_SUFFIXES)})."
        )
    from PIL import Image

    preset_mean, preset_std = NORMALIZATION_PRESETS[normalization]
    m = np.asarray(mean if mean is not None else preset_mean, np.float32)
    s = np.asarray(std if std is not None else preset_std, np.float32)
    if np.any(s == 0):
        raise ConversionError("--std must not be 0.")
    height, width, channels = spec.shape[1], spec.shape[2], spec.shape[3]
    # Image.Resampling since Pillow 9.1 (its stubs lack the old Image.BILINEAR); pyproject allows 9.0.
    bilinear = getattr(Image, "Resampling", Image).BILINEAR
    images = []
    for file in _progress(files, progress, stream, "reading images"):
        try:
            with Image.open(file) as img:
                _check_pixels(file, img.size, what)
                img = img.convert("L" if channels == 1 else "RGB").resize((width, height), bilinear)
                pixels = np.asarray(img, np.float32)
        # Pillow's decoders report a damaged file with many types (OSError, ValueError, SyntaxError,
        # struct.error, EOFError, DecompressionBombError, ...): all mean the file cannot be read.
        except Exception as exc:  # noqa: BLE001
            raise ConversionError(f"{what}: image {str(file)!r} cannot be read: {exc}") from exc
        images.append(pixels.reshape(height, width, channels))
    batch = (np.stack(images) - m) / s
    if spec.dtype.kind != "f":
        raise ConversionError(f"{what}: input {spec.name!r} is {spec.dtype.name}; image directories feed float inputs.")
    return {spec.name: batch.astype(spec.dtype)}


#: Pixels an image may declare per byte of its file, beyond a floor of 4 MP: a camera JPEG decodes
#: to a few pixels per byte, a decompression bomb (a 200-byte WebP declaring 100 MP) to millions.
_PIXELS_PER_BYTE, _PIXELS_FLOOR = 32, 4 << 20


def _check_pixels(file: Path, size: tuple[int, int], what: str) -> None:
    """ConversionError before decoding an image that declares far more pixels than its file can hold."""
    width, height = size
    allowed = max(_PIXELS_FLOOR, _PIXELS_PER_BYTE * file.stat().st_size)
    if width * height > allowed:
        raise ConversionError(
            f"{what}: image {str(file)!r} declares {width}x{height} pixels, more than its "
            f"{file.stat().st_size} bytes can hold (at most {allowed} pixels); it is damaged or a "
            "decompression bomb. Resize or re-save it."
        )


def _progress(items: Iterable[Any], enabled: bool, stream: Any, desc: str, total: int | None = None) -> Iterable[Any]:
    """``items`` wrapped in a tqdm bar on ``stream`` when enabled and tqdm is installed."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, total=total, file=stream, leave=False, unit="sample")


def load_labels(data: Any, count: int) -> np.ndarray:
    """Integer class labels for the evaluation samples (a .npy path or an array).

    Raises:
        ConversionError: unreadable, not integers, or not one label per sample.
    """
    if isinstance(data, (str, os.PathLike)):
        if not Path(data).is_file():
            raise ConversionError(f"Evaluation labels {str(data)!r} do not exist.")
        labels = _np_array(Path(data), "Evaluation labels")
    else:
        labels = np.asarray(data)
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ConversionError(
            f"Evaluation labels must be integer class ids of shape (N,), got {labels.shape} {labels.dtype.name}."
        )
    if labels.shape[0] < count:
        raise ConversionError(f"Evaluation labels: {labels.shape[0]} labels for {count} samples; give one per sample.")
    return labels[:count]
