"""Small models built once per session and shared by the converter tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

# tflite_runtime must be imported before TensorFlow, or it cannot load TF 2.21 models.
pytest.importorskip("tflite_runtime.interpreter")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

SHAPE = (8, 8, 1)


def build_cnn() -> Any:
    """A seeded, untrained CNN with softmax scores: conv, dense, named input 'image'."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(SHAPE, name="image"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.fixture(scope="session")
def cnn() -> Any:
    """The shared Keras model."""
    return build_cnn()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory for exported sources."""
    return tmp_path_factory.mktemp("sources")


@pytest.fixture(scope="session")
def saved_model(cnn: Any, models_dir: Path) -> Path:
    """The CNN as a SavedModel directory."""
    path = models_dir / "savedmodel"
    cnn.export(str(path), verbose=False)
    return path


@pytest.fixture(scope="session")
def keras_file(cnn: Any, models_dir: Path) -> Path:
    """The CNN as a .keras file."""
    path = models_dir / "cnn.keras"
    cnn.save(path)
    return path


@pytest.fixture(scope="session")
def h5_file(cnn: Any, models_dir: Path) -> Path:
    """The CNN as a legacy .h5 file."""
    path = models_dir / "cnn.h5"
    cnn.save(path)
    return path


@pytest.fixture(scope="session")
def calib() -> np.ndarray:
    """60 seeded calibration images in [0, 1)."""
    return np.random.default_rng(0).random((60, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="session")
def calib_npy(calib: np.ndarray, models_dir: Path) -> Path:
    """The calibration images as a .npy file."""
    path = models_dir / "calib.npy"
    np.save(path, calib)
    return path


@pytest.fixture(scope="session")
def eval_x() -> np.ndarray:
    """20 held-out images (a different seed from the calibration data)."""
    return np.random.default_rng(1).random((20, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="session")
def flex_function() -> Any:
    """A tf.function whose MatrixDeterminant has no TFLite builtin (Select TF only)."""

    @tf.function(input_signature=[tf.TensorSpec((3, 3), tf.float32, name="x")])
    def det(x: Any) -> Any:
        return {"y": tf.linalg.det(x) + 1.0}

    return det
