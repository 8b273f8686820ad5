"""The one place that imports TensorFlow, and keeps its native chatter off our streams."""

from __future__ import annotations

import os
import sys
from typing import Any

from tfedge._native_output import Captured, captured_native_output

__all__ = ["Captured", "captured_native_output", "tf"]


def tf() -> Any:
    """Import TensorFlow (lazily, so ``--help`` and the probes stay fast) with its INFO logs off."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The import prints absl and CPU-feature notices straight to fd 2.
        with captured_native_output():
            import tensorflow

            tensorflow.get_logger().setLevel("ERROR")
    import tensorflow

    return tensorflow
