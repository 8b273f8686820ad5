"""The models the benchmark tables measure, built once and cached.

:func:`build_models` is the one seam between the benchmarks and TensorFlow: it runs
``_build_models.py`` in a subprocess (the measuring process must never import
TensorFlow, which breaks tflite_runtime in-process) that builds a Keras
``MobileNetV2(weights=None)`` and a small CNN trained on scikit-learn's digits, and
converts each with ``tf.lite.TFLiteConverter`` to float32, float16, dynamic-range and
full-integer int8 .tflite files. To build them with ``converters.convert`` instead,
change ``_build_models.py``; callers only see ``{name: path}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from _timing import run_python

__all__ = ["MODES", "DEFAULT_WORK_DIR", "build_models", "digits_split", "manifest", "model_name"]

#: Quantization modes, in the order the tables list them.
MODES = ("float32", "float16", "dynamic", "int8")
DEFAULT_WORK_DIR = Path.home() / ".cache" / "tfedge" / "bench-models"
_HERE = Path(__file__).resolve().parent
_MANIFEST = "manifest.json"


def model_name(model: str, mode: str) -> str:
    """The key (and file stem) of one converted model: ``digits-int8``."""
    return f"{model}-{mode}"


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(x_train, y_train, x_test, y_test)``: (N, 8, 8, 1) float32 in [0, 1].

    The builder trains on this split and the formats table scores on it, so both use this one
    function: the example's data (``converters.example.digits``) with a 75/25 split.
    """
    from tfedge.converters.example import digits

    x_train, x_test, y_train, y_test = digits(test_size=0.25)
    return x_train, y_train, x_test, y_test


def _fingerprint(models: tuple[str, ...]) -> str:
    """What the cached files depend on: the builder's code, this module, the example's CNN and the model list."""
    digest = hashlib.sha256()
    for path in (_HERE / "_build_models.py", Path(__file__), _HERE.parent / "converters" / "example.py"):
        digest.update(path.read_bytes())
    digest.update(repr(models).encode())
    return digest.hexdigest()[:16]


def manifest(work_dir: Path) -> dict:
    """The builder's record in ``work_dir``: versions, Keras accuracy, files ({} if none)."""
    try:
        return json.loads((Path(work_dir) / _MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def build_models(work_dir: Path, *, mobilenet: bool = True) -> dict[str, Path]:
    """Build (or reuse from ``work_dir``) the benchmark models.

    Args:
        work_dir: Cache directory; created if missing.
        mobilenet: Also build MobileNetV2 (about a minute); False builds only the digits CNN.

    Returns:
        ``{model_name(model, mode): path}`` for each model and each of :data:`MODES`.
    """
    work_dir = Path(work_dir).expanduser()
    work_dir.mkdir(parents=True, exist_ok=True)
    models = ("digits", "mobilenet_v2") if mobilenet else ("digits",)
    expected = {model_name(m, mode): work_dir / f"{model_name(m, mode)}.tflite" for m in models for mode in MODES}
    record = manifest(work_dir)
    fresh = record.get("fingerprint") == _fingerprint(models) and all(p.is_file() for p in expected.values())
    if not fresh:
        print(f"building {', '.join(models)} in {work_dir} (TensorFlow, in a subprocess)...", file=sys.stderr)
        run_python([str(_HERE / "_build_models.py"), str(work_dir), "--fingerprint", _fingerprint(models),
                    *(["--no-mobilenet"] if not mobilenet else [])], timeout=1800)
    return expected
