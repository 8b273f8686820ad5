"""The one place that imports TensorFlow, and keeps its native chatter off our streams."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

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


class Captured:
    """What native code printed while captured, and a stream to the real stderr."""

    def __init__(self, stderr: IO[str]) -> None:
        self.stderr = stderr
        self.text = ""


@contextlib.contextmanager
def captured_native_output() -> Iterator[Captured]:
    """Capture what native code writes to fds 1 and 2 (MLIR dumps, calibration logs).

    The converter prints pages of MLIR on failure and status lines on success straight
    to the file descriptors; stdout must stay clean for results and stderr for one
    error line. Progress bars write to ``Captured.stderr``, a copy of the real stderr.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    real_stderr = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    sink = tempfile.TemporaryFile(mode="w+b")
    captured = Captured(real_stderr)
    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        yield captured
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        real_stderr.close()
        sink.seek(0)
        captured.text = sink.read().decode("utf-8", "replace")
        sink.close()
