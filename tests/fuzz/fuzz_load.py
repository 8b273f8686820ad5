"""The load path up to and into the backend: ``tfedge.Interpreter(bytes, probe=False)``.

Reads the bytes, runs the structural check, chooses the backend and hands it the model, then
allocates its tensors, all in this process. Only ModelError may come out; a crash of the
backend on a model that passed the check kills the fuzzer, which keeps the input as a finding.
The probe (a child process on every first load, on by default) is off: it would turn such a
crash into a ModelError, hiding what the structural check lets through, and it caches a
verdict on disk per input.
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
    """Create an Interpreter from the bytes in this process (verify, choose, load, allocate)."""
    Interpreter(data, probe=False)
