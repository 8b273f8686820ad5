"""Validation: TensorFlow (the reference) against the converted model through tfedge.

Also reads the operator table of a .tflite file and probes every installed runtime in
a fresh child process (see :mod:`tfedge.isolate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from typing import Optional

import numpy as np

import tfedge
from tfedge import _backend
from tfedge.errors import TfedgeError
from tfedge.isolate import ProbeResult, probe_model

from .calibration import Samples
from .report import OpUse, OutputMetrics, RuntimeCheck
from .sources import SIGNATURE, InputSpec

__all__ = [
    "Evaluation",
    "compare",
    "evaluate",
    "model_operators",
    "probe_runtimes",
    "random_samples",
]


def model_operators(content: bytes) -> tuple[OpUse, ...]:
    """Operators of a .tflite model with versions and use counts, read from the flatbuffer."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if isinstance(v, int) and not k.startswith("_")}
    counts = [0] * len(model.operatorCodes or [])
    for subgraph in model.subgraphs or []:
        for op in subgraph.operators or []:
            counts[op.opcodeIndex] += 1
    uses = []
    for code, count in zip(model.operatorCodes or [], counts):
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        is_builtin = name != "CUSTOM"
        if not is_builtin:
            custom = code.customCode
            name = custom.decode() if isinstance(custom, bytes) else str(custom)
        uses.append(OpUse(name, int(code.version), count, is_builtin))
    return tuple(sorted(uses, key=lambda u: (-u.count, u.name)))


def compare(reference: np.ndarray, converted: np.ndarray, name: str) -> OutputMetrics:
    """Max/mean absolute error, cosine similarity and (for class scores) top-1 agreement."""
    ref = np.asarray(reference, np.float64)
    got = np.asarray(converted, np.float64).reshape(ref.shape)
    diff = np.abs(ref - got)
    a, b = ref.reshape(-1), got.reshape(-1)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms == 0.0:
        cosine = 1.0 if np.array_equal(a, b) else 0.0
    else:
        cosine = float(np.dot(a, b) / norms)
    top1 = None
    if ref.ndim == 2 and ref.shape[1] >= 2:  # (samples, classes): scores or logits
        top1 = float(np.mean(ref.argmax(axis=1) == got.argmax(axis=1)))
    return OutputMetrics(name, float(diff.max()), float(diff.mean()), cosine, top1)


def random_samples(inputs: Sequence[InputSpec], count: int) -> Samples:
    """Seeded random inputs, for when no data was given (uniform in [0, 1) for floats)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for spec in inputs:
        shape = (count, *[1 if d is None else d for d in spec.shape[1:]])
        if spec.dtype.kind == "f":
            arrays[spec.name] = rng.random(shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            arrays[spec.name] = rng.random(shape) < 0.5
        else:
            arrays[spec.name] = rng.integers(0, 10, shape).astype(spec.dtype)
    return Samples(arrays, "random inputs (no --eval-data or calibration data given)")


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured."""

    outputs: tuple[OutputMetrics, ...]
    reference_accuracy: Optional[float]
    converted_accuracy: Optional[float]
    latency_ms: float
    backend: str


def _load(content: bytes) -> tfedge.Interpreter:
    """An in-process Interpreter; full tf.lite when the thin runtimes cannot load the model."""
    try:
        return tfedge.Interpreter(content, quiet=True)
    except TfedgeError:
        return tfedge.Interpreter(content, backend="tensorflow", quiet=True)


def evaluate(
    content: bytes,
    reference: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]],
    samples: Samples,
    labels: Optional[np.ndarray] = None,
    *,
    latency_runs: int = 50,
) -> Evaluation:
    """Run ``samples`` through TensorFlow and through tfedge, and compare output by output.

    Raises:
        TfedgeError: the converted model cannot be loaded or run in this process.
    """
    interp = _load(content)
    ref_out: dict[str, list[np.ndarray]] = {}
    got_out: dict[str, list[np.ndarray]] = {}
    for sample in samples.one_by_one():
        for name, value in reference(sample).items():
            ref_out.setdefault(name, []).append(value)
        for name, value in interp.run(sample, signature=SIGNATURE).items():
            got_out.setdefault(name, []).append(value)
    metrics = []
    ref_acc = conv_acc = None
    for name in sorted(ref_out):
        ref = np.concatenate(ref_out[name])
        got = np.concatenate(got_out[name])
        m = compare(ref, got, name)
        metrics.append(m)
        if labels is not None and m.top1_agreement is not None and ref_acc is None:
            ref_acc = float(np.mean(ref.argmax(axis=1) == labels))
            conv_acc = float(np.mean(got.argmax(axis=1) == labels))
    one = next(samples.one_by_one())
    return Evaluation(tuple(metrics), ref_acc, conv_acc, _latency_ms(interp, one, latency_runs), interp.backend)


def _latency_ms(interp: tfedge.Interpreter, sample: Mapping[str, np.ndarray], runs: int) -> float:
    """Median milliseconds of one ``run`` after warm-up (at most about a second of runs)."""
    for _ in range(3):
        interp.run(sample, signature=SIGNATURE)
    times = []
    budget = time.perf_counter() + 1.0
    for _ in range(runs):
        start = time.perf_counter()
        interp.run(sample, signature=SIGNATURE)
        times.append(time.perf_counter() - start)
        if time.perf_counter() > budget and len(times) >= 5:
            break
    return 1000.0 * float(np.median(times))


def probe_runtimes(content: bytes, required: Optional[Sequence[str]]) -> tuple[RuntimeCheck, ...]:
    """Load and run the model with every installed runtime, each in a fresh child process.

    The children are :func:`tfedge.isolate.probe_model`'s (``python -m tfedge.isolate``),
    which never import TensorFlow: an app on the device loads the model that way.

    Args:
        content: The model.
        required: Backends that must run it; None means the one tfedge picks by default.

    Returns:
        One check per installed backend (and per required one, installed or not).
    """
    names = [b for b in _backend.BACKENDS if b != "tensorflow"]
    for name in required or ():
        if name not in names:
            names.append(name)
    # Installed or not is read from the distributions, never by importing the backend here:
    # this process imported TensorFlow, so tfedge refuses tflite_runtime in it, while the
    # children (no TensorFlow) are where an app on the device loads the model.
    versions = {name: _distribution_version(name) for name in names}
    installed = [n for n in names if versions[n]]
    with ThreadPoolExecutor(max_workers=max(1, len(installed))) as pool:  # the children run at once
        verdicts = dict(zip(installed, pool.map(
            lambda n: probe_model(content, backend=n, backend_version=versions[n], use_cache=False), installed,
        )))
    wanted = list(required) if required else installed[:1]
    checks = []
    for name in names:
        if name not in verdicts:
            if name in wanted:
                checks.append(RuntimeCheck(name, "not installed", False, True, _not_installed(name)))
            continue
        verdict = verdicts[name]
        checks.append(RuntimeCheck(name, versions[name], verdict.ok, name in wanted, _probe_error(verdict)))
    return tuple(checks)


def _not_installed(name: str) -> str:
    """The reason tfedge gives for a missing backend (its install hint)."""
    try:
        _backend.get_backend(name)
    except TfedgeError as exc:
        return str(exc)
    return f"{name} is not installed"


def _probe_error(verdict: ProbeResult) -> Optional[str]:
    """What a failed probe says: the runtime's own error, or how the child died."""
    if verdict.ok:
        return None
    if verdict.outcome == "error":  # "ModelError: The model uses ...": the message alone
        return verdict.detail.split(": ", 1)[-1]
    return str(verdict.error("The model"))

def _distribution_version(backend: str) -> str:
    """The installed version of ``backend``'s distribution, or "" when it is not installed."""
    try:
        return metadata.version(backend.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return ""


