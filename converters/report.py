"""The validation report as data (``ConversionResult``), as a table and as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["ConversionResult", "KeptLayer", "OpUse", "OutputMetrics", "RuntimeCheck"]


@dataclass(frozen=True)
class KeptLayer:
    """A layer ``--keep-float`` left in float32, and what that cost.

    Attributes:
        tensor: Its output tensor (the name ``--keep-float`` takes).
        op: Its TFLite op.
        rmse_over_scale: Its int8 error on the calibration data, in quantization steps.
        size_bytes: Bytes it added to the model (float weights instead of int8).
        latency_ms: Milliseconds it added per sample (None when not measured).
    """

    tensor: str
    op: str
    rmse_over_scale: float
    size_bytes: int
    latency_ms: Optional[float]


@dataclass(frozen=True)
class OutputMetrics:
    """How one output of the converted model compares with TensorFlow's.

    Attributes:
        name: The output's signature key.
        max_abs_error: Largest ``|converted - reference|`` over all samples.
        mean_abs_error: Mean of ``|converted - reference|``.
        cosine: Cosine similarity of the flattened outputs (1.0 is identical direction).
        top1_agreement: Fraction of samples whose argmax agrees (class-score outputs only).
    """

    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    top1_agreement: Optional[float] = None


@dataclass(frozen=True)
class OpUse:
    """An operator the model uses: ``CONV_2D`` v3 x 5, or a custom/flex op."""

    name: str
    version: int
    count: int
    builtin: bool


@dataclass(frozen=True)
class RuntimeCheck:
    """Whether one runtime loaded and ran the converted model (in a fresh process)."""

    backend: str
    version: str
    ok: bool
    required: bool
    error: Optional[str] = None


@dataclass(frozen=True)
class ConversionResult:
    """Everything ``convert()`` did and measured. Sizes in bytes, latency in milliseconds.

    Attributes:
        output: The written model, or None when nothing was written (a failure).
        source: How the source was named; ``source_kind`` says what it was.
        options: The resolved options (after the target's defaults).
        size_before: Size of the source (file, SavedModel directory, or export).
        size_after: Size of the converted model.
        operators: Operators used, with versions and counts.
        non_builtin_ops: Custom or Select TF ops (the thin runtime lacks them).
        eval_origin: Which samples validated the model; None when validation was off.
        eval_samples: How many.
        outputs: Per-output comparison with TensorFlow.
        reference_accuracy: TensorFlow's accuracy on ``--eval-labels`` (0..1).
        converted_accuracy: The converted model's accuracy on the same labels.
        latency_ms: Median latency of one sample through ``tfedge.Interpreter``.
        latency_backend: The backend that latency was measured with.
        runtimes: Which installed runtimes can load and run the model.
        edgetpu_model: The Edge TPU compiled file, when edgetpu_compiler ran.
        warnings: Things that did not fail the run but matter.
        failures: Broken budgets or runtimes; non-empty means the run failed.
        convert_seconds: Wall time of the conversion itself.
        static_batch_note: How the batch dimension was fixed, when it was.
        recurrent: How recurrent layers run (fused sequence ops or a WHILE loop).
    """

    output: Optional[str]
    source: str
    source_kind: str
    options: dict[str, Any]
    size_before: int
    size_after: int
    operators: tuple[OpUse, ...]
    non_builtin_ops: tuple[str, ...]
    eval_origin: Optional[str] = None
    eval_samples: int = 0
    outputs: tuple[OutputMetrics, ...] = ()
    reference_accuracy: Optional[float] = None
    converted_accuracy: Optional[float] = None
    latency_ms: Optional[float] = None
    latency_backend: Optional[str] = None
    runtimes: tuple[RuntimeCheck, ...] = ()
    edgetpu_model: Optional[str] = None
    warnings: tuple[str, ...] = ()
    failures: tuple[str, ...] = field(default=())
    convert_seconds: float = 0.0
    #: How the batch dimension was fixed (recurrent models need a static one), else None.
    static_batch_note: Optional[str] = None
    #: How recurrent layers run: fused TFLite sequence ops or a WHILE loop; None without any.
    recurrent: Optional[str] = None
    #: Layers --keep-float left in float32, most sensitive first.
    kept_float: tuple[KeptLayer, ...] = ()

    @property
    def passed(self) -> bool:
        """True when no budget or required runtime failed."""
        return not self.failures

    @property
    def size_ratio(self) -> float:
        """Converted size over source size."""
        return self.size_after / self.size_before if self.size_before else float("nan")

    @property
    def accuracy_drop(self) -> Optional[float]:
        """Accuracy lost, in percentage points (with labels), else top-1 disagreement in points."""
        if self.reference_accuracy is not None and self.converted_accuracy is not None:
            return 100.0 * (self.reference_accuracy - self.converted_accuracy)
        agreements = [o.top1_agreement for o in self.outputs if o.top1_agreement is not None]
        return 100.0 * (1.0 - min(agreements)) if agreements else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (what ``--report FILE`` writes)."""
        data = asdict(self)
        data["passed"] = self.passed
        data["size_ratio"] = self.size_ratio
        data["accuracy_drop"] = self.accuracy_drop
        return data

    def format_table(self) -> str:
        """The human-readable report."""
        opts = self.options
        lines = [
            f"source      {self.source} ({self.source_kind})",
            f"output      {self.output or '(not written)'}",
            f"mode        quantize={opts.get('quantize')} io={opts.get('io_type')} "
            f"{'per-channel' if opts.get('per_channel') else 'per-tensor'} target={opts.get('target')} "
            f"engine={opts.get('engine')}",
            f"size        {self.size_before:,} -> {self.size_after:,} bytes ({self.size_ratio:.2f}x)",
        ]
        if self.latency_ms is not None:
            lines.append(f"latency     {self.latency_ms:.3f} ms per sample ({self.latency_backend}, tfedge)")
        if self.eval_origin is not None:
            lines.append(f"validated   on {self.eval_samples} sample{'' if self.eval_samples == 1 else 's'}: {self.eval_origin}")
            if self.outputs:
                lines.append(f"  {'output':<20} {'max abs err':>12} {'mean abs err':>12} {'cosine':>9} {'top-1 agree':>11}")
                for o in self.outputs:
                    top1 = f"{100 * o.top1_agreement:.1f}%" if o.top1_agreement is not None else "-"
                    lines.append(
                        f"  {o.name:<20} {o.max_abs_error:>12.4g} {o.mean_abs_error:>12.4g} {o.cosine:>9.6f} {top1:>11}"
                    )
            if self.reference_accuracy is not None and self.converted_accuracy is not None:
                lines.append(
                    f"accuracy    TensorFlow {100 * self.reference_accuracy:.2f}%, converted "
                    f"{100 * self.converted_accuracy:.2f}% (drop {self.accuracy_drop:+.2f} points)"
                )
        ops = ", ".join(f"{o.name}{'' if o.builtin else '*'} v{o.version} x{o.count}" for o in self.operators)
        lines.append(f"operators   {ops}")
        if self.static_batch_note:
            lines.append(f"batch       {self.static_batch_note}")
        if self.recurrent:
            lines.append(f"recurrent   {self.recurrent}")
        for k in self.kept_float:
            latency = f"{k.latency_ms:+.3f} ms" if k.latency_ms is not None else "latency not measured"
            lines.append(
                f"kept float  {k.tensor} ({k.op}, int8 error {k.rmse_over_scale:.2f} steps): "
                f"{k.size_bytes:+,} bytes, {latency}"
            )
        if self.non_builtin_ops:
            lines.append(f"non-builtin {', '.join(self.non_builtin_ops)} (the thin runtime cannot run these)")
        for r in self.runtimes:
            state = "runs it" if r.ok else f"FAILS: {r.error}"
            lines.append(f"runtime     {r.backend} {r.version}: {state}{' (required)' if r.required else ''}")
        if self.edgetpu_model:
            lines.append(f"edgetpu     {self.edgetpu_model}")
        lines += [f"warning     {w}" for w in self.warnings]
        lines += [f"FAILED      {f}" for f in self.failures]
        return "\n".join(lines)
