"""Accuracy-first int8 on a digits MLP (scikit-learn's data) whose input range one feature channel dominates."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfedge.converters import convert
from tfedge.converters.auto import convert_auto
from tfedge.converters.cli import main
from tfedge.errors import ConversionError

keras = pytest.importorskip("keras")
datasets = pytest.importorskip("sklearn.datasets")

#: Values of the outlier channel: the per-tensor int8 input scale becomes about 8, and pixels are 0..1.
OUTLIER = 1000.0


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A trained MLP and its data; the model then takes a 65th input channel it ignores (zero weights).

    Float32 is unchanged by the extra channel; full int8 quantizes the input per tensor, so its
    scale follows the outlier channel and the pixels round to nothing.
    """
    d = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))  # the last writers are the hardest
    x = (d.data[order] / 16.0).astype(np.float32)
    y = d.target[order].astype(np.int64)
    keras.utils.set_random_seed(0)
    clean = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    clean.compile("adam", "sparse_categorical_crossentropy")
    clean.fit(x[:1400], y[:1400], epochs=60, batch_size=64, verbose=0)
    model = keras.Sequential(
        [keras.Input((65,), name="features")]
        + [keras.layers.Dense(layer.units, activation=layer.activation) for layer in clean.layers]
    )
    w, b = clean.layers[0].get_weights()
    model.layers[0].set_weights([np.vstack([w, np.zeros((1, w.shape[1]), np.float32)]), b])
    for src, dst in zip(clean.layers[1:], model.layers[1:]):
        dst.set_weights(src.get_weights())
    rng = np.random.default_rng(0)
    x65 = np.hstack([x, rng.uniform(-OUTLIER, OUTLIER, (len(x), 1)).astype(np.float32)])
    out = tmp_path_factory.mktemp("digits")
    np.save(out / "calib.npy", x65[:300])
    np.save(out / "eval.npy", x65[1400:])
    np.save(out / "labels.npy", y[1400:])
    model.save(out / "mlp.keras")
    return {"model": model, "dir": out, "calib": x65[:300], "eval": x65[1400:], "labels": y[1400:]}


@pytest.fixture(scope="module")
def float32(digits: dict[str, Any]) -> Any:
    return convert(
        digits["model"], digits["dir"] / "f32.tflite", eval_data=digits["eval"], eval_labels=digits["labels"], progress=False
    )


def test_full_int8_loses_and_keep_float_auto_recovers(digits: dict[str, Any], float32: Any, capsys: pytest.CaptureFixture[str]) -> None:
    d = digits["dir"]
    assert float32.eval_samples == 397  # every --eval-data sample, not the first 100
    assert float32.reference_accuracy > 0.9
    common = ["--calibration", str(d / "calib.npy"), "--eval-data", str(d / "eval.npy"), "--eval-labels", str(d / "labels.npy"), "--no-progress"]
    assert main([str(d / "mlp.keras"), "-o", str(d / "int8.tflite"), "--quantize", "int8", "--json", *common]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["accuracy_drop"] > 2.0
    argv = [str(d / "mlp.keras"), "-o", str(d / "kept.tflite"), "--quantize", "int8", "--keep-float", "auto",
            "--debug-quantization", str(d / "layers.csv"), *common]
    assert main(argv) == 0
    table = capsys.readouterr().out
    print(table)
    kept_lines = [ln for ln in table.splitlines() if ln.startswith("kept float  ")]
    assert len(kept_lines) == 1 and "(FULLY_CONNECTED, int8 error" in kept_lines[0]
    size = (d / "kept.tflite").stat().st_size
    assert size < 0.6 * float32.size_after
    drop = float(table.split("(drop ")[1].split(" points")[0])
    assert drop <= 0.5
    with open(d / "layers.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["tensor"] in kept_lines[0] and rows[0]["op"] == "FULLY_CONNECTED"
    errors = [float(r["rmse_over_scale"]) for r in rows]
    assert errors == sorted(errors, reverse=True) and len(rows) >= 4


def test_keep_float_by_name_and_a_wrong_name(digits: dict[str, Any], tmp_path: Path) -> None:
    table = tmp_path / "layers.json"
    convert(digits["model"], tmp_path / "a.tflite", calibration=digits["calib"], quantize="int8", debug_quantization=str(table), progress=False)
    rows = json.loads(table.read_text())
    first = rows[0]["tensor"]
    result = convert(
        digits["model"], tmp_path / "b.tflite", calibration=digits["calib"], eval_data=digits["eval"],
        eval_labels=digits["labels"], quantize="int8", keep_float=(first,), progress=False,
    )
    assert [k.tensor for k in result.kept_float] == [first]
    assert result.kept_float[0].size_bytes > 0
    with pytest.raises(ConversionError) as info:
        convert(digits["model"], tmp_path / "c.tflite", calibration=digits["calib"], quantize="int8", keep_float=("dense_9",), progress=False)
    assert str(info.value).startswith(f"--keep-float: no quantized layer named 'dense_9'. Layers, most sensitive first: {first!r}")


def test_quantize_auto_table_and_plot(digits: dict[str, Any], float32: Any, tmp_path: Path) -> None:
    auto = convert_auto(
        digits["model"], tmp_path / "auto.tflite", calibration=digits["calib"], eval_data=digits["eval"],
        eval_labels=digits["labels"], progress=False,
    )
    print(auto.format_table())
    modes = [t.mode for t in auto.tries]
    assert modes == ["int8", "dynamic", "int8 --keep-float auto", "float16", "none (float32)"]  # every candidate
    assert not auto.tries[0].passed
    met = [t for t in auto.tries if t.passed]
    assert auto.chosen == min(met, key=lambda t: (t.size_bytes, t.latency_ms)).mode  # the smallest that met it
    assert auto.result.output == str(tmp_path / "auto.tflite") and (tmp_path / "auto.tflite").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auto.quantize-auto.png", "auto.tflite"]
    assert (tmp_path / "auto.quantize-auto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "quantize auto: every candidate; the smallest that meets the budget is chosen (then the fastest)" in auto.format_table()
