"""The load path up to and into the backend: ``tfedge.Interpreter(bytes, probe=False)``.

Reads the bytes, runs the structural check, chooses the backend and hands it the model, then
allocates its tensors, all in this process. Only ModelError may come out; a crash of the
backend on a model that passed the check kills the fuzzer, which keeps the input as a finding.
The probe (a child process on every first load, on by default) is off: it would turn such a
crash into a ModelError, hiding what the structural check lets through, and it caches a
verdict on disk per input.

A model that declares more than :data:`MAX_TENSOR_BYTES` of tensors is checked, not loaded:
loading allocates what the file declares (XNNPACK plans with the declared shapes, so a
1 KB file declaring one 6 GiB tensor takes 6 GiB and half a minute), which is the model's
demand, known before loading (``ModelSummary.tensor_bytes``), not a fault of the load path.
"""

from __future__ import annotations

from _harness import model_seeds
from fuzz_verify import SEED_MODELS

from tfedge import Interpreter
from tfedge.errors import ModelError
from tfedge.verify import verify_model

ALLOWED: tuple[type[BaseException], ...] = (ModelError,)

#: Declared tensor bytes above which an input is only checked (well within the memory bound).
MAX_TENSOR_BYTES = 16 << 20


def seeds() -> list[bytes]:
    """The structural check's seeds: small models of every shape the check knows."""
    return model_seeds(*SEED_MODELS)


def one_input(data: bytes) -> None:
    """Create an Interpreter from the bytes in this process (verify, choose, load, allocate)."""
    if verify_model(data).tensor_bytes > MAX_TENSOR_BYTES:
        return
    Interpreter(data, probe=False)
