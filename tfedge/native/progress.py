"""Progress of a long build on stderr: each stage with its elapsed time.

On a terminal the current stage's line is redrawn (with a bar where the work is
countable, such as the C files Nuitka compiles); otherwise one line per stage when it
ends, so a CI log shows where an hour went.
"""

from __future__ import annotations

import re
import sys
import time
from typing import IO, Callable, Optional

__all__ = ["Progress", "log", "nuitka_stage"]

PREFIX = "build_native: "


def log(message: str) -> None:
    """One line on stderr."""
    print(f"{PREFIX}{message}", file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    """``m:ss``."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


class Progress:
    """Stages of one build, reported as they go.

    ``stage(name)`` ends the stage before (printing its time) and starts ``name``;
    ``count(done, total)`` updates the current stage's bar (terminals only); ``done()``
    ends the last stage.
    """

    def __init__(self, stream: Optional[IO[str]] = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._clock = clock
        self._stage: Optional[str] = None
        self._started = 0.0
        self._drawn = 0.0

    @property
    def tty(self) -> bool:
        """Whether stages are redrawn in place."""
        return self._tty

    def stage(self, name: str) -> None:
        """Start stage ``name`` (ending the current one)."""
        if name == self._stage:
            return
        self.done()
        self._stage, self._started = name, self._clock()
        if self._tty:
            self._draw("")

    def count(self, done: int, total: int) -> None:
        """The current stage has done ``done`` of ``total`` units (redrawn at most 10 times a second)."""
        if not self._tty or self._stage is None or self._clock() - self._drawn < 0.1:
            return
        width = 24
        filled = int(width * min(done, total) / total) if total else 0
        self._draw(f" [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")

    def done(self) -> None:
        """End the current stage, printing its elapsed time."""
        if self._stage is None:
            return
        elapsed = _clock(self._clock() - self._started)
        if self._tty:
            self._stream.write(f"\r\033[K{PREFIX}{self._stage}: done in {elapsed}\n")
        else:
            self._stream.write(f"{PREFIX}{self._stage}: done in {elapsed}\n")
        self._stream.flush()
        self._stage = None

    def _draw(self, detail: str) -> None:
        """Redraw the current stage's line."""
        self._drawn = self._clock()
        self._stream.write(f"\r\033[K{PREFIX}{self._stage} [{_clock(self._drawn - self._started)}]{detail}")
        self._stream.flush()


#: Lines of Nuitka's output that start a stage of ours, in the order they come.
_NUITKA_STAGES = (
    (re.compile(r"Starting Python compilation|Nuitka: Starting"), "Nuitka: following and optimising Python modules"),
    (re.compile(r"Generating source code for C backend"), "Nuitka: generating C files"),
    (re.compile(r"Running C compilation via Scons|Backend C compiler"), "Nuitka: compiling C files"),
    (re.compile(r"Creating single file|onefile.*compress|Onefile.*payload", re.I), "Nuitka: compressing the payload"),
)
def nuitka_stage(line: str) -> Optional[str]:
    """Our stage name if Nuitka's output ``line`` starts one, else None."""
    for pattern, name in _NUITKA_STAGES:
        if pattern.search(line):
            return name
    return None

