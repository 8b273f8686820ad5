"""What each platform cell of scripts/matrix.py promises: its backends, and clear errors without one.

The no-backend cell stands for Python 3.14 and 32-bit ARM, where no backend publishes
wheels; the tflite-numpy2 cell for a venv where something pulled numpy 2 in under
tflite-runtime 2.14 (``ray[data]`` does).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
from support import BACKENDS, in_ci, model_path

import tfedge
from tfedge.errors import BackendNotFoundError

ADD = model_path("add.tflite")
NUMPY2 = int(np.__version__.split(".")[0]) >= 2
INSTALLED = [b for b in ("ai_edge_litert", "tflite_runtime") if importlib.util.find_spec(b) is not None]


def _tfedge(*args: str) -> subprocess.CompletedProcess[str]:
    """The tfedge command in a fresh process."""
    env = dict(os.environ)
    env.pop("TFEDGE_BACKEND", None)
    return subprocess.run([sys.executable, "-m", "tfedge", *args], capture_output=True, text=True, env=env, timeout=120)


def test_this_cell_has_the_backends_it_promises() -> None:
    expected = os.environ.get("TFEDGE_EXPECT_BACKENDS")
    if expected is None:
        if not in_ci():
            pytest.skip("outside scripts/matrix.py (which sets $TFEDGE_EXPECT_BACKENDS) nothing is promised")
        expected = "ai_edge_litert,tflite_runtime"  # CI's .venv has both
    assert BACKENDS == [b for b in expected.split(",") if b]


@pytest.mark.skipif(bool(INSTALLED), reason="a backend is installed here (the no-backend cell has none)")
def test_without_a_backend_import_works_and_interpreter_says_what_to_install() -> None:
    with pytest.raises(BackendNotFoundError) as caught:
        tfedge.Interpreter(ADD)
    assert str(caught.value) == (
        'No TFLite backend found. Install one: pip install "tfedge[litert]" (Python 3.10-3.14), or "tfedge[tflite]" '
        "(Python 3.8-3.11). "
        "Backend 'ai_edge_litert' could not be imported (ModuleNotFoundError: No module named 'ai_edge_litert'). "
        "Backend 'tflite_runtime' could not be imported (ModuleNotFoundError: No module named 'tflite_runtime')."
    )
    info = _tfedge("info", str(ADD))
    assert info.returncode == 1
    assert info.stdout == ""
    assert info.stderr.startswith("tfedge: error: No TFLite backend found. Install one:"), info.stderr
    assert len(info.stderr.splitlines()) == 1 and "Traceback" not in info.stderr


needs_numpy2_tflite = pytest.mark.skipif(
    not (NUMPY2 and "tflite_runtime" in INSTALLED),
    reason="needs tflite_runtime installed under numpy 2 (the tflite-numpy2 cell)",
)


@needs_numpy2_tflite
def test_raw_tflite_runtime_really_fails_under_numpy2() -> None:
    # What tfedge guards against: the backend imports, then fails on the first model.
    code = f"from tflite_runtime.interpreter import Interpreter; Interpreter(model_path={str(ADD)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "SystemError" in proc.stderr or "_ARRAY_API not found" in proc.stderr, proc.stderr[-2000:]


@needs_numpy2_tflite
def test_tflite_runtime_under_numpy2_is_named_unusable_and_skipped() -> None:
    version = metadata.version("tflite-runtime")
    reason = (
        f"Backend 'tflite_runtime' {version} is installed but cannot work here: tflite-runtime {version} "
        f"needs numpy < 2, and numpy {np.__version__} is installed. "
        'Fix: pip install "numpy<2", or use ai-edge-litert (pip install "tfedge[litert]").'
    )
    with pytest.raises(BackendNotFoundError) as caught:
        tfedge.Interpreter(ADD, backend="tflite_runtime")
    assert str(caught.value).startswith(reason)
    assert "tflite_runtime" not in BACKENDS
    if "ai_edge_litert" in BACKENDS:
        assert tfedge.Interpreter(ADD).backend == "ai_edge_litert"  # the automatic choice skips it
    else:
        with pytest.raises(BackendNotFoundError, match="No TFLite backend found") as caught:
            tfedge.Interpreter(ADD)
        assert reason in str(caught.value)
    info = _tfedge("info", "--backend", "tflite_runtime", str(ADD))
    assert info.returncode == 1
    assert info.stderr.startswith(f"tfedge: error: {reason}"), info.stderr
    assert len(info.stderr.splitlines()) == 1 and "Traceback" not in info.stderr


@needs_numpy2_tflite
@pytest.mark.skipif(sys.version_info < (3, 9), reason="the converters need Python 3.9+")
def test_converter_report_names_tflite_runtime_unusable_not_missing() -> None:
    from tfedge.converters.validate import probe_runtimes  # imports no TensorFlow

    version = metadata.version("tflite-runtime")
    checks = {c.backend: c for c in probe_runtimes(ADD.read_bytes(), ["tflite_runtime"])}
    check = checks["tflite_runtime"]
    assert (check.version, check.ok, check.required) == (version, False, True)
    assert check.error is not None and check.error.startswith(
        f"Backend 'tflite_runtime' {version} is installed but cannot work here: tflite-runtime {version} "
        f"needs numpy < 2, and numpy {np.__version__} is installed."
    )
    assert "tensorflow" not in sys.modules
