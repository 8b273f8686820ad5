"""An independent reader, MediaPipe's, reads the metadata tfedge writes as tfedge does.

Runs in a venv of its own (mediapipe pins protobuf and numpy; it must not go into the
shared one): Python 3.11 and

    pip install --no-deps mediapipe==0.10.14
    pip install "protobuf>=4.25.3,<5" "opencv-python-headless<4.11" "numpy<2" matplotlib attrs absl-py flatbuffers pytest
    PYTHONPATH=. python -m pytest tests/metadata_reader -q

Elsewhere (no mediapipe) the module is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

mp_metadata = pytest.importorskip("mediapipe.tasks.python.metadata.metadata")

from tfedge.metadata import read_metadata  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
MODELS = [DATA / "tfedge" / "digits_labels.tflite", DATA / "mediapipe" / "selfie_segmentation.tflite",
          DATA / "mediapipe" / "face_detection_short_range.tflite"]


def _theirs(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    shown = mp_metadata.MetadataDisplayer.with_model_file(str(path))
    files = {name: shown.get_associated_file_buffer(name) for name in shown.get_packed_associated_file_list()}
    return json.loads(shown.get_metadata_json()), files


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_same_metadata_as_mediapipe_reads(path: Path) -> None:
    theirs, their_files = _theirs(path)
    ours = read_metadata(path.read_bytes())
    assert ours is not None
    for key in ("name", "description", "version", "author", "license", "min_parser_version"):
        assert getattr(ours, key) == theirs.get(key, ""), key
    assert ours.files == their_files
    (subgraph,) = theirs["subgraph_metadata"]
    for mine, their in zip(ours.inputs + ours.outputs,
                           subgraph["input_tensor_metadata"] + subgraph["output_tensor_metadata"]):
        assert mine.name == their.get("name", "")
        assert mine.description == their.get("description", "")
        props = their.get("content", {}).get("content_properties", {})
        assert mine.color_space == props.get("color_space", "")
        norms = [u["options"] for u in their.get("process_units", []) if u["options_type"] == "NormalizationOptions"]
        if norms:
            assert mine.normalization is not None
            assert list(mine.normalization.mean) == norms[0]["mean"] and list(mine.normalization.std) == norms[0]["std"]
        else:
            assert mine.normalization is None
        their_files_here = their.get("associated_files", [])
        assert [(f.name, f.type, f.locale) for f in mine.associated_files] == [
            (f["name"], f.get("type", "UNKNOWN"), f.get("locale", "")) for f in their_files_here]
        for f in their_files_here:
            if f.get("type") == "TENSOR_AXIS_LABELS":
                assert "\n".join(mine.labels) == their_files[f["name"]].decode().rstrip("\n")


def test_tfedge_written_labels() -> None:
    theirs, files = _theirs(DATA / "tfedge" / "digits_labels.tflite")
    assert files["labels.txt"].decode().split() == ["zero", "one", "two", "three", "four", "five", "six",
                                                    "seven", "eight", "nine"]
    assert theirs["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"] == {
        "mean": [0.0], "std": [16.0]}
