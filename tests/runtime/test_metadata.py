"""tfedge.metadata: standard TFLite Metadata of real models, damaged metadata, tfedge info."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from support import model_path

from tfedge import Interpreter, ModelError
from tfedge.cli import main
from tfedge.metadata import AssociatedFile, Normalization, read_metadata

DATA = Path(__file__).resolve().parents[1] / "data"
FACE = DATA / "mediapipe" / "face_detection_short_range.tflite"
SELFIE = DATA / "mediapipe" / "selfie_segmentation.tflite"
DIGITS = DATA / "tfedge" / "digits_labels.tflite"
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def test_mediapipe_segmenter() -> None:
    meta = read_metadata(SELFIE.read_bytes())
    assert meta is not None
    assert meta.name == "ImageSegmenter"
    assert meta.description.startswith("Semantic image segmentation predicts whether each pixel")
    (image,) = meta.inputs
    assert (image.name, image.content, image.color_space) == ("image", "image", "RGB")
    assert image.normalization == Normalization(mean=(0.0,), std=(255.0,))
    assert (image.stats_min, image.stats_max) == ((0.0,), (1.0,))
    (mask,) = meta.outputs
    assert (mask.name, mask.content, mask.color_space) == ("segmentation_masks", "image", "GRAYSCALE")
    assert mask.labels == ("selfie",) and mask.value_range == (1, 2)
    assert mask.associated_files[0].type == "TENSOR_AXIS_LABELS"
    assert meta.files == {"labels.txt": b"selfie\n"}


def test_mediapipe_face_detector() -> None:
    meta = read_metadata(FACE.read_bytes())
    assert meta is not None and meta.name == "Short Range Face Detection"
    assert meta.inputs[0].normalization == Normalization(mean=(127.5,), std=(127.5,))
    assert [t.name for t in meta.outputs] == ["raw boxes/keypoints", "scores"]
    assert meta.files == {} and all(not t.labels for t in meta.outputs)


def test_written_by_tfedge_convert() -> None:
    meta = read_metadata(DIGITS.read_bytes())
    assert meta is not None
    assert (meta.name, meta.version, meta.author, meta.license, meta.min_parser_version) == (
        "Digits CNN", "1", "tfedge tests", "Apache-2.0", "1.0.0")
    assert meta.description == "Handwritten digit classifier (scikit-learn's 8x8 digits, pixels 0..16)."
    (image,) = meta.inputs
    assert (image.name, image.content, image.color_space) == ("image", "image", "GRAYSCALE")
    assert image.normalization == Normalization(mean=(0.0,), std=(16.0,))
    (scores,) = meta.outputs
    assert scores.name == "output_0" and scores.labels == DIGIT_NAMES
    assert scores.labels_by_locale == {"": DIGIT_NAMES}
    assert scores.associated_files == (AssociatedFile(
        name="labels.txt", type="TENSOR_AXIS_LABELS",
        description="Labels for the classes of this output, one per line."),)
    assert json.loads(json.dumps(meta.to_dict()))["files"] == {"labels.txt": 50}


def test_interpreter_metadata_is_lazy_and_cached() -> None:
    interp = Interpreter(DIGITS)
    first = interp.metadata
    assert first is not None and first.outputs[0].labels == DIGIT_NAMES
    assert interp.metadata is first
    assert Interpreter(model_path("add.tflite")).metadata is None


def test_models_without_metadata() -> None:
    # with_metadata.tflite has other metadata entries (min_runtime_version ...), not TFLITE_METADATA.
    assert read_metadata(model_path("with_metadata.tflite").read_bytes()) is None
    assert read_metadata(model_path("add.tflite").read_bytes()) is None


def _metadata_span(model: bytes) -> tuple[int, int]:
    """(start, end) of the ModelMetadata flatbuffer in a model (it has the file identifier M001)."""
    at = model.index(b"M001") - 4
    size = struct.unpack_from("<I", model, at - 4)[0]  # the [ubyte] vector's length
    return at, at + size


def test_damaged_field_is_named_and_the_model_still_runs(tmp_path: Path) -> None:
    model = bytearray(DIGITS.read_bytes())
    name_at = model.index(b"Digits CNN") - 4
    model[name_at:name_at + 4] = struct.pack("<I", 0xFFFFFF)
    with pytest.raises(ModelError) as exc:
        read_metadata(bytes(model))
    assert str(exc.value) == ("TFLite metadata field ModelMetadata.name: 16777215 items of 1 bytes overrun the "
                              "buffer. The model's metadata is damaged; write it again (tfedge-convert --labels "
                              "...) or strip it.")
    interp = Interpreter(bytes(model))
    x = np.zeros((1, 8, 8, 1), np.float32)
    assert interp.run(x)["output_0"].shape == (1, 10)
    with pytest.raises(ModelError, match="ModelMetadata.name"):
        interp.metadata  # noqa: B018


def test_missing_associated_file_is_named() -> None:
    model = DIGITS.read_bytes()
    start, end = _metadata_span(model)
    damaged = model[:start] + model[start:end].replace(b"labels.txt", b"labelz.txt") + model[end:]
    with pytest.raises(ModelError) as exc:
        read_metadata(damaged)
    assert str(exc.value).startswith(
        "TFLite metadata field ModelMetadata.subgraph_metadata[0].output_tensor_metadata[0].associated_files[0]: "
        "names associated file 'labelz.txt', which the model does not carry (packed: 'labels.txt').")


def test_every_byte_flip_gives_metadata_or_model_error() -> None:
    model = DIGITS.read_bytes()
    start, end = _metadata_span(model)
    outcomes = {"ok": 0, "error": 0}
    for i in range(start, end):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(model)
            damaged[i] ^= flip
            try:
                read_metadata(bytes(damaged))
            except ModelError as exc:
                assert str(exc).startswith("TFLite metadata field "), exc
                outcomes["error"] += 1
            else:
                outcomes["ok"] += 1
    assert outcomes["error"] > 100 and outcomes["ok"] > 100, outcomes


def test_truncated_zip_is_model_error() -> None:
    model = DIGITS.read_bytes()
    zip_at = model.rindex(b"PK\x03\x04")
    damaged = model[:zip_at + 10] + model[-22:]  # the end record points to a central directory that is gone
    with pytest.raises(ModelError, match=r"^TFLite metadata field \(associated files ZIP\): cannot be read"):
        read_metadata(damaged)


def test_info_shows_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(DIGITS)]) == 0
    out = capsys.readouterr().out
    assert "metadata   name 'Digits CNN', version '1', author 'tfedge tests', license 'Apache-2.0'" in out
    assert ("  output output_0                     feature; 10 labels (zero, one, two, three, four, ...)"
            in out.splitlines())
    assert main(["info", str(DIGITS), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["outputs"][0]["labels"] == list(DIGIT_NAMES)
    assert info["metadata"]["inputs"][0]["normalization"] == {"mean": [0.0], "std": [16.0]}
    assert main(["info", str(model_path("add.tflite")), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"] is None


def test_info_with_damaged_metadata_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = bytearray(DIGITS.read_bytes())
    name_at = model.index(b"Digits CNN") - 4
    model[name_at:name_at + 4] = struct.pack("<I", 0xFFFFFF)
    path = tmp_path / "damaged.tflite"
    path.write_bytes(bytes(model))
    assert main(["info", str(path)]) == 0
    assert "metadata   unreadable: TFLite metadata field ModelMetadata.name:" in capsys.readouterr().out
