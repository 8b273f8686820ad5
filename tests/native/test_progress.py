"""Stages of a long build: one line per stage in a log, a redrawn line (and a bar) on a terminal."""

from __future__ import annotations

import io

from tfedge.native.progress import Progress, nuitka_stage


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_stage_in_a_log() -> None:
    out, clock = io.StringIO(), _Clock()
    progress = Progress(out, clock=clock)
    progress.stage("numpy without BLAS")
    clock.now = 125.0
    progress.count(3, 10)  # no bar in a log
    progress.stage("Nuitka: compiling C files")
    clock.now = 3725.0
    progress.done()
    progress.done()  # nothing left to end
    assert out.getvalue() == ("build_native: numpy without BLAS: done in 2:05\n"
                              "build_native: Nuitka: compiling C files: done in 60:00\n")


def test_a_terminal_gets_the_stage_redrawn_with_a_bar() -> None:
    out, clock = _Terminal(), _Clock()
    progress = Progress(out, clock=clock)
    progress.stage("Nuitka: compiling C files")
    clock.now = 61.0
    progress.count(6, 12)
    clock.now = 61.05
    progress.count(7, 12)  # within 0.1 s of the last drawing: skipped
    progress.done()
    text = out.getvalue()
    assert "\r\033[Kbuild_native: Nuitka: compiling C files [1:01] [############............] 6/12" in text
    assert "7/12" not in text
    assert text.endswith("\r\033[Kbuild_native: Nuitka: compiling C files: done in 1:01\n")


def test_nuitka_output_starts_the_stages() -> None:
    assert nuitka_stage("Nuitka: Starting Python compilation with:") == "Nuitka: following and optimising Python modules"
    assert nuitka_stage("Nuitka: Generating source code for C backend compiler.") == "Nuitka: generating C files"
    assert nuitka_stage("Nuitka: Running C compilation via Scons.") == "Nuitka: compiling C files"
    assert nuitka_stage("Nuitka-Options:   --mode=onefile") is None
