"""The standard TFLite Metadata of a model: labels, normalization, image and score options.

A model carries its metadata as a ``ModelMetadata`` flatbuffer (``metadata_schema.fbs``,
file identifier ``M001``) in the buffer its ``TFLITE_METADATA`` metadata entry points to,
and its associated files (labels, calibration tables) as a ZIP archive appended to the
model. :func:`read_metadata` reads both in pure Python, every offset bounds-checked: a
damaged table raises :class:`~tfedge.errors.ModelError` naming the field, and never
keeps the model itself from running (``Interpreter`` reads metadata only when asked).
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import ModelError

__all__ = [
    "AssociatedFile",
    "ModelMetadata",
    "Normalization",
    "ScoreCalibration",
    "TensorMetadata",
    "read_metadata",
]

METADATA_NAME = "TFLITE_METADATA"
_IDENTIFIER = b"M001"
_MAX_FILE = 64 << 20  # an associated file larger than this is not a label list
_HINT = "The model's metadata is damaged; write it again (tfedge-convert --labels ...) or strip it."

FILE_TYPES = ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
              "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE")
COLOR_SPACES = ("UNKNOWN", "RGB", "GRAYSCALE")
SCORE_TRANSFORMS = ("IDENTITY", "LOG", "INVERSE_LOGISTIC")
_BOX_TYPES = ("UNKNOWN", "BOUNDARIES", "UPPER_LEFT", "CENTER")
_COORDINATE_TYPES = ("RATIO", "PIXEL")
# Union tags of ContentProperties and ProcessUnitOptions.
_IMAGE, _BOUNDING_BOX, _AUDIO = 2, 3, 4
_NORMALIZATION, _CALIBRATION, _THRESHOLDING = 1, 2, 3


@dataclass(frozen=True)
class AssociatedFile:
    """A file the metadata names; its bytes are in :attr:`ModelMetadata.files` when packed."""

    name: str
    type: str = "UNKNOWN"
    description: str = ""
    locale: str = ""
    version: str = ""


@dataclass(frozen=True)
class Normalization:
    """``(x - mean) / std`` per channel, as the model was trained (one value: all channels)."""

    mean: Tuple[float, ...]
    std: Tuple[float, ...]


@dataclass(frozen=True)
class ScoreCalibration:
    """Per-class sigmoid calibration: ``scale / (1 + exp(-(slope * f(x) + offset)))``.

    ``parameters[i]`` is ``(scale, slope, offset, min_score)`` for class ``i`` (``min_score``
    NaN when absent), or None for a class that always gets ``default_score``.
    """

    transformation: str
    default_score: float
    parameters: Tuple[Optional[Tuple[float, float, float, float]], ...] = ()


@dataclass(frozen=True)
class TensorMetadata:
    """The metadata of one input or output tensor, in the model's tensor order."""

    name: str = ""
    description: str = ""
    dimension_names: Tuple[str, ...] = ()
    content: str = ""  # "feature", "image", "bounding_box", "audio" or "" when not said
    color_space: str = ""  # images: "RGB", "GRAYSCALE", "UNKNOWN"
    image_size: Optional[Tuple[int, int]] = None  # images: default (width, height)
    value_range: Optional[Tuple[int, int]] = None  # (min, max) of the values, e.g. class indices
    normalization: Optional[Normalization] = None
    stats_min: Tuple[float, ...] = ()
    stats_max: Tuple[float, ...] = ()
    labels: Tuple[str, ...] = ()  # TENSOR_AXIS_LABELS, the default (first) locale
    labels_by_locale: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    value_labels: Tuple[str, ...] = ()  # TENSOR_VALUE_LABELS (segmentation masks)
    score_calibration: Optional[ScoreCalibration] = None
    score_threshold: Optional[float] = None
    bounding_box: Optional[Dict[str, Any]] = None  # {"index", "type", "coordinate_type"}
    audio: Optional[Tuple[int, int]] = None  # (sample_rate, channels)
    associated_files: Tuple[AssociatedFile, ...] = ()


@dataclass(frozen=True)
class ModelMetadata:
    """What a model says about itself (first subgraph's tensors: the one apps run)."""

    name: str = ""
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    min_parser_version: str = ""
    inputs: Tuple[TensorMetadata, ...] = ()
    outputs: Tuple[TensorMetadata, ...] = ()
    associated_files: Tuple[AssociatedFile, ...] = ()
    files: Dict[str, bytes] = field(default_factory=dict, repr=False)  # the packed files by name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (associated files by name and size, not their bytes)."""
        data = asdict(self)
        data["files"] = {name: len(content) for name, content in self.files.items()}
        return data


def _fail(where: str, problem: str) -> ModelError:
    return ModelError(f"TFLite metadata field {where}: {problem}. {_HINT}")


class _Table:
    """One flatbuffer table at ``pos`` in ``buf``; every read is bounds-checked."""

    __slots__ = ("buf", "pos", "where", "_vt", "_vt_size")

    def __init__(self, buf: bytes, pos: int, where: str) -> None:
        self.buf, self.pos, self.where = buf, pos, where
        if pos < 0 or pos + 4 > len(buf):
            raise _fail(where, f"table offset {pos} is outside the {len(buf)}-byte buffer")
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        if vt < 0 or vt + 4 > len(buf):
            raise _fail(where, f"vtable offset {vt} is outside the {len(buf)}-byte buffer")
        size, obj_size = struct.unpack_from("<HH", buf, vt)
        if size < 4 or size % 2 or vt + size > len(buf) or pos + obj_size > len(buf):
            raise _fail(where, f"vtable at {vt} has a bad size ({size} bytes, object {obj_size})")
        self._vt, self._vt_size = vt, size

    def _field(self, slot: int, width: int, name: str) -> int:
        """Absolute position of a field, or 0 when absent."""
        at = 4 + 2 * slot
        if at + 2 > self._vt_size:
            return 0
        off = struct.unpack_from("<H", self.buf, self._vt + at)[0]
        if not off:
            return 0
        pos = self.pos + off
        if pos + width > len(self.buf):
            raise _fail(f"{self.where}.{name}", f"offset {pos} is outside the {len(self.buf)}-byte buffer")
        return pos

    def scalar(self, slot: int, code: str, name: str, default: Any = 0) -> Any:
        pos = self._field(slot, struct.calcsize(code), name)
        return struct.unpack_from("<" + code, self.buf, pos)[0] if pos else default

    def _target(self, slot: int, name: str) -> int:
        """Follow a uoffset field; 0 when absent."""
        pos = self._field(slot, 4, name)
        if not pos:
            return 0
        target = pos + struct.unpack_from("<I", self.buf, pos)[0]
        if target + 4 > len(self.buf):
            raise _fail(f"{self.where}.{name}", f"points to {target}, outside the {len(self.buf)}-byte buffer")
        return target

    def _vector(self, slot: int, name: str, width: int) -> tuple[int, int]:
        """(start, count) of a vector field; (0, 0) when absent."""
        at = self._target(slot, name)
        if not at:
            return 0, 0
        count = struct.unpack_from("<I", self.buf, at)[0]
        if at + 4 + count * width > len(self.buf):
            raise _fail(f"{self.where}.{name}", f"{count} items of {width} bytes overrun the buffer")
        return at + 4, count

    def string(self, slot: int, name: str) -> str:
        start, count = self._vector(slot, name, 1)
        try:
            return bytes(self.buf[start:start + count]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(f"{self.where}.{name}", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None

    def table(self, slot: int, name: str) -> _Table | None:
        at = self._target(slot, name)
        return _Table(self.buf, at, f"{self.where}.{name}") if at else None

    def tables(self, slot: int, name: str) -> list[_Table]:
        start, count = self._vector(slot, name, 4)
        out = []
        for i in range(count):
            pos = start + 4 * i
            out.append(_Table(self.buf, pos + struct.unpack_from("<I", self.buf, pos)[0], f"{self.where}.{name}[{i}]"))
        return out

    def numbers(self, slot: int, code: str, name: str) -> tuple[Any, ...]:
        start, count = self._vector(slot, name, struct.calcsize(code))
        return struct.unpack_from(f"<{count}{code}", self.buf, start) if count else ()

    def strings(self, slot: int, name: str) -> tuple[str, ...]:
        start, count = self._vector(slot, name, 4)
        out = []
        for i in range(count):
            pos = start + 4 * i
            at = pos + struct.unpack_from("<I", self.buf, pos)[0]
            if at + 4 > len(self.buf) or at + 4 + struct.unpack_from("<I", self.buf, at)[0] > len(self.buf):
                raise _fail(f"{self.where}.{name}[{i}]", "string overruns the buffer")
            n = struct.unpack_from("<I", self.buf, at)[0]
            try:
                out.append(bytes(self.buf[at + 4:at + 4 + n]).decode("utf-8"))
            except UnicodeDecodeError:
                raise _fail(f"{self.where}.{name}[{i}]", "not UTF-8 text") from None
        return tuple(out)


def _root(buf: bytes, where: str) -> _Table:
    if len(buf) < 8:
        raise _fail(where, f"{len(buf)} bytes is too short for a flatbuffer")
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0], where)


def _enum(names: tuple[str, ...], value: int, where: str) -> str:
    if not 0 <= value < len(names):
        raise _fail(where, f"unknown value {value} (known: {', '.join(names)})")
    return names[value]


def _metadata_buffer(model: bytes) -> bytes | None:
    """The bytes of the model's TFLITE_METADATA buffer, or None when it has none."""
    root = _root(model, "(model)")
    entries = root.tables(6, "metadata")
    buffers = root.tables(4, "buffers")
    for entry in entries:
        if entry.string(0, "name") != METADATA_NAME:
            continue
        index = entry.scalar(1, "I", "buffer")
        if index >= len(buffers):
            raise _fail(f"{entry.where}.buffer", f"index {index} is out of range ({len(buffers)} buffers)")
        buffer = buffers[index]
        offset, size = buffer.scalar(1, "Q", "offset"), buffer.scalar(2, "Q", "size")
        if offset > 1:  # large models keep buffers after the flatbuffer
            if offset + size > len(model):
                raise _fail(f"{buffer.where}.offset", f"{offset}+{size} is outside the {len(model)}-byte model")
            return bytes(model[offset:offset + size])
        start, count = buffer._vector(0, "data", 1)
        return bytes(model[start:start + count])
    return None


def _packed_files(model: bytes) -> dict[str, bytes]:
    """The ZIP appended to the model, by member name ({} when there is none)."""
    if b"PK\x05\x06" not in model[-(1 << 16) - 22:]:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            files = {}
            for info in archive.infolist():
                if info.file_size > _MAX_FILE:
                    raise _fail(f"associated file {info.filename!r}", f"{info.file_size} bytes is too large")
                files[info.filename] = archive.read(info)
            return files
    except ModelError:
        raise
    # zipfile reports a damaged archive in many ways: a bad seek (ValueError), a bad header
    # (struct.error), bad compressed data (zlib.error), an unknown method (NotImplementedError).
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError,
            struct.error, zlib.error) as exc:
        raise _fail("(associated files ZIP)", f"cannot be read ({exc})") from None


def _files(table: _Table, slot: int) -> tuple[AssociatedFile, ...]:
    out = []
    for t in table.tables(slot, "associated_files"):
        out.append(AssociatedFile(
            name=t.string(0, "name"), description=t.string(1, "description"),
            type=_enum(FILE_TYPES, t.scalar(2, "b", "type"), f"{t.where}.type"),
            locale=t.string(3, "locale"), version=t.string(4, "version")))
    return tuple(out)


def _lines(files: dict[str, bytes], f: AssociatedFile, where: str) -> tuple[str, ...]:
    if f.name not in files:
        known = ", ".join(repr(n) for n in files) or "none"
        raise _fail(where, f"names associated file {f.name!r}, which the model does not carry (packed: {known})")
    try:
        text = files[f.name].decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(where, f"associated file {f.name!r} is not UTF-8 text") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return tuple(lines)


def _calibration(options: _Table, lines: tuple[str, ...], where: str) -> ScoreCalibration:
    params: List[Optional[Tuple[float, float, float, float]]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            params.append(None)
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            values = []
        if len(values) not in (3, 4):
            raise _fail(where, f"calibration line {i + 1} is {line!r}, expected scale,slope,offset[,min_score]")
        params.append((values[0], values[1], values[2], values[3] if len(values) == 4 else math.nan))
    return ScoreCalibration(
        transformation=_enum(SCORE_TRANSFORMS, options.scalar(0, "b", "score_transformation"),
                             f"{options.where}.score_transformation"),
        default_score=options.scalar(1, "f", "default_score", 0.0), parameters=tuple(params))


def _tensor(t: _Table, files: dict[str, bytes]) -> TensorMetadata:
    values: dict[str, Any] = {
        "name": t.string(0, "name"), "description": t.string(1, "description"),
        "dimension_names": t.strings(2, "dimension_names"),
    }
    content = t.table(3, "content")
    if content is not None:
        kind = content.scalar(0, "B", "content_properties_type")
        props = content.table(1, "content_properties")
        values["content"] = {1: "feature", 2: "image", 3: "bounding_box", 4: "audio"}.get(kind, "")
        if props is not None and kind == _IMAGE:
            values["color_space"] = _enum(COLOR_SPACES, props.scalar(0, "b", "color_space"), f"{props.where}.color_space")
            size = props.table(1, "default_size")
            if size is not None:
                values["image_size"] = (size.scalar(0, "I", "width"), size.scalar(1, "I", "height"))
        elif props is not None and kind == _BOUNDING_BOX:
            values["bounding_box"] = {
                "index": list(props.numbers(0, "I", "index")),
                "type": _enum(_BOX_TYPES, props.scalar(1, "b", "type"), f"{props.where}.type"),
                "coordinate_type": _enum(_COORDINATE_TYPES, props.scalar(2, "b", "coordinate_type"),
                                         f"{props.where}.coordinate_type")}
        elif props is not None and kind == _AUDIO:
            values["audio"] = (props.scalar(0, "I", "sample_rate"), props.scalar(1, "I", "channels"))
        value_range = content.table(2, "range")
        if value_range is not None:
            values["value_range"] = (value_range.scalar(0, "i", "min"), value_range.scalar(1, "i", "max"))
    stats = t.table(5, "stats")
    if stats is not None:
        values["stats_max"], values["stats_min"] = stats.numbers(0, "f", "max"), stats.numbers(1, "f", "min")
    associated = _files(t, 6)
    values["associated_files"] = associated
    by_locale: dict[str, tuple[str, ...]] = {}
    for i, f in enumerate(associated):
        where = f"{t.where}.associated_files[{i}]"
        if f.type == "TENSOR_AXIS_LABELS":
            by_locale.setdefault(f.locale, _lines(files, f, where))
        elif f.type == "TENSOR_VALUE_LABELS" and "value_labels" not in values:
            values["value_labels"] = _lines(files, f, where)
    if by_locale:
        values["labels_by_locale"] = by_locale
        values["labels"] = next(iter(by_locale.values()))
    for unit in t.tables(4, "process_units"):
        kind = unit.scalar(0, "B", "options_type")
        options = unit.table(1, "options")
        if options is None:
            continue
        if kind == _NORMALIZATION:
            mean, std = options.numbers(0, "f", "mean"), options.numbers(1, "f", "std")
            if any(s == 0 for s in std) or (len(mean) != len(std) and 1 not in (len(mean), len(std))):
                raise _fail(f"{options.where}.std", f"mean {list(mean)} / std {list(std)} is no normalization")
            values["normalization"] = Normalization(mean=tuple(mean), std=tuple(std))
        elif kind == _CALIBRATION:
            table_file = next((f for f in associated if f.type == "TENSOR_AXIS_SCORE_CALIBRATION"), None)
            lines = () if table_file is None else _lines(files, table_file, f"{t.where}.associated_files")
            values["score_calibration"] = _calibration(options, lines, options.where)
        elif kind == _THRESHOLDING:
            values["score_threshold"] = options.scalar(0, "f", "global_score_threshold", 0.0)
    return TensorMetadata(**values)


def read_metadata(model: bytes) -> ModelMetadata | None:
    """The standard TFLite Metadata of a model (its bytes), or None when it has none.

    Raises:
        ModelError: The metadata (or the model's table pointing to it) is damaged; the
            message names the field.
    """
    model = bytes(model)
    buf = _metadata_buffer(model)
    if buf is None:
        return None
    if len(buf) >= 8 and buf[4:8] != _IDENTIFIER:
        raise _fail("(file identifier)", f"expected {_IDENTIFIER.decode()}, got {buf[4:8]!r}")
    root = _root(buf, "ModelMetadata")
    files = _packed_files(model)
    subgraphs = root.tables(3, "subgraph_metadata")
    inputs: tuple[TensorMetadata, ...] = ()
    outputs: tuple[TensorMetadata, ...] = ()
    if subgraphs:
        inputs = tuple(_tensor(t, files) for t in subgraphs[0].tables(2, "input_tensor_metadata"))
        outputs = tuple(_tensor(t, files) for t in subgraphs[0].tables(3, "output_tensor_metadata"))
    return ModelMetadata(
        name=root.string(0, "name"), description=root.string(1, "description"),
        version=root.string(2, "version"), author=root.string(4, "author"),
        license=root.string(5, "license"), min_parser_version=root.string(7, "min_parser_version"),
        inputs=inputs, outputs=outputs, associated_files=_files(root, 6), files=files)

