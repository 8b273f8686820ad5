"""``tfedge-convert``: a SavedModel or Keras file to .tflite, quantized, validated.

Results on stdout (the report table, or JSON with ``--json``), progress and messages on
stderr. Exit 0 on success, 1 on a conversion error or a broken budget (one line on
stderr; the traceback with ``--verbose``), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfedge.errors import ConversionError, TfedgeError, first_line

from .config import (
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_EVAL_SAMPLES,
    NORMALIZATION_PRESETS,
    ConvertOptions,
    Engine,
    IOType,
    Quantize,
    Target,
)

__all__ = ["build_parser", "main"]


def _floats(text: str) -> tuple[float, ...]:
    """``127.5`` or ``123.7,116.3,103.5`` as a tuple of floats."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no TensorFlow import, so ``--help`` is instant)."""
    p = argparse.ArgumentParser(
        prog="tfedge-convert",
        description="Convert a SavedModel, .keras or .h5 model to TFLite, quantized for a target, "
        "and report what it cost in accuracy and saved in size and time.",
    )
    p.add_argument("source", help="SavedModel directory, .keras or .h5 file")
    p.add_argument("-o", "--output", required=True, help="the .tflite file to write")
    g = p.add_argument_group("quantization")
    g.add_argument("--quantize", choices=[m.value for m in Quantize] + ["auto"], help="mode (default: the target's; cpu: none); auto: the smallest and fastest that meets the budget, with a table of every mode tried")
    g.add_argument("--io-type", choices=[m.value for m in IOType], help="input/output dtype; int8/uint8 make an integer-only model (needs --quantize int8)")
    g.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor instead of per channel")
    g.add_argument("--target", choices=[m.value for m in Target], default="cpu", help="cpu (XNNPACK), gpu (float16), edgetpu (int8, uint8 IO, static batch)")
    g.add_argument("--engine", choices=[m.value for m in Engine], default="tflite", help="tflite (TFLiteConverter) or litert (litert-quantizer on the float32 model)")
    g.add_argument("--static-batch", "--batch", dest="static_batch", type=int, metavar="N", help="fix the batch dimension (edgetpu: 1; recurrent models that need it: 1 unless given)")
    g.add_argument("--keep-float", metavar="auto|NAME,...", help="int8: keep these layers (output tensor names) in float32; auto: the most sensitive, fewest first, until the budget holds")
    g.add_argument("--debug-quantization", metavar="FILE", help="int8: write each layer's quantization error (.csv or .json)")
    g.add_argument("--allow-select-tf-ops", action="store_true", help="let Select TF (flex) ops through; the thin runtime cannot run them")
    d = p.add_argument_group("data")
    d.add_argument("--calibration", metavar="PATH", help=".npy (one input), .npz keyed by input name, or a directory of images")
    d.add_argument("--calibration-samples", type=int, default=DEFAULT_CALIBRATION_SAMPLES, metavar="N", help=f"samples used to calibrate (default {DEFAULT_CALIBRATION_SAMPLES})")
    d.add_argument("--normalization", choices=sorted(NORMALIZATION_PRESETS), default="unit", help="images: raw 0..255, unit 0..1 (default), symmetric -1..1, imagenet mean/std")
    d.add_argument("--mean", type=_floats, help="images: pixel mean(s) to subtract, e.g. 127.5 (overrides --normalization)")
    d.add_argument("--std", type=_floats, help="images: pixel std(s) to divide by, e.g. 127.5 (overrides --normalization)")
    v = p.add_argument_group("validation")
    v.add_argument("--eval-data", metavar="PATH", help="held-out samples for the report (default: part of --calibration, else random)")
    v.add_argument("--eval-labels", metavar="NPY", help="integer labels for --eval-data: report the accuracy of both models")
    v.add_argument("--eval-samples", type=int, metavar="N", help=f"at most N validation samples (default: every --eval-data sample, else {DEFAULT_EVAL_SAMPLES} held out of --calibration)")
    v.add_argument("--no-validate", action="store_true", help="skip the validation report")
    v.add_argument("--runtime", action="append", metavar="BACKEND", help="runtime that must run the model (ai_edge_litert, tflite_runtime; repeatable; default: the one tfedge picks)")
    v.add_argument("--max-accuracy-drop", type=float, metavar="POINTS", help="fail when accuracy (or top-1 agreement) drops more")
    v.add_argument("--min-cosine", type=float, metavar="C", help="fail when an output's cosine similarity is below C")
    m = p.add_argument_group("metadata (standard TFLite Metadata in the model; --mean/--std go in as the input's normalization)")
    m.add_argument("--labels", metavar="FILE", help="class labels, one per line, packed into the model")
    for key in ("name", "description", "version", "author", "license"):
        m.add_argument(f"--{key}", dest=f"meta_{key}", metavar="TEXT", help=f"the model's {key}")
    o = p.add_argument_group("output")
    o.add_argument("--report", metavar="FILE", help="write the report as JSON")
    o.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    o.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    return p


def _options(args: argparse.Namespace) -> ConvertOptions:
    """ConvertOptions from the parsed arguments."""
    runtimes = tuple(r for item in args.runtime or () for r in item.split(",") if r) or None
    return ConvertOptions(
        quantize=args.quantize,
        io_type=args.io_type,
        per_channel=False if args.per_tensor else None,
        target=args.target,
        engine=args.engine,
        static_batch=args.static_batch,
        calibration_samples=args.calibration_samples,
        eval_samples=args.eval_samples,
        allow_select_tf_ops=args.allow_select_tf_ops,
        validate=not args.no_validate,
        runtimes=runtimes,
        max_accuracy_drop=args.max_accuracy_drop,
        min_cosine=args.min_cosine,
        overwrite=args.overwrite,
        normalization=args.normalization,
        mean=args.mean,
        std=args.std,
        progress=not args.no_progress,
        **_selective_options(args),
    )


def _selective_options(args: argparse.Namespace) -> dict[str, Any]:
    """--keep-float and --debug-quantization as ConvertOptions fields."""
    keep = tuple(n.strip() for n in args.keep_float.split(",") if n.strip()) if args.keep_float else None
    return {"keep_float": keep, "debug_quantization": args.debug_quantization}


def _emit(result: Any, args: argparse.Namespace) -> None:
    """Print the report (table or JSON) and write --report."""
    data = result.to_dict()
    print(json.dumps(data, indent=2) if args.json else result.format_table())
    if args.report:
        from tfedge._files import write_atomically


        write_atomically(Path(args.report), (json.dumps(data, indent=2) + "\n").encode())


def _main_auto(args: argparse.Namespace) -> int:
    """``--quantize auto``: every mode tried, the table, the chosen report."""
    import dataclasses

    from .auto import convert_auto

    opts = dataclasses.replace(_options(args), quantize=None)
    settings = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts) if f.name != "quantize"}
    auto = convert_auto(
        args.source,
        args.output,
        calibration=args.calibration,
        eval_data=args.eval_data,
        eval_labels=args.eval_labels,
        **settings,
    )
    data = auto.result.to_dict()
    data["quantize_auto"] = [dataclasses.asdict(t) for t in auto.tries]
    print(json.dumps(data, indent=2) if args.json else auto.format_table())
    if args.report:
        from tfedge._files import write_atomically

        write_atomically(Path(args.report), (json.dumps(data, indent=2) + "\n").encode())
    return 0


def _print_converter_text(exc: BaseException) -> None:
    """TensorFlow's own converter text behind a translated error (--verbose)."""
    text = exc.converter_text if isinstance(exc, ConversionError) else ""
    if text:
        print("TensorFlow's converter said:\n" + text.strip(), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tfedge-convert``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.report:
            from .convert import check_output_path

            check_output_path(args.report, overwrite=True)
        from .convert import convert

        if args.quantize == "auto":
            return _main_auto(args)
        result = convert(
            args.source,
            args.output,
            calibration=args.calibration,
            eval_data=args.eval_data,
            eval_labels=args.eval_labels,
            options=_options(args),
            labels=args.labels,
            metadata={key: getattr(args, f"meta_{key}") for key in ("name", "description", "version", "author", "license")
                      if getattr(args, f"meta_{key}")},
        )
    except TfedgeError as exc:
        partial = exc.result if isinstance(exc, ConversionError) else None
        if partial is not None:
            _emit(partial, args)
        if args.verbose:
            import traceback

            traceback.print_exc()
            _print_converter_text(exc)
        print(f"tfedge-convert: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tfedge-convert: interrupted; nothing written.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug or an untranslated TensorFlow failure: one line, no traceback
        if args.verbose:
            import traceback

            traceback.print_exc()
        print(
            f"tfedge-convert: error: unexpected failure ({first_line(exc, with_type=True)}); nothing was written. "
            "Rerun with --verbose for the traceback and report it to tfedge.",
            file=sys.stderr,
        )
        return 1
    _emit(result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
