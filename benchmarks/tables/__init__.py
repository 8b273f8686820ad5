"""The tables of RESULTS.md: one module per table, each with ``table(ctx) -> Section``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Context:
    """What every table gets from run_all.py.

    Attributes:
        work_dir: Cache of the built models (see models.build_models).
        out_dir: Where RESULTS.md goes; tables write their images here too.
        quick: A smoke run: digits models only, few repetitions.
    """

    work_dir: Path
    out_dir: Path
    quick: bool = False

    def models(self) -> dict[str, Path]:
        """The benchmark models, built on first use (MobileNetV2 left out when quick)."""
        from models import build_models

        return build_models(self.work_dir, mobilenet=not self.quick)


@dataclass(frozen=True)
class Section:
    """One section of RESULTS.md.

    Attributes:
        title: The heading.
        body: Markdown under the heading (a table and a few lines on how it was measured).
        files: Files the table wrote next to RESULTS.md (plots).
    """

    title: str
    body: str
    files: tuple[Path, ...] = field(default=())


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table; columns after the first are right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    """A duration with 3 significant digits: µs below 0.1 ms, s from 1 s, else ms."""
    if seconds < 1e-4:
        return f"{seconds * 1e6:.3g} µs"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    return f"{seconds * 1e3:.3g} ms"


def ratio(value: float, base: float) -> str:
    """``value / base`` as ``1.23×``."""
    return f"{value / base:.2f}×"
