"""Keeping what native libraries print straight to file descriptors off our streams.

The TFLite runtimes print ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` to
fd 2 whenever an interpreter is made, and TensorFlow prints pages of MLIR and notices.
A command line tool wants stdout for results and stderr for one error line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO

__all__ = ["Captured", "captured_native_output", "replay"]

#: Lines the backends print on every load that tell a user nothing.
NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


class Captured:
    """What native code printed while captured, and a stream to the real stderr."""

    def __init__(self, stderr: IO[str]) -> None:
        self.stderr = stderr
        self.text = ""


@contextlib.contextmanager
def captured_native_output(fds: Sequence[int] = (1, 2)) -> Iterator[Captured]:
    """Capture what anything in this process writes to ``fds`` (Python's sys streams too).

    ``Captured.stderr`` is a copy of the real stderr, for progress shown meanwhile;
    ``Captured.text`` holds what was captured once the block is left.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    real_stderr = os.fdopen(os.dup(2), "w", buffering=1)  # before fd 2 is redirected
    saved = [os.dup(fd) for fd in fds]
    sink = tempfile.TemporaryFile(mode="w+b")
    captured = Captured(real_stderr)
    try:
        for fd in fds:
            os.dup2(sink.fileno(), fd)
        yield captured
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
        real_stderr.close()
        sink.seek(0)
        captured.text = sink.read().decode("utf-8", "replace")
        sink.close()


def replay(text: str, stream: IO[str], noise: Sequence[str] = NOISE) -> None:
    """Write ``text`` to ``stream`` without the lines in ``noise``."""
    kept = [line for line in text.splitlines(keepends=True) if line.rstrip("\n") not in noise]
    if kept:
        stream.write("".join(kept))
        stream.flush()
