"""Stage "validate": the report — the model run against the source, the runtimes, the budgets.

The converted model is run next to the source's reference (TensorFlow, or the float
``.tflite``) on the evaluation samples, each runtime is probed in a child process, and the
budgets (``--max-accuracy-drop``, ``--min-cosine``) are checked. What fails is put in the
report's ``failures``; the write stage refuses to write such a model.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from tfedge.errors import TfedgeError

from .config import ConvertOptions, Quantize
from .job import Job
from .recurrent import recurrent_summary
from .report import ConversionResult, OutputMetrics, RuntimeCheck
from .stage_check import held_out_limit
from .validate import evaluate, model_operators, probe_runtimes, random_samples

__all__ = ["validate"]

#: Below this cosine against TensorFlow, an output is called out in the report (unless --min-cosine
#: already decides); the same floor ``--quantize auto`` holds its candidates to.
LOW_COSINE = 0.99

#: Known operator versions that old runtimes lack, and the conversion option that avoids them.
_VERSION_FIXES = {
    ("FULLY_CONNECTED", 12): "--per-tensor (per-channel dynamic-range FULLY_CONNECTED needs version 12)",
}


def validate(job: Job) -> Job:
    """``job.result``: the report, with ``failures`` when a check failed.

    Raises:
        ConversionError: an integer-only model (``--io-type int8``/``uint8``) that kept float ops.
    """
    src, opts, data, content = job.source, job.options, job.data, job.content
    assert src is not None and data is not None and opts.quantize is not None
    operators = model_operators(content)
    non_builtin = tuple(o.name for o in operators if not o.builtin)
    warnings: list[str] = list(data.warnings)
    failures: list[str] = []
    if non_builtin:
        warnings.append(
            f"the model uses Select TF ops {', '.join(non_builtin)}; tfedge with ai_edge_litert or "
            "tflite_runtime cannot run them; it needs a runtime linked with the Flex delegate."
        )
    summary = recurrent_summary(operators)
    if src.unroll_note:
        summary = f"recurrent layers {src.unroll_note}" + (f"; {summary}" if summary else "")
    fields: dict[str, Any] = {"static_batch_note": src.static_batch_note, "recurrent": summary, "kept_float": job.kept_float}
    if opts.quantize.needs_calibration:
        warnings += _float_op_warnings(content, opts)
    if opts.validate:
        evalset = data.evaluation if data.evaluation is not None else random_samples(src.inputs, min(held_out_limit(opts), 32))
        fields["eval_origin"] = evalset.origin
        fields["eval_samples"] = len(evalset)
        try:
            ev = evaluate(content, src.reference(), evalset, data.labels)
        except TfedgeError as exc:
            warnings.append(f"the converted model could not be run here, so it was not compared: {exc}")
        else:
            fields.update(
                outputs=ev.outputs,
                reference_accuracy=ev.reference_accuracy,
                converted_accuracy=ev.converted_accuracy,
                latency_ms=ev.latency_ms,
                latency_backend=ev.backend,
            )
            if opts.min_cosine is None:
                warnings += agreement_warnings(ev.outputs)
            if opts.quantize is Quantize.INT16X8:
                warnings.append(
                    f"int16x8 ran at {ev.latency_ms:.3f} ms per sample: TFLite's int16 kernels are reference code "
                    "that XNNPACK does not accelerate, often tens of times slower than int8 (measured 70x on a "
                    "small CNN); use it for accuracy int8 cannot reach, not for speed."
                )
        runtimes = probe_runtimes(content, opts.runtimes)
        fields["runtimes"] = runtimes
        broken = [_runtime_failure(r, opts, runtimes) for r in runtimes if r.required and not r.ok]
        # Flex ops were allowed on purpose: the thin runtimes failing is expected, not fatal.
        (warnings if non_builtin and opts.allow_select_tf_ops else failures).extend(broken)
    result = ConversionResult(
        output=None,
        source=src.name,
        source_kind=src.kind,
        options=_options_dict(opts),
        size_before=src.size_bytes,
        size_after=len(content),
        operators=operators,
        non_builtin_ops=non_builtin,
        warnings=tuple(warnings),
        convert_seconds=job.convert_seconds,
        **fields,
    )
    failures += _budget_failures(result, opts)
    return job.but(result=dataclasses.replace(result, failures=tuple(failures)) if failures else result)


def agreement_warnings(outputs: Sequence[OutputMetrics]) -> list[str]:
    """A warning per output whose answers drifted from TensorFlow's (cosine under LOW_COSINE, or NaN)."""
    return [
        f"output {o.name!r} agrees with TensorFlow only to cosine {o.cosine:.6f} (under {LOW_COSINE}): its answers "
        "may be wrong. Check that the calibration data is representative, or use a milder mode (int16x8, "
        "dynamic, float16); --min-cosine makes this an error."
        for o in outputs
        if not o.cosine >= LOW_COSINE
    ]


def _float_op_warnings(content: bytes, opts: ConvertOptions) -> list[str]:
    """Warnings (or, integer-only, a ConversionError) for ops a quantized model left in float32."""
    from .diagnose import float_ops, integer_only_error, unreached_branch_warning

    ops = float_ops(content)
    error = integer_only_error(ops, opts)
    if error is not None:
        raise error
    note = unreached_branch_warning(ops)
    return [note] if note else []


_NEEDS = re.compile(r"needs (\w+) version (\d+)")


def _runtime_failure(check: RuntimeCheck, opts: ConvertOptions, runtimes: Sequence[RuntimeCheck]) -> str:
    """Why a required runtime cannot run the model, and the fixes that exist."""
    if check.version == "not installed":
        return f"required runtime {check.backend} is not installed ({check.error})"
    fixes = [f"run it with {r.backend} {r.version}, which can" for r in runtimes if r.ok]
    need = _NEEDS.search(check.error or "")
    what = check.error or "unknown error"
    if need:
        op, version = need.group(1), int(need.group(2))
        what = f"it needs {op} version {version}, which {check.backend} {check.version} lacks"
        known = _VERSION_FIXES.get((op, version))
        if known and opts.per_channel:
            fixes.insert(0, f"convert with {known}")
        if opts.quantize is Quantize.DYNAMIC:
            fixes.append("convert with --quantize int8 or float16")
        fixes.append("convert with a TensorFlow release as old as the runtime")
    if "no_integer_overflow_from_quantization" in what:
        fixes.insert(
            0,
            "calibrate with real samples: an activation range is too narrow for its quantization "
            "scale (typical of untrained weights or calibration data unlike real inputs)",
        )
        if opts.quantize is Quantize.INT16X8:
            fixes.append("convert with --quantize int8")
    what = what.rstrip(".")
    return f"{check.backend} cannot run the model: {what}." + (f" Fixes: {'; '.join(fixes)}." if fixes else "")


def _budget_failures(result: ConversionResult, opts: ConvertOptions) -> list[str]:
    """Broken --max-accuracy-drop / --min-cosine budgets."""
    failures = []
    if opts.max_accuracy_drop is not None and opts.validate:
        drop = result.accuracy_drop
        if drop is None:
            failures.append("--max-accuracy-drop needs class-score outputs (top-1) or --eval-labels")
        elif drop > opts.max_accuracy_drop:
            failures.append(f"accuracy dropped {drop:.2f} points, more than --max-accuracy-drop {opts.max_accuracy_drop}")
    if opts.min_cosine is not None and opts.validate:
        for o in result.outputs:
            if o.cosine < opts.min_cosine:
                failures.append(f"output {o.name!r} has cosine {o.cosine:.6f}, below --min-cosine {opts.min_cosine}")
        if not result.outputs:
            failures.append("--min-cosine needs a validated model, and none was compared")
    return failures


def _options_dict(opts: ConvertOptions) -> dict[str, Any]:
    """Resolved options as JSON-ready data."""
    data = dataclasses.asdict(opts)
    return {k: (v.value if hasattr(v, "value") else list(v) if isinstance(v, tuple) else v) for k, v in data.items()}
