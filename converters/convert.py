"""``convert()``: source to .tflite, quantized as asked, validated, written atomically."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional


from tfedge._files import write_atomically
from tfedge.errors import ConversionError, TfedgeError, first_line

from . import quantize as _quantize
from ._tf import captured_native_output, tf
from .calibration import Samples, load_labels, load_samples
from .datacheck import check_finite, precheck, too_few_warning
from .config import DEFAULT_EVAL_SAMPLES, ConvertOptions, Engine, Quantize, Target, resolve_options
from .metadata import ModelInfo, add_metadata, model_info
from .report import ConversionResult, RuntimeCheck
from .sources import Source, load_source
from .validate import evaluate, model_operators, probe_runtimes, random_samples

__all__ = ["check_output_path", "convert"]

_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(ConvertOptions))
#: Known operator versions that old runtimes lack, and the conversion option that avoids them.
_VERSION_FIXES = {
    ("FULLY_CONNECTED", 12): "--per-tensor (per-channel dynamic-range FULLY_CONNECTED needs version 12)",
}


def convert(
    source: Any,
    output: str | os.PathLike[str],
    *,
    calibration: Any = None,
    eval_data: Any = None,
    eval_labels: Any = None,
    options: Optional[ConvertOptions] = None,
    labels: Any = None,
    metadata: Optional[dict[str, str]] = None,
    **settings: Any,
) -> ConversionResult:
    """Convert a TensorFlow model to a .tflite file and validate it.

    Args:
        source: A SavedModel directory, a ``.keras`` / ``.h5`` file, a Keras model or a
            ``tf.function`` with an input signature.
        output: The .tflite file to write. Its directory must exist; an existing file
            is replaced only with ``overwrite=True``.
        calibration: Calibration samples: a ``.npy`` / ``.npz`` path, an image
            directory, an array, a mapping by input name, or any iterable of samples.
        eval_data: Held-out samples for the report (same forms). Default: a part of
            the calibration data, else seeded random inputs.
        eval_labels: Integer class ids for ``eval_data`` (a ``.npy`` path or an array).
        options: A :class:`ConvertOptions`; ``settings`` override its fields.
        labels: Class labels (a file with one per line, or a sequence) written into the
            model's standard TFLite Metadata, packed as ``labels.txt`` for the output
            with one class per label; ``mean``/``std``, when set, go in as the input's
            normalization.
        metadata: ``name``, ``description``, ``version``, ``author``, ``license`` for
            the metadata.
        **settings: Any :class:`ConvertOptions` field by name, e.g. ``quantize="int8"``.

    Returns:
        The report. The file is written only when every check passed.

    Raises:
        ConversionError: bad source, calibration data or options, unsupported ops, a
            required runtime that cannot run the model, or a broken accuracy budget
            (then ``exc.result`` holds the report).
    """
    if "batch" in settings:  # the short name the CLI's --batch uses
        settings["static_batch"] = settings.pop("batch")
    unknown = sorted(set(settings) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(f"Unknown option(s) {', '.join(unknown)}. Available: {', '.join(_OPTION_NAMES)}.")
    opts = resolve_options(dataclasses.replace(options or ConvertOptions(), **settings))
    out_path = check_output_path(output, overwrite=opts.overwrite)
    info = model_info(labels, metadata, opts.mean, opts.std)
    # The data is checked before the source is loaded: that imports TensorFlow (seconds).
    precheck(calibration, "Calibration data")
    precheck(eval_data, "Evaluation data")
    if isinstance(eval_labels, (str, os.PathLike)) and not Path(eval_labels).is_file():
        raise ConversionError(f"Evaluation labels {str(eval_labels)!r} do not exist.")
    try:
        with load_source(source) as src:
            if opts.static_batch is not None:
                src.with_static_batch(opts.static_batch)
            result = _convert_loaded(src, out_path, opts, calibration, eval_data, eval_labels, info)
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises anything; the user gets one line
        raise _unexpected(exc) from exc
    if result.failures:
        raise ConversionError("Validation failed, nothing written: " + "; ".join(result.failures), result=result)
    return result


def _unexpected(exc: BaseException) -> ConversionError:
    """A ConversionError for a failure nothing translated; the traceback goes to ``--verbose``."""
    import traceback

    return ConversionError(
        f"The conversion failed unexpectedly ({first_line(exc, with_type=True)}); nothing was written. "
        "Rerun with --verbose for the details and report it to tfedge.",
        converter_text="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


def check_output_path(output: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """The output path, after checking its directory exists and it may be written.

    Raises:
        ConversionError: missing directory, a directory as output, or an existing file.
    """
    path = Path(output)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConversionError(f"Output directory {str(parent)!r} does not exist. Create it first or choose another output path.")
    if path.is_dir():
        raise ConversionError(f"Output {str(path)!r} is a directory; give a file name such as {str(path / 'model.tflite')!r}.")
    if path.exists() and not overwrite:
        raise ConversionError(f"Output {str(path)!r} already exists. Pass --overwrite (overwrite=True) to replace it.")
    return path


def _convert_loaded(
    src: Source, out_path: Path, opts: ConvertOptions, calibration: Any, eval_data: Any, eval_labels: Any,
    info: Optional[ModelInfo] = None,
) -> ConversionResult:
    """The conversion proper, on a loaded source."""
    data_options: dict[str, Any] = {
        "normalization": opts.normalization,
        "mean": opts.mean,
        "std": opts.std,
        "progress": opts.progress,
    }
    calib: Optional[Samples] = None
    if calibration is not None:
        spare = _held_out_limit(opts) if opts.validate and eval_data is None else 0  # room for a held-out part
        calib = load_samples(calibration, src.inputs, limit=opts.calibration_samples + spare, **data_options)
        check_finite(calib.arrays, "Calibration data")
    evalset: Optional[Samples] = None
    if eval_data is not None:
        evalset = load_samples(eval_data, src.inputs, limit=opts.eval_samples or sys.maxsize, what="Evaluation data", **data_options)
        check_finite(evalset.arrays, "Evaluation data")
        evalset = Samples(evalset.arrays, f"--eval-data {evalset.origin}")
    assert opts.quantize is not None
    early_warnings: list[str] = []
    if calib is not None:
        calib, held_out = _split(calib, opts, evalset is None and opts.validate)
        evalset = evalset or held_out
        few = too_few_warning(len(calib), opts.quantize.value) if opts.quantize.needs_calibration else None
        if few:
            early_warnings.append(few)
    if opts.quantize.needs_calibration and calib is None:
        raise ConversionError(
            f"--quantize {opts.quantize.value} needs calibration data: pass --calibration with a .npy, "
            ".npz or image directory (about 100-500 samples)."
        )
    labels = None
    if eval_labels is not None:
        if evalset is None or "--eval-data" not in evalset.origin:
            raise ConversionError("--eval-labels needs --eval-data (one label per evaluation sample).")
        labels = load_labels(eval_labels, len(evalset))

    started = time.perf_counter()
    content, calib, evalset = _convert_fixing_batch(src, opts, calib, evalset)
    kept_float: tuple[Any, ...] = ()
    if opts.keep_float or opts.debug_quantization:
        content, kept_float = _keep_float(src, opts, calib, evalset, labels, content)
    if info is not None:
        content = add_metadata(content, info)  # before validation: what is checked is what is written
    seconds = time.perf_counter() - started

    operators = model_operators(content)
    non_builtin = tuple(o.name for o in operators if not o.builtin)
    warnings: list[str] = list(early_warnings)
    failures: list[str] = []
    if non_builtin:
        warnings.append(
            f"the model uses Select TF ops {', '.join(non_builtin)}; tfedge with ai_edge_litert or "
            "tflite_runtime cannot run them; it needs a runtime linked with the Flex delegate."
        )
    fields: dict[str, Any] = _recurrent_fields(src, operators)
    fields["kept_float"] = kept_float
    if opts.quantize.needs_calibration:
        warnings += _float_op_warnings(content, opts)
    if opts.validate:
        if evalset is None:
            evalset = random_samples(src.inputs, min(_held_out_limit(opts), 32))
        fields["eval_origin"] = evalset.origin
        fields["eval_samples"] = len(evalset)
        try:
            ev = evaluate(content, src.reference(), evalset, labels)
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
        convert_seconds=seconds,
        **fields,
    )
    failures += _budget_failures(result, opts)
    if failures:
        return dataclasses.replace(result, failures=tuple(failures))
    write_atomically(out_path, content)
    edgetpu, note = _edgetpu_compile(out_path) if opts.target is Target.EDGETPU else (None, None)
    if note:
        warnings.append(note)
    return dataclasses.replace(result, output=str(out_path), edgetpu_model=edgetpu, warnings=tuple(warnings))


def _convert_fixing_batch(
    src: Source, opts: ConvertOptions, calib: Optional[Samples], evalset: Optional[Samples]
) -> tuple[bytes, Optional[Samples], Optional[Samples]]:
    """Convert; when a free batch dimension is what stops the converter, fix it (1) and convert again.

    Returns the model and the samples, grouped by the static batch when it is above 1.
    """
    from .recurrent import is_dynamic_tensor_list_error

    _unroll_for_calibration(src, opts)
    batch = opts.static_batch or 1
    if batch > 1:
        calib = dataclasses.replace(calib, batch=batch) if calib is not None else None
        evalset = dataclasses.replace(evalset, batch=batch) if evalset is not None else None
    try:
        content = _run_converter(src, opts, calib)
    except ConversionError as exc:
        text = exc.converter_text
        if not (is_dynamic_tensor_list_error(text) and src.has_free_batch):
            raise
        src.with_static_batch(opts.static_batch or 1)
        content = _run_converter(src, opts, calib)
    return content, calib, evalset


#: The budget --keep-float auto meets when none is given.
KEEP_FLOAT_MAX_DROP = 0.5
KEEP_FLOAT_MIN_COSINE = 0.99


def _keep_float(
    src: Source, opts: ConvertOptions, calib: Optional[Samples], evalset: Optional[Samples], labels: Any, content: bytes
) -> tuple[bytes, tuple[Any, ...]]:
    """--debug-quantization's table, and --keep-float's model with layers left in float32."""
    from . import selective

    if opts.quantize is not Quantize.INT8 or opts.engine is not Engine.TFLITE or calib is None or src.kind == "tflite":
        raise ConversionError(
            "--keep-float and --debug-quantization need --quantize int8 with --engine tflite, --calibration "
            "data and a TensorFlow source (not .tflite)."
        )
    t = tf()

    def converter() -> Any:
        c = t.lite.TFLiteConverter.from_saved_model(src.saved_model_dir)
        _quantize.configure(c, dataclasses.replace(opts, progress=False), calib)
        return c

    if not opts.keep_float:
        assert opts.debug_quantization is not None
        selective.write_layer_table(opts.debug_quantization, selective.layer_errors(converter(), calib))
        return content, ()
    samples = evalset if evalset is not None else calib
    reference = src.reference()
    by_labels = labels is not None

    def score(model: bytes) -> tuple[float, bool, Optional[float]]:
        ev = evaluate(model, reference, samples, labels, latency_runs=20)
        if by_labels and ev.converted_accuracy is not None and ev.reference_accuracy is not None:
            budget = opts.max_accuracy_drop if opts.max_accuracy_drop is not None else KEEP_FLOAT_MAX_DROP
            drop = 100.0 * (ev.reference_accuracy - ev.converted_accuracy)
            return ev.converted_accuracy, drop <= budget, ev.latency_ms
        floor = opts.min_cosine if opts.min_cosine is not None else KEEP_FLOAT_MIN_COSINE
        worst = min(o.cosine for o in ev.outputs)
        return worst, worst >= floor, ev.latency_ms

    chosen = selective.select(converter(), calib, opts, score)
    if opts.debug_quantization:
        selective.write_layer_table(opts.debug_quantization, chosen.layers)
    return chosen.content, chosen.kept


def _unroll_for_calibration(src: Source, opts: ConvertOptions) -> None:
    """Unroll recurrent layers before int8/int16x8: no calibrator handles their loops.

    Measured (TF 2.21, litert-quantizer 0.11, a Keras 3 LSTM exported with model.export()):
    TensorFlow's calibrator dies with SIGSEGV on the WHILE loop (even calibrate-only, even the
    old quantizer), and litert-quantizer, which calibrates by running the float model in
    LiteRT, cannot read the loop body's tensors ("Tensor data is null") nor, past that, find
    statistics for the loop's arguments. A Keras source is unrolled by Keras; a SavedModel's
    graph has each loop's body inlined once per time step (see :mod:`.recurrent`).
    """
    from .recurrent import has_while_loop

    assert opts.quantize is not None
    if not opts.quantize.needs_calibration or src.kind == "tflite":
        return
    if has_while_loop(src.saved_model_dir):
        src.unroll_recurrent()


def _recurrent_fields(src: Source, operators: Any) -> dict[str, Any]:
    """The report's static-batch note and how recurrent layers were converted."""
    from .recurrent import recurrent_summary

    summary = recurrent_summary(operators)
    if src.unroll_note:
        summary = f"recurrent layers {src.unroll_note}" + (f"; {summary}" if summary else "")
    return {"static_batch_note": src.static_batch_note, "recurrent": summary}


def _float_op_warnings(content: bytes, opts: ConvertOptions) -> list[str]:
    """Warnings (or, integer-only, a ConversionError) for ops a quantized model left in float32."""
    from .diagnose import float_ops, integer_only_error, unreached_branch_warning

    ops = float_ops(content)
    error = integer_only_error(ops, opts)
    if error is not None:
        raise error
    note = unreached_branch_warning(ops)
    return [note] if note else []


def _held_out_limit(opts: ConvertOptions) -> int:
    """How many samples to validate when no --eval-data is given (--eval-samples, else the default)."""
    return opts.eval_samples or DEFAULT_EVAL_SAMPLES


def _split(calib: Samples, opts: ConvertOptions, hold_out: bool) -> tuple[Samples, Optional[Samples]]:
    """Calibration samples, and held-out evaluation samples taken from their end."""
    n = len(calib)
    if not hold_out:
        return calib.part(0, opts.calibration_samples), None
    if not opts.quantize.needs_calibration:  # type: ignore[union-attr]
        # Nothing is calibrated, so every sample is held out.
        return calib, calib.part(0, _held_out_limit(opts), f"calibration data ({calib.origin}), none used to calibrate")
    if n < 2:  # nothing to spare: validated on the sample it was calibrated on, and the report says so
        return calib, calib.part(0, None, f"the only calibration sample ({calib.origin}), also used to calibrate")
    held = min(_held_out_limit(opts), max(1, n // 5))
    return (
        calib.part(0, min(n - held, opts.calibration_samples)),
        calib.part(n - held, None, f"the last {held} calibration samples ({calib.origin}), held out of calibration"),
    )


def _run_converter(src: Source, opts: ConvertOptions, calib: Optional[Samples]) -> bytes:
    """TFLiteConverter (and litert-quantizer) on the source; ConversionError on failure."""
    if src.kind == "tflite":
        return _quantize_tflite(src, opts, calib)
    t = tf()
    litert = opts.engine is Engine.LITERT
    if not litert and opts.quantize.needs_calibration:  # type: ignore[union-attr]
        # TensorFlow's calibrator can die of SIGSEGV: in a child, that is an error message.
        from ._child import ChildFailed, convert_in_child

        try:
            return convert_in_child(src.saved_model_dir, opts, calib, src.label)
        except ChildFailed as exc:
            raise _error_from_text(exc.text, opts) from None
    with captured_native_output() as native:
        converter = t.lite.TFLiteConverter.from_saved_model(src.saved_model_dir)
        float_opts = dataclasses.replace(opts, quantize=Quantize.NONE) if litert else opts
        _quantize.configure(converter, float_opts, calib, native.stderr)
        try:
            content = bytes(converter.convert())
            error = None
        except Exception as exc:  # noqa: BLE001 - ConverterError, ValueError, RuntimeError
            content, error = b"", exc
    if error is not None:
        raise _conversion_error(error, native.text, opts) from error
    if litert and opts.quantize is not Quantize.NONE:
        with captured_native_output():
            content = _quantize.litert_quantize(content, opts, calib)
    return content


def _quantize_tflite(src: Source, opts: ConvertOptions, calib: Optional[Samples]) -> bytes:
    """A float32 .tflite source quantized with litert-quantizer (TensorFlow's converter cannot read it)."""
    content: bytes = src.content  # type: ignore[attr-defined]
    if opts.quantize is Quantize.NONE:
        return content
    if opts.quantize.needs_calibration and any(o.name == "WHILE" for o in model_operators(content)):  # type: ignore[union-attr]
        raise ConversionError(
            f"--quantize {opts.quantize.value} cannot calibrate {src.label}: litert-quantizer cannot calibrate the "  # type: ignore[union-attr]
            "WHILE loop its recurrent layers became. Convert the Keras model instead (tfedge unrolls the layers), "
            "or use --quantize dynamic."
        )
    if opts.engine is not Engine.LITERT:
        raise ConversionError(
            f"A .tflite source is quantized by litert-quantizer: add --engine litert (pip install "
            f'"tfedge[convert-litert]"), got --engine {opts.engine.value}.'
        )
    with captured_native_output():
        return _quantize.litert_quantize(content, opts, calib)


_SELECT = re.compile(r"TF Select ops: ([^\n]+)")
_CUSTOM = re.compile(r"Custom ops: ([^\n]+)")


def _conversion_error(exc: BaseException, native: str, opts: ConvertOptions) -> ConversionError:
    """A ConversionError that names unsupported TensorFlow ops, or the converter's first error.

    TensorFlow's own text is kept on the error's ``converter_text`` (``--verbose`` prints it).
    """
    return _error_from_text(f"{exc}\n{native}", opts)


def _error_from_text(text: str, opts: ConvertOptions) -> ConversionError:
    """The translated ConversionError for TensorFlow's ``text``, which it keeps as ``converter_text``."""
    error = _translated(text, opts)
    error.converter_text = text
    return error


def _translated(text: str, opts: ConvertOptions) -> ConversionError:
    """The error for the converter's ``text``: a known failure in the user's terms, else its first line."""
    from .diagnose import translate

    known = translate(text, opts, "", None)
    if known is not None:
        return known
    flex = sorted({op.strip() for m in _SELECT.findall(text) for op in m.split(",") if op.strip()})
    custom = sorted({op.strip() for m in _CUSTOM.findall(text) for op in m.split(",") if op.strip()})
    if flex and not opts.allow_select_tf_ops:
        extra = f" It also uses {', '.join(custom)}, which neither TFLite nor Select TF has." if custom else ""
        return ConversionError(
            f"The model needs TensorFlow ops with no TFLite builtin: {', '.join(flex)}. The thin runtime "
            "(tfedge on ai_edge_litert or tflite_runtime) cannot run Select TF (flex) ops. Rewrite "
            f"them with builtin ops, or pass --allow-select-tf-ops to convert anyway (the model then "
            f"needs a runtime built with the Flex delegate).{extra}"
        )
    if custom or flex:
        ops = ", ".join(custom or flex)
        return ConversionError(
            f"The model needs TensorFlow ops that neither TFLite builtins nor Select TF provide: {ops}. "
            "Rewrite them with supported ops."
        )
    lines = [ln.strip() for ln in text.splitlines() if "error:" in ln]
    first = lines[0].split("error:", 1)[1].strip() if lines else (text.strip().splitlines() or ["no message"])[0]
    return ConversionError(f"TFLiteConverter failed ({opts.quantize.value}): {first}")  # type: ignore[union-attr]


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


def _edgetpu_compile(path: Path) -> tuple[Optional[str], Optional[str]]:
    """Run edgetpu_compiler when on PATH; else say how. Returns (compiled file, note)."""
    compiler = shutil.which("edgetpu_compiler")
    howto = f"edgetpu_compiler -s -o {path.parent} {path}"
    if compiler is None:
        return None, (
            f"edgetpu_compiler is not on PATH; compile for the Edge TPU with: {howto} "
            "(install: https://coral.ai/docs/edgetpu/compiler/)."
        )
    proc = subprocess.run([compiler, "-s", "-o", str(path.parent), str(path)], capture_output=True, text=True)
    compiled = path.with_name(f"{path.stem}_edgetpu.tflite")
    if proc.returncode != 0 or not compiled.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"edgetpu_compiler failed ({tail[0]}); run it by hand: {howto}"
    return str(compiled), None
