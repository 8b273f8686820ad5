"""benchmarks/tasks.py: a short run gives every number, in the JSON run_all's table reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("skimage")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_short_run_json() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "tasks.py"), "--json", "--rounds", "3", "--calls", "20"],
                          capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout)
    for clock in ("wall", "cpu"):
        assert result[f"run us ({clock})"] > 0
        # detect() does run() and more: slower, and not absurdly so.
        assert 0.8 < result[f"detect 128x128 / run ({clock})"] < 5
        assert set(result) >= {f"detect 512x512 us ({clock})", f"detect 512x512 / run ({clock})"}
