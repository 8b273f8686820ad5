"""benchmarks/verify_cost.py: its measurements on small models (MobileNetV2 is too slow here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support import model_path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.append(str(BENCH))  # last: a module there must never hide an installed package

import verify_cost  # noqa: E402

from tfedge import _backend  # noqa: E402

BACKENDS = [b for b in verify_cost.BACKENDS if b in _backend.available_backends()]


@pytest.mark.skipif(not BACKENDS, reason="no TFLite backend installed")
def test_every_model_the_backend_loads_is_measured_and_none_rejected() -> None:
    result = verify_cost.measure(BACKENDS[0], None, repeat=2, processes=1)
    assert result["rejected"] == []
    names = {m["model"] for m in result["models"]}
    assert {"add.tflite", "pc_conv.tflite", "multi_subgraphs_while.tflite"} <= names
    assert "test_model_broken.tflite" not in names  # the backend refuses it too
    assert all(m["verify_s"] > 0 and m["load_s"] > 0 for m in result["models"])


@pytest.mark.skipif(not BACKENDS, reason="no TFLite backend installed")
def test_first_loads_and_reloads_time_both_ways() -> None:
    first = verify_cost.first_loads(model_path("add.tflite"), BACKENDS[0], processes=1, cold=False)
    assert first is not None and set(first) == {"off", "on", "first_verify"}
    assert all(0 < t < 5 for t in first.values())
    again = verify_cost.reloads(model_path("add.tflite"), BACKENDS[0], repeat=2)
    assert set(again) == {"off", "on"} and all(t > 0 for t in again.values())
