"""Before compiling: every model is loaded and run once on the backend that goes in.

A model that cannot run there (an op the backend lacks) stops the build in one line
naming the op and the targets whose backend runs it, instead of on the device after a
build of many minutes. Each model runs in a child (``python -m tfedge.isolate``, tfedge's
own probe), so a backend that crashes on it fails the check, not the build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .config import BuildError, ModelFile
from .targets import TARGETS, Backend, Target

__all__ = ["check_models", "run_once"]

#: How long one model may take to load and run once (a WHILE that never ends).
TIMEOUT_S = 120.0

#: The op names in tfedge's messages for a model its backend cannot run.
_OP = re.compile(r"custom op\(s\) (\S+(?:, \S+)*) that|builtin operator (\w+)|needs (\w+) version \d+")


def run_once(python: str, backend: Backend, model: Path, env: Optional[Dict[str, str]] = None,
             prefix: Sequence[str] = ()) -> Tuple[bool, str]:
    """Load ``model`` and run it once on ``backend`` with ``python`` (after ``prefix``: chroot); (ok, why not)."""
    try:
        proc = subprocess.run([*prefix, python, "-m", "tfedge.isolate", backend.value], input=model.read_bytes(),
                              capture_output=True, timeout=TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        return False, f"did not finish one inference within {TIMEOUT_S:g} s"
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        outcome, detail = json.loads(lines[-1])
    except (ValueError, IndexError, TypeError):
        tail = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return False, f"crashed the backend (exit status {proc.returncode}: {tail})"
    return outcome == "ok", str(detail)


def _op_names(detail: str) -> List[str]:
    """The ops a failure message names."""
    match = _OP.search(detail)
    if match is None:
        return []
    return [op.strip() for op in next(g for g in match.groups() if g).split(",")]


def check_models(target: Target, models: Sequence[ModelFile], python: str, env: Optional[Dict[str, str]] = None,
                 prefix: Sequence[str] = ()) -> None:
    """Fail unless each of ``models`` loads and runs once on ``target``'s backend (in ``python``).

    Raises:
        BuildError: one line naming the model, the op, and targets that run it (tried on
            the other backends installed here), or why it failed.
    """
    for model in models:
        ok, detail = run_once(python, target.backend, model.path, env, prefix)
        if ok:
            continue
        ops = _op_names(detail)
        what = f"uses {', '.join(ops)}, which {target.backend.value} does not have" if ops else detail.rstrip(".")
        # The other backends are tried with the Python running the build (a root's venv, or
        # the no-BLAS one, has one backend only).
        runs = [b for b in Backend if b is not target.backend and find_spec(b.value) is not None
                and run_once(sys.executable, b, model.path)[0]]
        others = [t.name for t in TARGETS if t.backend in runs]
        fix = (f"build for a target whose backend runs it: {', '.join(f'--target {n}' for n in others)}"
               if others else "no backend installed here runs it: convert the model with builtin ops only")
        raise BuildError(f"Model {model.name!r} ({model.path.name}) cannot run on {target.backend.value}, "
                         f"the backend of target {target.name!r}: it {what}. Nothing was compiled; {fix}.")
