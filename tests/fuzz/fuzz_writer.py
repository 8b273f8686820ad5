"""The metadata writer's inputs: a labels file and ``--mean``/``--std`` text, written into a model.

The input is ``mean \\0 std \\0 labels-file``; the target parses mean and std as tfedge-convert
does, writes the metadata into add.tflite (``model_info`` + ``add_metadata``), and reads it back
with ``tfedge.metadata.read_metadata``: what was written must read back the same (labels,
normalization). Only ConversionError may come out; a model the writer makes and the reader
refuses is a finding.
"""

from __future__ import annotations

import argparse
import math
import struct

from _harness import model_seeds, scratch_dir
from tensorflow.lite.python import schema_py_generated  # noqa: F401 - add_metadata's import, done once here

from tfedge.converters.cli import _floats
from tfedge.converters.metadata import add_metadata, model_info
from tfedge.errors import ConversionError
from tfedge.metadata import read_metadata
from tfedge.tasks.classify import read_labels

ALLOWED: tuple[type[BaseException], ...] = (ConversionError,)

_MODEL = model_seeds("litert-testdata/add.tflite")[0]  # its output has 3 classes
_LABELS = scratch_dir("fuzz-writer-") / "labels.txt"


def seeds() -> list[bytes]:
    """The normalizations the presets write, and labels files as users write them."""
    return [
        b"127.5\0" b"127.5\0" b"red\ngreen\nblue\n",
        b"123.675,116.28,103.53\0" b"58.395,57.12,57.375\0" b"cat\ndog\nbird",
        b"0\0" b"255\0" b"\xc3\xa9t\xc3\xa9\r\nhiver\r\nprintemps\r\n\r\n",
        b"\0\0a\nb\nc\n",
    ]


def _numbers(text: bytes) -> tuple[float, ...] | None:
    """``--mean``/``--std`` as the command line parses them; None when absent or a usage error."""
    if not text:
        return None
    try:
        return _floats(text.decode("utf-8", "replace"))
    except argparse.ArgumentTypeError:  # tfedge-convert exits 2 with its usage message
        return None


def one_input(data: bytes) -> None:
    """Write the metadata ``data`` describes into a model and check it reads back the same."""
    mean_text, _, rest = data.partition(b"\0")
    std_text, _, labels_file = rest.partition(b"\0")
    mean, std = _numbers(mean_text), _numbers(std_text)
    _LABELS.write_bytes(labels_file)
    info = model_info(str(_LABELS), {"name": "fuzz"}, mean, std)
    assert info is not None
    written = read_metadata(add_metadata(_MODEL, info))
    assert written is not None, "the written model has no metadata"
    assert list(written.outputs[0].labels) == read_labels(str(_LABELS))
    norm = written.inputs[0].normalization
    if mean is None and std is None:
        assert norm is None
        return
    assert norm is not None
    for given, got, default in ((mean, norm.mean, 0.0), (std, norm.std, 1.0)):
        expected = [struct.unpack("<f", struct.pack("<f", v))[0] for v in (given or (default,))]
        assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(expected, got)), (given, got)
        assert len(expected) == len(got), (given, got)
