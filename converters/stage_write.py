"""Stage "write": the model file, written atomically, only when every check passed.

A report with failures is raised as a ConversionError carrying it (nothing written); an
Edge TPU target is compiled when ``edgetpu_compiler`` is on PATH.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from tfedge._files import write_atomically
from tfedge.errors import ConversionError

from .config import Target
from .job import Job

__all__ = ["write"]


def write(job: Job) -> Job:
    """``job.result`` with its ``output``, once the file is written.

    Raises:
        ConversionError: the report has failures (``exc.result`` holds it); nothing is written.
    """
    result = job.result
    assert result is not None
    if result.failures:
        raise ConversionError("Validation failed, nothing written: " + "; ".join(result.failures), result=result)
    write_atomically(job.output, job.content)
    warnings = list(result.warnings)
    edgetpu, note = _edgetpu_compile(job.output) if job.options.target is Target.EDGETPU else (None, None)
    if note:
        warnings.append(note)
    return job.but(result=dataclasses.replace(result, output=str(job.output), edgetpu_model=edgetpu, warnings=tuple(warnings)))


def _edgetpu_compile(path: Path) -> tuple[Optional[str], Optional[str]]:
    """Run edgetpu_compiler when on PATH; else say how. Returns (compiled file, note)."""
    compiler = shutil.which("edgetpu_compiler")
    howto = f"edgetpu_compiler -s -o {path.parent} {path}"
    if compiler is None:
        return None, (
            f"edgetpu_compiler is not on PATH; compile for the Edge TPU with: {howto} "
            "(install: https://coral.ai/docs/edgetpu/compiler/)."
        )
    proc = subprocess.run([compiler, "-s", "-o", str(path.parent), str(path)], capture_output=True, text=True)
    compiled = path.with_name(f"{path.stem}_edgetpu.tflite")
    if proc.returncode != 0 or not compiled.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"edgetpu_compiler failed ({tail[0]}); run it by hand: {howto}"
    return str(compiled), None
