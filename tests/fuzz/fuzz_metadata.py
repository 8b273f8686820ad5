"""TFLite Metadata reader: ``tfedge.metadata.read_metadata(bytes)``, its associated-files ZIP and labels.

Only ModelError (naming the damaged field) may come out of a damaged model.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from _harness import model_seeds

from tfedge.errors import ModelError
from tfedge.metadata import read_metadata

ALLOWED: tuple[type[BaseException], ...] = (ModelError,)


def seeds() -> list[bytes]:
    """Models with metadata: labels ZIP, normalization, image properties, no metadata at all.

    ``seeds/add_labels.tflite`` (1.2 KB: add.tflite with name, mean/std and three labels, written
    by ``tfedge.converters.metadata.add_metadata``) comes first, and again with its ZIP deflated:
    the fuzzer mutates a 1 KB file far faster than the 100 KB digits model.
    """
    small = (Path(__file__).parent / "seeds" / "add_labels.tflite").read_bytes()
    end = small.index(b"PK\x03\x04")  # where the appended ZIP starts
    with zipfile.ZipFile(io.BytesIO(small)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return [small, small[:end] + out.getvalue(), *model_seeds(
        "tfedge/digits_labels.tflite", "mediapipe/face_detection_short_range.tflite",
        "litert-testdata/with_metadata.tflite")]


def one_input(data: bytes) -> None:
    """Read the metadata, and its labels and files as an app would."""
    metadata = read_metadata(data)
    if metadata is not None:
        metadata.to_dict()
