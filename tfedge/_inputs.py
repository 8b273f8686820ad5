"""Input data that the command line and the benchmark make up for a model."""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .interpreter import TensorSpec

__all__ = ["random_input"]


def random_input(spec: TensorSpec, rng: np.random.Generator, *, batch: int | None = None) -> np.ndarray:
    """A random array that fits ``spec``.

    Args:
        spec: The input to fill.
        rng: The random generator (seed it for repeatable data).
        batch: Size of dimension 0; None keeps the model's (free dimensions become 1).

    Raises:
        InputError: the dtype has no random form, or ``batch`` is given for a scalar input.
    """
    shape = tuple(d if d > 0 else 1 for d in spec.shape_signature) or spec.shape
    if batch is not None:
        if not shape:
            raise InputError(f"Input {spec.name!r} is a scalar, so it has no batch dimension to set to {batch}.")
        shape = (batch, *shape[1:])
    if spec.dtype.kind == "f":
        return rng.standard_normal(shape).astype(spec.dtype)
    if spec.dtype.kind in "iu":
        info = np.iinfo(spec.dtype)
        return rng.integers(max(info.min, -128), min(info.max, 127), shape, endpoint=True).astype(spec.dtype)
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if spec.dtype.kind in "OSU":
        return np.array([b"tfedge"] * int(np.prod(shape)), dtype=object).reshape(shape)
    raise InputError(f"Input {spec.name!r} has type {spec.dtype.name}, for which --random cannot make data.")
