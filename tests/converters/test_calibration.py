"""Calibration data in every form, checked against the signature before conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfedge.converters.calibration import load_labels, load_samples
from tfedge.converters.sources import InputSpec
from tfedge.errors import ConversionError

IMAGE = InputSpec("image", (None, 4, 6, 3), np.dtype(np.float32))
TWO = (InputSpec("a", (None, 3), np.dtype(np.float32)), InputSpec("ids", (None, 2), np.dtype(np.int32)))


def test_image_directory_is_resized_and_normalized(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    for i, color in enumerate([(255, 0, 0), (0, 255, 255)]):
        Image.new("RGB", (20, 10), color).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    unit = load_samples(tmp_path, [IMAGE], limit=10)
    assert unit.arrays["image"].shape == (2, 4, 6, 3) and unit.arrays["image"].dtype == np.float32
    np.testing.assert_allclose(unit.arrays["image"][0, 0, 0], [1.0, 0.0, 0.0])
    sym = load_samples(tmp_path, [IMAGE], limit=10, normalization="symmetric")
    np.testing.assert_allclose(sym.arrays["image"][1, 0, 0], [-1.0, 1.0, 1.0])
    custom = load_samples(tmp_path, [IMAGE], limit=1, mean=[0.0], std=[1.0])
    assert len(custom) == 1 and custom.arrays["image"].max() == 255.0


def test_npz_by_name_with_several_inputs(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, a=np.ones((5, 3), np.float64), ids=np.zeros((5, 2), np.int32))
    samples = load_samples(path, TWO, limit=3)
    assert len(samples) == 3 and samples.arrays["a"].dtype == np.float32  # floats are cast
    batches = list(samples.one_by_one())
    assert len(batches) == 3 and batches[0]["ids"].shape == (1, 2)


def test_npy_for_a_two_input_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.ones((5, 3), np.float32))
    with pytest.raises(ConversionError) as info:
        load_samples(path, TWO, limit=3)
    assert str(info.value) == (
        "Calibration data: d.npy holds one input, but the model takes 2 ('a', 'ids'). "
        "Use a .npz file (or a mapping) keyed by input name."
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"a": np.ones((5, 3), np.float32)}, "Calibration data has no array for input(s) 'ids'."),
        (
            {"a": np.ones((5, 4), np.float32), "ids": np.zeros((5, 2), np.int32)},
            "Calibration data for input 'a' has shape (5, 4) float32; the model expects (None, 3) float32 (the first axis counts samples).",
        ),
        (
            {"a": np.ones((5, 3), np.float32), "ids": np.zeros((5, 2), np.int64)},
            "Calibration data for input 'ids' has dtype int64; the model expects (None, 2) int32 (the first axis counts samples).",
        ),
        (
            {"a": np.ones((5, 3), np.float32), "ids": np.zeros((4, 2), np.int32)},
            "Calibration data has different sample counts per input: {'a': 5, 'ids': 4}.",
        ),
    ],
)
def test_mismatches_name_the_input_and_both_specs(data: dict, message: str) -> None:
    with pytest.raises(ConversionError) as info:
        load_samples(data, TWO, limit=10)
    assert str(info.value) == message


def test_iterable_samples_with_or_without_batch_axis() -> None:
    items = [np.ones((1, 4, 6, 3), np.float32), np.zeros((4, 6, 3), np.float32)] * 3
    samples = load_samples(iter(items), [IMAGE], limit=4)
    assert samples.arrays["image"].shape == (4, 4, 6, 3) and samples.origin == "given iterable"


def test_labels() -> None:
    np.testing.assert_array_equal(load_labels(np.array([[1], [2], [3]]), 2), [1, 2])
    with pytest.raises(ConversionError, match=r"must be integer class ids of shape \(N,\), got \(3,\) float64"):
        load_labels(np.array([1.0, 2.0, 3.0]), 3)
