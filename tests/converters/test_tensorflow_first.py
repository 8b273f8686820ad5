"""tfedge in a process that imported TensorFlow first (notebooks, the converters' validation).

Measured: after ``import tensorflow`` (2.21), tflite_runtime 2.14 fails on models TF 2.21
converted (``ValueError: vector::reserve``). The automatic backend choice must avoid it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
REPO = Path(__file__).resolve().parents[2]

PRELUDE = """
import sys, importlib.abc
BLOCK = set(sys.argv[1].split(",")) - {""}
class Block(importlib.abc.MetaPathFinder):
    # Makes a backend look not installed, as on a machine without it.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
import numpy as np
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
x = np.ones((1, 4), np.float32)
want = model(x).numpy()
import tfedge
"""


def _run(code: str, block: str = "", first: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``first`` + PRELUDE + ``code`` in a fresh interpreter, with the modules in ``block`` hidden."""
    return subprocess.run(
        [sys.executable, "-c", first + PRELUDE + textwrap.dedent(code), block],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.mark.parametrize(("block", "expected"), [("", "ai_edge_litert"), ("ai_edge_litert", "tensorflow")])
def test_automatic_choice_works_after_tensorflow(block: str, expected: str) -> None:
    result = _run(
        """
        interp = tfedge.Interpreter(data)
        out = next(iter(interp.run(x).values()))
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
        print(interp.backend)
        """,
        block,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected


def test_naming_tflite_runtime_after_tensorflow_is_refused() -> None:
    """Loaded after TensorFlow, tflite_runtime failed on TF 2.21's models, or crashed the process (SIGSEGV on CI)."""
    pytest.importorskip("tflite_runtime")
    result = _run(
        """
        try:
            tfedge.Interpreter(data, backend="tflite_runtime")
        except tfedge.BackendNotFoundError as exc:
            print(exc)
        else:
            print("loaded")
        print("tflite_runtime.interpreter" in sys.modules)  # refused before its library was loaded
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    message, loaded = result.stdout.strip().splitlines()[-2:]
    assert message == (
        "Backend 'tflite_runtime' cannot work in this process: it would load after tensorflow, and their "
        "bundled TFLite libraries clash (models TensorFlow 2.21 converted fail to load, or crash the process). "
        "Use backend='ai_edge_litert' (or let tfedge choose), or import tflite_runtime.interpreter before "
        "tensorflow."
    )
    assert loaded == "False"


def test_tflite_runtime_loaded_before_tensorflow_runs() -> None:
    """The other order works (the converters' tests rely on it): the refusal is about load order only."""
    pytest.importorskip("tflite_runtime")
    result = _run(
        """
        interp = tfedge.Interpreter(data, backend="tflite_runtime")
        np.testing.assert_allclose(next(iter(interp.run(x).values())), want, rtol=1e-5, atol=1e-6)
        print(interp.backend)
        """,
        first="import tflite_runtime.interpreter\n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "tflite_runtime"
