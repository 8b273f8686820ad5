"""Corrupted models loaded through tfedge.Interpreter give a ModelError: never a crash or a hang."""

from __future__ import annotations

import numpy as np
import pytest

import fuzz
from support import BACKENDS

MODELS = [
    fuzz.MODELS_DIR / name
    for name in ("add.tflite", "multi_add.tflite", "call_once_mul.tflite", "lstm.tflite",
                 "multi_subgraphs_while.tflite", "pc_conv.tflite")
]


def _backend() -> str:
    """The first backend that works here, or skip."""
    for name in fuzz.BACKENDS:
        if name in BACKENDS:
            return name
    pytest.skip("no TFLite backend works here")


def test_mutants_are_reproducible_and_varied() -> None:
    data = MODELS[0].read_bytes()
    first = fuzz.mutate(data, np.random.default_rng([0, 1]))
    assert first == fuzz.mutate(data, np.random.default_rng([0, 1]))
    recipes = [recipe for recipe, _ in fuzz.mutants(MODELS, 200, seed=0)]
    assert len(set(recipes)) == 200
    for kind in ("truncate@", "flip@", "word@", "offset@"):
        assert any(kind in recipe for recipe in recipes)


def _assert_only_model_errors(results: list[fuzz.Result]) -> None:
    """Every mutant loaded or raised ModelError; list the others with their recipes."""
    bad = [r for r in results if r.outcome != "ok" and not r.outcome.startswith("ModelError")]
    assert not bad, "\n".join(f"{r.outcome} <- {r.recipe}" for r in bad)


def test_tfedge_mode_turns_corruption_into_model_errors() -> None:
    results = fuzz.run(MODELS, count=300, seed=0, backend=_backend(), modes=("tfedge",), jobs=2)
    assert len(results) == 300
    _assert_only_model_errors(results)


@pytest.mark.slow
def test_tfedge_mode_ten_thousand_mutants() -> None:
    results = fuzz.run(MODELS, count=10_000, seed=0, backend=_backend(), modes=("tfedge",),
                       jobs=2)
    _assert_only_model_errors(results)
