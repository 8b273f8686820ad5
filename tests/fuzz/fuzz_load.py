"""The load path up to the backend: ``tfedge.Interpreter(bytes)``, as an app creates one.

Reads the bytes, runs the structural check, chooses the backend and hands it the model, then
allocates its tensors. Only ModelError may come out; a crash of the backend on a model that
passed the check kills the fuzzer, which keeps the input as a finding.
"""

from __future__ import annotations

from _harness import model_seeds
from fuzz_verify import SEED_MODELS

from tfedge import Interpreter
from tfedge.errors import ModelError

ALLOWED: tuple[type[BaseException], ...] = (ModelError,)


def seeds() -> list[bytes]:
    """The structural check's seeds: small models of every shape the check knows."""
    return model_seeds(*SEED_MODELS)


def one_input(data: bytes) -> None:
    """Create an Interpreter from the bytes (verify, choose, load, allocate)."""
    Interpreter(data)
