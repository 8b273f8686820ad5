"""Validation: TensorFlow (the reference) against the converted model through tfedge.

Also reads the operator table of a .tflite file and probes every installed runtime in
a fresh subprocess (see :mod:`converters._probe`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Optional

import numpy as np

import tfedge
from tfedge import _backend
from tfedge.errors import TfedgeError

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

#: Seconds one runtime probe may take before it counts as a hang.
PROBE_TIMEOUT = 120.0


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
        return tfedge.Interpreter(content)
    except TfedgeError:
        return tfedge.Interpreter(content, backend="tensorflow")


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
    """Load and run the model with every installed runtime, each in a fresh subprocess.

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
    with tempfile.TemporaryDirectory(prefix="tfedge-probe-") as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(content)
        env = dict(os.environ)
        env.pop(_backend.ENV_VAR, None)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "converters._probe", name, path],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
            )
            for name in names
        }
        verdicts = {name: _verdict(proc) for name, proc in procs.items()}
    for v in verdicts.values():
        if v.get("error"):
            v["error"] = str(v["error"]).replace(f"Model file {path!r}", "The model")
    for name, v in verdicts.items():
        # tfedge refuses a backend that is installed but cannot work (tflite-runtime under
        # numpy 2): the report names it with its version and tfedge's reason, not as missing.
        if not v.get("installed", True) and not v.get("version"):
            v["version"] = _distribution_version(name)
    installed = [n for n in names if verdicts[n].get("installed", True)]
    wanted = list(required) if required else installed[:1]
    checks = []
    for name in names:
        v = verdicts[name]
        if name not in wanted and not v.get("installed", True) and not v.get("version"):
            continue
        checks.append(
            RuntimeCheck(name, str(v.get("version") or "not installed"), bool(v.get("ok")), name in wanted, v.get("error"))
        )
    return tuple(checks)


def _distribution_version(backend: str) -> str:
    """The installed version of ``backend``'s distribution, or "" when it is not installed."""
    try:
        return metadata.version(backend.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return ""


def _verdict(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The probe's JSON verdict, or a failure for a crash or a hang."""
    try:
        out, err = proc.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"ok": False, "error": f"timed out after {PROBE_TIMEOUT:.0f} s"}
    if proc.returncode != 0:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        how = f"crashed (signal {-proc.returncode})" if proc.returncode < 0 else f"exited {proc.returncode}"
        return {"ok": False, "error": f"the runtime {how}: {tail}"}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": f"unreadable probe output: {out[-200:]!r}"}
