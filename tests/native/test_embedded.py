"""tfedge.embedded and the CLI's embedded:NAME under plain Python (the folder a build would make)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support import BACKENDS, MODELS
import tfedge
from tfedge import cli, embedded
from tfedge.native.compile import write_manifest
from tfedge.native.config import ModelFile

#: A backend that works here (the native build's venv may have ai-edge-litert alone).
BACKEND = BACKENDS[0] if BACKENDS else "ai_edge_litert"



@pytest.fixture
def embed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Models embedded the way the native build lays them out, in ``tmp_path/_embedded``."""
    folder = tmp_path / "_embedded"
    folder.mkdir()
    models = [ModelFile(name="adder", path=MODELS / "add.tflite")]
    write_manifest(models, folder)
    for model in models:
        shutil.copyfile(model.path, folder / f"{model.name}.tflite")
    monkeypatch.setattr(embedded, "_embedded_dir", lambda: folder)
    embedded._manifest.cache_clear()
    yield folder
    embedded._manifest.cache_clear()


def test_nothing_embedded_under_plain_python() -> None:
    embedded._manifest.cache_clear()
    assert tfedge.embedded_models() == ()
    with pytest.raises(tfedge.ModelError) as info:
        tfedge.embedded_model("x")
    assert str(info.value) == "No embedded model 'x'. Available: none (this is not a binary built with --model)."


def test_embedded_model_bytes(embed: Path) -> None:
    assert tfedge.embedded_models() == ("adder",)
    content = tfedge.embedded_model("adder")
    assert content == (MODELS / "add.tflite").read_bytes()
    interp = tfedge.Interpreter(content, backend=BACKEND)
    x = np.ones(interp.input_specs()[0].shape, np.float32)
    assert next(iter(interp.run({interp.input_specs()[0].name: x}).values())).shape == x.shape


def test_unknown_name_lists_the_embedded(embed: Path) -> None:
    with pytest.raises(tfedge.ModelError) as info:
        tfedge.embedded_model("mobilenet")
    assert str(info.value) == "No embedded model 'mobilenet'. Available: 'adder'."


def test_damaged_model_is_refused(embed: Path) -> None:
    path = embed / "adder.tflite"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(tfedge.ModelError, match=r"^Embedded model 'adder' is damaged: SHA-256 "):
        tfedge.embedded_model("adder")


def test_cli_runs_the_only_embedded_model_without_an_argument(
    embed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_embedded, out_path = tmp_path / "a.npz", tmp_path / "b.npz"
    assert cli.main(["run", "--random", "--backend", BACKEND, "--output", str(out_embedded)]) == 0
    assert cli.main(["run", str(MODELS / "add.tflite"), "--random", "--backend", BACKEND,
                     "--output", str(out_path)]) == 0
    with np.load(out_embedded) as a, np.load(out_path) as b:
        assert a.files == b.files
        for key in a.files:
            assert np.array_equal(a[key], b[key])
    assert cli.main(["info", "embedded:adder", "--backend", BACKEND]) == 0
    assert capsys.readouterr().out.startswith("model      embedded:adder (")


def test_cli_without_model_and_nothing_embedded(capsys: pytest.CaptureFixture[str]) -> None:
    embedded._manifest.cache_clear()
    assert cli.main(["info"]) == 1
    assert capsys.readouterr().err == "tfedge: error: No model given. Pass a .tflite path.\n"


def test_cli_without_model_and_two_embedded(embed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_manifest([ModelFile("adder", MODELS / "add.tflite"), ModelFile("sub", MODELS / "sub.tflite")],
                      embed)
    shutil.copyfile(MODELS / "sub.tflite", embed / "sub.tflite")
    embedded._manifest.cache_clear()
    assert cli.main(["info"]) == 1
    assert capsys.readouterr().err == ("tfedge: error: No model given. Pass a .tflite path or one of: "
                                       "embedded:adder, embedded:sub.\n")
