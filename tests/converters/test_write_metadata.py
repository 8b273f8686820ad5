"""tfedge-convert --labels/--name/...: standard TFLite Metadata written, read back, model unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfedge.converters import convert
from tfedge.converters.cli import main
from tfedge import ConversionError, Interpreter
from tfedge.metadata import Normalization, read_metadata
from tfedge.tasks import classify

LABELS = [f"class {i}" for i in range(10)]


@pytest.fixture(scope="module")
def plain(keras_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared CNN converted without metadata."""
    out = tmp_path_factory.mktemp("plain") / "plain.tflite"
    convert(keras_file, out, validate=False, progress=False)
    return out


def test_cli_writes_metadata_and_the_model_runs_bit_identically(
    keras_file: Path, plain: Path, tmp_path: Path, calib: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS) + "\n")
    out = tmp_path / "with_meta.tflite"
    code = main([str(keras_file), "-o", str(out), "--labels", str(tmp_path / "labels.txt"), "--mean", "127.5",
                 "--std", "127.5", "--name", "Tiny CNN", "--description", "Ten seeded classes.",
                 "--version", "2", "--author", "tfedge", "--license", "Apache-2.0", "--no-validate", "--no-progress"])
    capsys.readouterr()
    assert code == 0
    meta = Interpreter(out).metadata
    assert meta is not None
    assert (meta.name, meta.description, meta.version, meta.author, meta.license) == (
        "Tiny CNN", "Ten seeded classes.", "2", "tfedge", "Apache-2.0")
    assert meta.inputs[0].name == "image" and meta.inputs[0].color_space == "GRAYSCALE"
    assert meta.inputs[0].normalization == Normalization(mean=(127.5,), std=(127.5,))
    assert meta.outputs[0].labels == tuple(LABELS)
    assert meta.files == {"labels.txt": "".join(f"{label}\n" for label in LABELS).encode()}
    # Same ops, tensors and weights: outputs identical to the model converted without metadata.
    a, b = Interpreter(plain), Interpreter(out)
    (name,) = (s.name for s in a.output_specs())
    for x in calib[:8]:
        np.testing.assert_array_equal(a.run(x[None])[name], b.run(x[None])[name])
    assert classify(b, calib[0][None], top_k=1)[0].label.startswith("class ")


def test_python_api_and_replacing_metadata(plain: Path, tmp_path: Path) -> None:
    from tfedge.converters.metadata import ModelInfo, add_metadata

    first = add_metadata(plain.read_bytes(), ModelInfo(name="first", labels=tuple(LABELS)))
    second = add_metadata(first, ModelInfo(name="second", labels=tuple(reversed(LABELS)), mean=(0.0,), std=(255.0,)))
    meta = read_metadata(second)
    assert meta is not None and meta.name == "second" and meta.outputs[0].labels == tuple(reversed(LABELS))
    assert meta.inputs[0].normalization == Normalization(mean=(0.0,), std=(255.0,))
    assert read_metadata(plain.read_bytes()) is None


def test_labels_that_do_not_fit_any_output(keras_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.tflite"
    with pytest.raises(ConversionError) as exc:
        convert(keras_file, out, labels=["a", "b", "c"], validate=False, progress=False)
    assert str(exc.value) == ("3 labels, but no output has 3 classes in its last dimension (output_0 (1, 10)); "
                              "give one label per class.")
    assert not out.exists()
    with pytest.raises(ConversionError, match=r"^Unknown metadata field\(s\) autor\. Available: name, "):
        convert(keras_file, out, metadata={"autor": "x"}, validate=False, progress=False)


def test_missing_labels_file(keras_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(keras_file), "-o", str(tmp_path / "m.tflite"), "--labels", str(tmp_path / "nope.txt"),
                 "--no-validate", "--no-progress"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("tfedge-convert")]
    assert code == 1 and err == [f"tfedge-convert: error: Labels file {str(tmp_path / 'nope.txt')!r} does not exist."]
    assert not (tmp_path / "m.tflite").exists()

