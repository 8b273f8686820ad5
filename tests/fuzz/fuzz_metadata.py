"""TFLite Metadata reader: ``tfedge.metadata.read_metadata(bytes)``, its associated-files ZIP and labels.

Only ModelError (naming the damaged field) may come out of a damaged model.
"""

from __future__ import annotations

from _harness import model_seeds

from tfedge.errors import ModelError
from tfedge.metadata import read_metadata

ALLOWED: tuple[type[BaseException], ...] = (ModelError,)


def seeds() -> list[bytes]:
    """The suite's models that carry metadata (labels ZIP, normalization, image properties)."""
    return model_seeds("tfedge/digits_labels.tflite", "mediapipe/face_detection_short_range.tflite",
                       "litert-testdata/with_metadata.tflite", "litert-testdata/add.tflite")


def one_input(data: bytes) -> None:
    """Read the metadata, and its labels and files as an app would."""
    metadata = read_metadata(data)
    if metadata is not None:
        metadata.to_dict()
