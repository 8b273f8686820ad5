"""``--quantize auto``: convert with every candidate mode, keep the smallest (then fastest) that meets the budget.

Every candidate is converted and validated, so the choice is measured, not guessed: an int8
model with ``--keep-float auto`` can keep so many layers in float that it is bigger than
float16 or even float32 (measured on a small CNN: 24,416 bytes against float16's 14,592), and
then float16 wins. ``int8 --keep-float auto`` is tried only when plain int8 misses the budget
(otherwise it is plain int8).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Optional

from tfedge.errors import ConversionError

from .report import ConversionResult

__all__ = ["AUTO_MODES", "AutoResult", "AutoTry", "convert_auto"]

#: (label, options): the candidates, in the order the table lists them.
AUTO_MODES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("int8", {"quantize": "int8"}),
    ("dynamic", {"quantize": "dynamic"}),
    ("int8 --keep-float auto", {"quantize": "int8", "keep_float": ("auto",)}),
    ("float16", {"quantize": "float16"}),
    ("none (float32)", {"quantize": "none"}),
)
#: Budgets used when none is given: accuracy with labels, else cosine.
DEFAULT_MAX_DROP = 0.5
DEFAULT_MIN_COSINE = 0.99


@dataclass(frozen=True)
class AutoTry:
    """One mode tried: its size, latency, accuracy (with labels) or worst cosine, and verdict."""

    mode: str
    size_bytes: Optional[int]
    latency_ms: Optional[float]
    accuracy: Optional[float]
    cosine: Optional[float]
    passed: bool
    error: Optional[str] = None


@dataclass(frozen=True)
class AutoResult:
    """The chosen conversion, every mode tried, and the plot (None when it could not be drawn)."""

    result: ConversionResult
    chosen: str
    tries: tuple[AutoTry, ...]
    plot: Optional[str]
    plot_note: Optional[str]

    def format_table(self) -> str:
        """The table of every candidate, then the chosen conversion's report."""
        lines = [f"  {'mode':<24} {'size':>10} {'latency ms':>10} {'accuracy':>9} {'cosine':>9}  budget"]
        for t in self.tries:
            size = f"{t.size_bytes:,}" if t.size_bytes is not None else "-"
            lat = f"{t.latency_ms:.3f}" if t.latency_ms is not None else "-"
            acc = f"{100 * t.accuracy:.2f}%" if t.accuracy is not None else "-"
            cos = f"{t.cosine:.6f}" if t.cosine is not None else "-"
            verdict = "met (chosen)" if t.mode == self.chosen else ("met" if t.passed else "missed")
            if t.error:
                verdict = t.error
            lines.append(f"  {t.mode:<24} {size:>10} {lat:>10} {acc:>9} {cos:>9}  {verdict}")
        head = ["quantize auto: every candidate; the smallest that meets the budget is chosen (then the fastest)"] + lines
        if self.plot:
            head.append(f"plot        {self.plot}")
        elif self.plot_note:
            head.append(f"plot        {self.plot_note}")
        return "\n".join(head) + "\n\n" + self.result.format_table()


def convert_auto(source: Any, output: "str | os.PathLike[str]", **kwargs: Any) -> AutoResult:
    """Convert with each of ``AUTO_MODES`` and keep the smallest model (then the fastest) that meets the budget.

    ``kwargs`` are :func:`tfedge.converters.convert`'s; ``max_accuracy_drop`` (with ``eval_labels``)
    or ``min_cosine`` set the budget (defaults 0.5 points, else cosine 0.99).

    Raises:
        ConversionError: no mode meets the budget (float32 not either), or a bad option.
    """
    from .convert import check_output_path, convert

    out = check_output_path(output, overwrite=bool(kwargs.get("overwrite")))
    if kwargs.get("quantize") not in (None, "auto"):
        raise ConversionError("--quantize auto chooses the mode itself; drop the other --quantize.")
    kwargs.pop("quantize", None)
    if kwargs.get("max_accuracy_drop") is None and kwargs.get("min_cosine") is None:
        if kwargs.get("eval_labels") is not None:
            kwargs["max_accuracy_drop"] = DEFAULT_MAX_DROP
        else:
            kwargs["min_cosine"] = DEFAULT_MIN_COSINE
    tries: list[AutoTry] = []
    results: dict[str, tuple[Path, ConversionResult]] = {}
    with tempfile.TemporaryDirectory(prefix="tfedge-auto-", dir=str(out.parent)) as tmp:
        for label, mode in AUTO_MODES:
            skip = _skip_reason(mode, kwargs, tries)
            if skip:
                tries.append(AutoTry(label, None, None, None, None, False, skip))
                continue
            path = Path(tmp) / f"candidate{len(tries)}.tflite"
            try:
                settings = {**kwargs, **mode, "overwrite": True}
                if mode["quantize"] != "int8":
                    settings["debug_quantization"] = None  # the per-layer table is int8's
                result = convert(source, path, **settings)
            except ConversionError as exc:
                if exc.result is None:
                    tries.append(AutoTry(label, None, None, None, None, False, f"failed: {str(exc).splitlines()[0]}"))
                    continue
                result = exc.result
            tries.append(_try(label, result))
            if result.passed:
                results[label] = (path, result)
        chosen = _choose(tries)
        if chosen is None:
            table = "; ".join(f"{t.mode}: {t.error or 'budget missed'}" for t in tries)
            raise ConversionError(f"--quantize auto: no mode met the budget ({table}).")
        path, result = results[chosen]
        shutil.move(str(path), str(out))
    plot, note = _plot(tries, out)
    return AutoResult(dataclasses.replace(result, output=str(out)), chosen, tuple(tries), plot, note)


def _skip_reason(mode: dict[str, Any], kwargs: dict[str, Any], tries: list[AutoTry]) -> Optional[str]:
    """Why a candidate is not converted (the table says it), or None."""
    if mode["quantize"] == "int8" and kwargs.get("calibration") is None:
        return "skipped: needs --calibration"
    if mode.get("keep_float") and any(t.mode == "int8" and t.passed for t in tries):
        return "skipped: int8 alone met the budget"
    return None


def _choose(tries: Sequence[AutoTry]) -> Optional[str]:
    """The candidate that met the budget with the smallest model, then the lowest latency."""
    met = [t for t in tries if t.passed and t.size_bytes is not None]
    if not met:
        return None
    best = min(met, key=lambda t: (t.size_bytes, t.latency_ms if t.latency_ms is not None else float("inf")))
    return best.mode


def _try(label: str, result: ConversionResult) -> AutoTry:
    """The table row of one converted candidate."""
    cosines = [o.cosine for o in result.outputs]
    return AutoTry(
        label,
        result.size_after,
        result.latency_ms,
        result.converted_accuracy,
        min(cosines) if cosines else None,
        result.passed,
    )


def _plot(tries: list[AutoTry], out: Path) -> tuple[Optional[str], Optional[str]]:
    """A PNG of accuracy (or cosine) against latency next to ``out``; (path, None) or (None, why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, 'no PNG: matplotlib is not installed (pip install "tfedge[dev]" or pip install matplotlib)'
    points = [t for t in tries if t.latency_ms is not None and (t.accuracy is not None or t.cosine is not None)]
    if not points:
        return None, "no PNG: no mode was measured"
    by_accuracy = all(t.accuracy is not None for t in points)
    fig, ax = plt.subplots(figsize=(6, 4))
    for t in points:
        y = 100 * t.accuracy if by_accuracy else t.cosine  # type: ignore[operator]
        ax.scatter([t.latency_ms], [y], color="tab:green" if t.passed else "tab:red")
        ax.annotate(f"{t.mode} ({(t.size_bytes or 0) / 1024:.0f} KiB)", (t.latency_ms, y), fontsize=8)
    ax.set_xlabel("latency per sample (ms)")
    ax.set_ylabel("accuracy (%)" if by_accuracy else "worst output cosine")
    ax.set_title("tfedge-convert --quantize auto")
    path = out.with_suffix(".quantize-auto.png")
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return str(path), None
