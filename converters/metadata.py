"""Write standard TFLite Metadata into a converted model: name, author, license, labels, normalization.

What TFLite Support's metadata writers produce, without tflite-support: a ``ModelMetadata``
flatbuffer (``metadata_schema.fbs``, identifier ``M001``) built with the ``flatbuffers``
package, stored in a new buffer the model's ``TFLITE_METADATA`` entry points to, and the
labels as an associated file in a ZIP appended to the model. The model's own tables are
rebuilt with TensorFlow's schema object API, so its tensors, weights and ops stay as
they were (the model runs bit-identically). ``tfedge.metadata.read_metadata`` reads it back.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import flatbuffers
import numpy as np

from tfedge.errors import ConversionError, InputError
from tfedge.metadata import METADATA_NAME
from tfedge.tasks.classify import read_labels

__all__ = ["ModelInfo", "add_metadata", "build_metadata"]

LABELS_FILE = "labels.txt"
_MIN_PARSER_VERSION = "1.0.0"  # labels and normalization are in the first metadata schema
_AXIS_LABELS = 2  # AssociatedFileType.TENSOR_AXIS_LABELS
_FEATURE, _IMAGE = 1, 2  # ContentProperties
_RGB, _GRAYSCALE = 1, 2
_NORMALIZATION = 1  # ProcessUnitOptions


@dataclass(frozen=True)
class ModelInfo:
    """What the metadata says; empty fields are left out."""

    name: str = ""
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    labels: Optional[tuple[str, ...]] = None
    mean: Optional[tuple[float, ...]] = None
    std: Optional[tuple[float, ...]] = None


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]


def _string(b: flatbuffers.Builder, text: str) -> int:
    return b.CreateString(text) if text else 0


def _offsets(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return int(b.EndVector())


def _floats(b: flatbuffers.Builder, values: Sequence[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return int(b.EndVector())


def _table(b: flatbuffers.Builder, fields: Sequence[tuple[int, str, Any]]) -> int:
    """A table from (slot, kind, value) fields; offsets must be built before."""
    b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
    for slot, kind, value in fields:
        if kind == "offset":
            if value:
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "byte":
            b.PrependInt8Slot(slot, value, 0)
        elif kind == "ubyte":
            b.PrependUint8Slot(slot, value, 0)
    return int(b.EndObject())


def _input_metadata(b: flatbuffers.Builder, tensor: _Tensor, info: ModelInfo) -> int:
    name = _string(b, tensor.name)
    image = len(tensor.shape) == 4 and tensor.shape[3] in (1, 3)
    if image:
        props = _table(b, [(0, "byte", _RGB if tensor.shape[3] == 3 else _GRAYSCALE)])
        content = _table(b, [(0, "ubyte", _IMAGE), (1, "offset", props)])
    else:
        props = _table(b, [])
        content = _table(b, [(0, "ubyte", _FEATURE), (1, "offset", props)])
    units = 0
    if info.mean is not None or info.std is not None:
        mean = _floats(b, info.mean if info.mean is not None else (0.0,))
        std = _floats(b, info.std if info.std is not None else (1.0,))
        options = _table(b, [(0, "offset", mean), (1, "offset", std)])
        unit = _table(b, [(0, "ubyte", _NORMALIZATION), (1, "offset", options)])
        units = _offsets(b, [unit])
    return _table(b, [(0, "offset", name), (3, "offset", content), (4, "offset", units)])


def _output_metadata(b: flatbuffers.Builder, tensor: _Tensor, labelled: bool) -> int:
    name = _string(b, tensor.name)
    props = _table(b, [])
    content = _table(b, [(0, "ubyte", _FEATURE), (1, "offset", props)])
    files = 0
    if labelled:
        file_name = b.CreateString(LABELS_FILE)
        about = b.CreateString("Labels for the classes of this output, one per line.")
        labels_file = _table(b, [(0, "offset", file_name), (1, "offset", about), (2, "byte", _AXIS_LABELS)])
        files = _offsets(b, [labels_file])
    return _table(b, [(0, "offset", name), (3, "offset", content), (6, "offset", files)])


def build_metadata(info: ModelInfo, inputs: Sequence[_Tensor], outputs: Sequence[_Tensor], labelled: int) -> bytes:
    """The ModelMetadata flatbuffer; ``labelled`` is the output the labels belong to (-1: none)."""
    b = flatbuffers.Builder(1024)
    ins = [_input_metadata(b, t, info) for t in inputs]
    outs = [_output_metadata(b, t, i == labelled) for i, t in enumerate(outputs)]
    subgraph = _table(b, [(2, "offset", _offsets(b, ins)), (3, "offset", _offsets(b, outs))])
    fields = [(0, "offset", _string(b, info.name)), (1, "offset", _string(b, info.description)),
              (2, "offset", _string(b, info.version)), (3, "offset", _offsets(b, [subgraph])),
              (4, "offset", _string(b, info.author)), (5, "offset", _string(b, info.license)),
              (7, "offset", b.CreateString(_MIN_PARSER_VERSION))]
    b.Finish(_table(b, fields), file_identifier=b"M001")
    return bytes(b.Output())


def _labelled_output(outputs: Sequence[_Tensor], labels: Sequence[str]) -> int:
    """The output whose last dimension has one entry per label."""
    fits = [i for i, t in enumerate(outputs) if t.shape and t.shape[-1] == len(labels)]
    if not fits:
        shapes = ", ".join(f"{t.name} {t.shape}" for t in outputs)
        raise ConversionError(f"{len(labels)} labels, but no output has {len(labels)} classes in its last "
                              f"dimension ({shapes}); give one label per class.")
    return fits[0]


def add_metadata(model: bytes, info: ModelInfo) -> bytes:
    """``model`` with ``info`` as its TFLITE_METADATA (replacing any) and the labels packed."""
    from tensorflow.lite.python import schema_py_generated as schema

    if info.labels is not None and not info.labels:
        raise ConversionError("The labels file is empty; give one label per line, one per class.")
    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    graph = tree.subgraphs[0]
    specs = {}
    # The signature's names are the ones tfedge's run() and the metadata readers show.
    if tree.signatureDefs:
        sig = tree.signatureDefs[0]
        specs = {t.tensorIndex: t.name.decode() for t in list(sig.inputs or []) + list(sig.outputs or [])}

    def tensor(i: int) -> _Tensor:
        t = graph.tensors[i]
        return _Tensor(specs.get(i, t.name.decode() if t.name else ""), tuple(int(d) for d in t.shape))

    inputs = [tensor(i) for i in graph.inputs]
    outputs = [tensor(i) for i in graph.outputs]
    labelled = -1 if info.labels is None else _labelled_output(outputs, info.labels)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(build_metadata(info, inputs, outputs, labelled), dtype=np.uint8)
    entries = [m for m in (tree.metadata or []) if m.name.decode() != METADATA_NAME]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(tree.buffers)
    tree.buffers.append(buffer)
    tree.metadata = entries + [entry]
    b = flatbuffers.Builder(len(model) + 4096)
    b.Finish(tree.Pack(b), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(b.Output()))
    if info.labels is not None:
        out.seek(0, io.SEEK_END)
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(zipfile.ZipInfo(LABELS_FILE, date_time=(1980, 1, 1, 0, 0, 0)),
                             "".join(f"{label}\n" for label in info.labels))
    return out.getvalue()


def read_labels_file(path: str) -> tuple[str, ...]:
    """Labels from a text file, one per line (trailing blank lines dropped), as tfedge reads them."""
    try:
        return tuple(read_labels(path) or ())
    except InputError as exc:
        raise ConversionError(str(exc)) from None


_INFO_KEYS = ("name", "description", "version", "author", "license")


def model_info(labels: Any, metadata: Optional[dict[str, str]], mean: Optional[tuple[float, ...]],
               std: Optional[tuple[float, ...]]) -> Optional[ModelInfo]:
    """What convert()'s ``labels=``/``metadata=`` ask to write (None: nothing); mean/std go in when set."""
    fields = dict(metadata or {})
    unknown = sorted(set(fields) - set(_INFO_KEYS))
    if unknown:
        raise ConversionError(f"Unknown metadata field(s) {', '.join(unknown)}. Available: {', '.join(_INFO_KEYS)}.")
    if labels is None and not any(fields.values()):
        return None
    _check_normalization(mean, std)
    if isinstance(labels, (str, bytes)) or hasattr(labels, "__fspath__"):
        labels = read_labels_file(str(labels))
    elif labels is not None:
        labels = tuple(str(label) for label in labels)
    return ModelInfo(labels=labels, mean=mean, std=std, **{k: str(v) for k, v in fields.items() if v})


_FLOAT32_MAX = 3.4028234663852886e38


def _check_normalization(mean: Optional[tuple[float, ...]], std: Optional[tuple[float, ...]]) -> None:
    """ConversionError for a mean/std the metadata cannot hold or a reader would refuse."""
    for name, values in (("mean", mean), ("std", std)):
        bad = [v for v in values or () if not (math.isfinite(v) and abs(v) <= _FLOAT32_MAX)]
        if bad:
            raise ConversionError(f"--{name} {bad[0]} cannot be written: the metadata holds finite float32 numbers "
                                  f"(at most {_FLOAT32_MAX:.4g} in size).")
    if std is not None and any(v == 0 for v in std):
        raise ConversionError(f"--std {','.join(map(str, std))} holds a 0: pixels are divided by it; give non-zero values.")
    if mean and std and len(mean) != len(std) and 1 not in (len(mean), len(std)):
        raise ConversionError(f"--mean has {len(mean)} values and --std {len(std)}: give one value, or one per channel "
                              "for both.")
