"""The ``tfedge`` command: ``info``, ``run``, ``bench``, ``check``; the tasks (``classify``, ``detect``, ``segment``, ``landmarks``).

Results go to stdout (``--json`` for scripts), messages to stderr. Exit status: 0 on
success, 1 on a tfedge error (one line on stderr; the traceback with ``--verbose``),
2 on a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .backends import BACKENDS
from ._files import write_atomically
from ._native_output import captured_native_output, replay
from ._inputs import random_input
from .bench import DEFAULT_RUNS, DEFAULT_WARMUP, benchmark
from .delegates import resolve as resolve_delegates
from .embedded import EMBEDDED_PREFIX, resolve_model
from .errors import InputError, ModelError, TfedgeError
from ._model import load_model
from .interpreter import Interpreter, TensorSpec
from .isolate import DEFAULT_TIMEOUT
from .serve.cli import add_parser as add_serve_parser
from .tasks._commands import add_task_commands

__all__ = ["main"]


def _spec_dict(spec: TensorSpec) -> dict[str, Any]:
    """A TensorSpec as JSON-ready data."""
    q = spec.quantization
    return {
        "name": spec.name,
        "tensor_name": spec.tensor_name,
        "index": spec.index,
        "shape": list(spec.shape),
        "shape_signature": list(spec.shape_signature),
        "dtype": spec.dtype.name,
        "quantization": None
        if q is None
        else {"scales": list(q.scales), "zero_points": list(q.zero_points), "axis": q.axis},
    }


def model_info(interp: Interpreter, path: str) -> dict[str, Any]:
    """Everything ``tfedge info`` reports about a loaded model."""
    signatures = {}
    for key in interp.signatures or (None,):
        signatures[key or "(main graph)"] = {
            "inputs": [_spec_dict(s) for s in interp.input_specs(key)],
            "outputs": [_spec_dict(s) for s in interp.output_specs(key)],
        }
    return {
        "path": path,
        "size_bytes": len(interp.model_content),
        "backend": interp.backend,
        "backend_version": interp.backend_version,
        "num_threads": interp.num_threads,
        "delegates": interp.placement,
        "subgraphs": interp.num_subgraphs(),
        "signatures": signatures,
        "operators": dict(sorted(interp.summary.operator_counts.items())),
        "operator_versions": dict(sorted(interp.summary.op_versions.items())),
        "custom_ops": list(interp.summary.custom_ops),
        "flex_ops": list(interp.summary.flex_ops),
        "keeps_state": list(interp.keeps_state),
        "metadata": _metadata_info(interp),
    }


def _metadata_info(interp: Interpreter) -> dict[str, Any] | None:
    """The model's TFLite Metadata as data; damaged metadata reported, not raised (the model runs)."""
    try:
        meta = interp.metadata
    except ModelError as exc:
        return {"error": str(exc)}
    return None if meta is None else meta.to_dict()


def _print_metadata(meta: dict[str, Any] | None) -> None:
    """The human-readable metadata lines of ``tfedge info``."""
    if meta is None:
        return
    if "error" in meta:
        print(f"metadata   unreadable: {meta['error']}")
        return
    about = ", ".join(f"{key} {meta[key]!r}" for key in ("name", "version", "author", "license") if meta[key])
    print(f"metadata   {about or '(no name)'}")
    if meta["description"]:
        print(f"  {meta['description']}")
    for kind in ("inputs", "outputs"):
        for t in meta[kind]:
            parts = [t["content"]] if t["content"] else []
            if t["color_space"]:
                parts.append(t["color_space"])
            if t["normalization"]:
                parts.append(f"mean {t['normalization']['mean']} std {t['normalization']['std']}")
            for key in ("labels", "value_labels"):
                if t[key]:
                    shown = ", ".join(t[key][:5]) + (", ..." if len(t[key]) > 5 else "")
                    parts.append(f"{len(t[key])} {key.replace('_', ' ')} ({shown})")
            if t["score_calibration"]:
                parts.append(f"score calibration {t['score_calibration']['transformation']}")
            if t["score_threshold"] is not None:
                parts.append(f"score threshold {t['score_threshold']:g}")
            print(f"  {kind[:-1]:<6} {t['name'] or '(unnamed)':<28} {'; '.join(parts)}".rstrip())
    if meta["files"]:
        print("  files  " + ", ".join(f"{name} ({size:,} bytes)" for name, size in meta["files"].items()))


def _fmt_quant(spec: dict[str, Any]) -> str:
    """Quantization as ``scale=0.0039 zero_point=-128`` (or ``per-channel``)."""
    q = spec["quantization"]
    if q is None:
        return ""
    if len(q["scales"]) > 1:
        return f"per-channel ({len(q['scales'])} scales, axis {q['axis']})"
    return f"scale={q['scales'][0]:.6g} zero_point={q['zero_points'][0]}"


def _print_info(info: dict[str, Any]) -> None:
    """The human-readable form of ``tfedge info``."""
    print(f"model      {info['path']} ({info['size_bytes']:,} bytes)")
    print(f"backend    {info['backend']} {info['backend_version']}, {info['num_threads']} thread(s)")
    placed = ", ".join(f"{name}: {n} nodes" for name, n in info["delegates"].items())
    print("placement  " + (placed or "at the first call: its free input dimensions need a real shape first"))
    print(f"subgraphs  {info['subgraphs']}")
    for name, sig in info["signatures"].items():
        print(f"signature  {name}")
        for kind in ("inputs", "outputs"):
            for spec in sig[kind]:
                shape = tuple(spec["shape"])
                signature = tuple(spec["shape_signature"])
                dyn = f" (signature {signature})" if signature != shape else ""
                print(f"  {kind[:-1]:<6} {spec['name']:<28} {str(shape):<20} {spec['dtype']:<8} "
                      f"{_fmt_quant(spec)}{dyn}".rstrip())
    for key in ("operators",):
        if info.get(key):
            print("operators  " + ", ".join(f"{op} x{n}" for op, n in info[key].items()))
    if info.get("keeps_state"):
        print(f"state      kept from one call to the next ({', '.join(info['keeps_state'])}): one stream per "
              "interpreter, reset_all_variables() starts it again")
    _print_metadata(info.get("metadata"))


def _load_inputs(interp: Interpreter, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Inputs from ``--input NAME=FILE`` (.npy/.npz) or random ones with ``--random``."""
    specs = interp.input_specs(args.signature)
    inputs = _read_inputs(args.input or (), specs)
    if args.random:
        rng = np.random.default_rng(args.seed)
        for spec in specs:
            if spec.name not in inputs and spec.tensor_name not in inputs:
                inputs[spec.name] = random_input(spec, rng)
    return inputs


def _read_inputs(items: Sequence[str], specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays from ``--input`` items: ``NAME=FILE.npy``, ``FILE.npy`` (one-input models) or ``FILE.npz``."""
    inputs: dict[str, np.ndarray] = {}
    for item in items:
        name, sep, file = item.rpartition("=")
        if not sep:
            name, file = ("", item)
        inputs.update(_read_array_file(file, name, specs))
    return inputs


def _read_array_file(file: str, name: str, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays from a .npy (one input) or .npz (keyed by input name) file."""
    try:
        loaded = np.load(file, allow_pickle=False)
    except FileNotFoundError as exc:
        raise InputError(f"Input file {file!r} does not exist.") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"Input file {file!r} is not a readable .npy or .npz file: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        if not name:
            if len(specs) != 1:
                names = ", ".join(s.name for s in specs)
                raise InputError(f"The model has several inputs ({names}); use --input NAME={file}.")
            name = specs[0].name
        return {name: loaded}
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def _atomic_save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as .npz through a temporary file and a rename."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"Cannot write {path!r}: the directory {str(target.parent)!r} does not exist.")
    write_atomically(target, lambda f: np.savez(f, **arrays))


def _open(args: argparse.Namespace) -> tuple[Interpreter, str]:
    """The Interpreter the common options describe (model: a path, ``embedded:NAME`` or none) and its label."""
    source, label = resolve_model(args.model)
    interp = Interpreter(source, backend=args.backend, num_threads=args.threads,
                         delegates=args.delegate, strict=args.strict)
    return interp, label


def _cmd_info(args: argparse.Namespace) -> int:
    try:
        interp, label = _open(args)
    except ModelError as exc:
        _print_unloaded(args, exc)  # what the file says, when only the backend refused it
        raise
    info = model_info(interp, label)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def _print_unloaded(args: argparse.Namespace, exc: ModelError) -> None:
    """Print what the file itself declares of a model the structural check accepts but no backend loads."""
    source, label = resolve_model(args.model)
    try:
        model = load_model(source)
    except ModelError:
        return  # the structural check refuses it too: the error says why
    summary = model.summary
    if summary is None:
        return
    ops = dict(sorted(summary.operator_counts.items()))
    if args.json:
        print(json.dumps({"path": label, "size_bytes": len(model.content),
                          "loaded": False, "error": str(exc), "subgraphs": summary.num_subgraphs,
                          "main_graph": [dataclasses.asdict(t) for t in summary.main_io],
                          "operators": ops, "custom_ops": list(summary.custom_ops),
                          "flex_ops": list(summary.flex_ops)}, indent=2))
        return
    print(f"model      {label} (not loaded: read from the file)")
    print(f"subgraphs  {summary.num_subgraphs}")
    for t in summary.main_io:
        print(f"  {t.kind:<6} {t.name or '(unnamed)':<28} {str(t.shape):<20} {t.type}")
    if ops:
        print("operators  " + ", ".join(f"{op} x{n}" for op, n in ops.items()))
    sys.stdout.flush()


def _cmd_run(args: argparse.Namespace) -> int:
    interp, _ = _open(args)
    inputs = _load_inputs(interp, args)
    if not inputs and interp.input_specs(args.signature):
        raise InputError("No inputs given. Pass --input NAME=FILE.npy (or .npz), or --random.")
    try:
        outputs = interp.run(inputs, signature=args.signature, raw=args.raw)
    except InputError as exc:
        random = interp.input_specs(args.signature) if args.random else ()
        raise _free_dimensions_hint(exc, random, "--random gives") from exc
    if args.output:
        _atomic_save_npz(args.output, outputs)
        print(f"wrote {len(outputs)} output(s) to {args.output}", file=sys.stderr)
    if args.json:
        print(json.dumps({k: {"shape": list(v.shape), "dtype": v.dtype.name, "values": v.tolist()}
                          for k, v in outputs.items()}, default=_json_default))
    elif not args.output:
        with np.printoptions(threshold=64, edgeitems=4):
            for name, value in outputs.items():
                print(f"{name} {value.shape} {value.dtype.name}\n{value}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    source, label = resolve_model(args.model)
    items = args.input or ()
    specs: Sequence[TensorSpec] = ()
    if any("=" not in item for item in items):
        # A file without NAME= needs the model's input names; load it once just for them.
        specs = Interpreter(source, backend=args.backend, num_threads=1).input_specs()
    given = _read_inputs(items, specs)
    progress = sys.stderr if args.progress or args.stderr_is_tty else None
    try:
        result = benchmark(source, runs=args.runs, duration=args.duration, warmup=args.warmup,
                           threads=args.threads, backend=args.backend, delegates=args.delegate or (),
                           strict=args.strict, batch=args.batch, inputs=given, seed=args.seed, progress=progress)
    except InputError as exc:
        specs = specs or Interpreter(source, backend=args.backend, num_threads=1).input_specs()
        random = [s for s in specs if s.name not in given and s.tensor_name not in given]
        raise _free_dimensions_hint(exc, random, "bench's random inputs give") from exc
    result = dataclasses.replace(result, model=label)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0


def _free_dimensions_hint(exc: InputError, random: Sequence[TensorSpec], maker: str) -> InputError:
    """``exc``, with a hint when a random input's free dimensions (made 1) are what the model refused."""
    free = [s.name for s in random if min(s.shape_signature, default=0) < 0]
    if not free or "could not be resized" not in str(exc):
        return exc
    return InputError(f"{exc} ({maker} each free dimension of {', '.join(map(repr, free))} the size 1; "
                      "pass --input NAME=FILE.npy with a shape the model takes.)")


def _json_default(value: Any) -> Any:
    """JSON for what ``tolist()`` leaves as bytes (string tensors)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(type(value).__name__)


def _cmd_check(args: argparse.Namespace) -> int:
    from .backends import choose
    from ._model import load_model
    from .isolate import probe_model

    model, label = resolve_model(args.model)
    loaded = load_model(model)  # read and verify, as Interpreter() does
    assert loaded.summary is not None
    backend = choose(args.backend, loaded.summary, loaded.source)
    verdict = probe_model(loaded.content, backend=backend.name, backend_version=backend.version,
                          timeout=args.timeout, use_cache=not args.no_cache)
    report = {"path": label, "structure": "ok", "subgraphs": loaded.summary.num_subgraphs,
              "probe": verdict.outcome, "detail": verdict.detail, "backend": verdict.backend,
              "sha256": verdict.sha256, "cached": verdict.cached}
    if args.json:
        print(json.dumps(report, indent=2))
    elif verdict.ok:
        how = verdict.detail or "loaded and ran once"
        print(f"{label}: ok (structure verified; {how} on {verdict.backend}"
              f"{', cached verdict' if verdict.cached else ''})")
    if not verdict.ok:
        raise verdict.error(loaded.source)
    return 0


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for counts: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value

    return parse


_whole_number = _at_least(1)  # --threads, --runs, --batch
_count = _at_least(0)  # --warmup


def _seconds(text: str) -> float:
    """argparse type for ``--duration``: seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _delegate(text: str) -> str:
    """argparse type for ``--delegate``: a known name or a library path."""
    try:
        resolve_delegates([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tfedge``."""
    parser = argparse.ArgumentParser(prog="tfedge", description="Run TensorFlow Lite models on edge devices.")
    parser.add_argument("--version", action="version", version=f"tfedge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("model", nargs="?",
                        help=f"path to a .tflite file, or {EMBEDDED_PREFIX}NAME for a model built into "
                             "this binary (default: the only embedded one)")
    common.add_argument("--backend", choices=BACKENDS,
                        help="TFLite backend (default: $TFEDGE_BACKEND, else the best installed)")
    common.add_argument("--threads", type=_whole_number, help="CPU threads (default: all cores this process may use)")
    common.add_argument("--delegate", action="append", metavar="NAME", type=_delegate,
                        help="delegate to try, in order (repeatable): xnnpack, gpu, edgetpu, none, or a "
                             "library path; one that fails is skipped with a warning (default: xnnpack)")
    common.add_argument("--strict", action="store_true", help="fail instead of skipping a delegate that fails")
    common.add_argument("--json", action="store_true", help="print JSON on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")

    p_info = sub.add_parser("info", parents=[common], help="describe a model: inputs, outputs, signatures")
    p_info.set_defaults(func=_cmd_info)

    p_check = sub.add_parser("check", parents=[common],
                             help="verify a model's structure, then load and run it once in a child process")
    p_check.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                         help=f"seconds the test run may take (default {DEFAULT_TIMEOUT:g})")
    p_check.add_argument("--no-cache", action="store_true", help="probe again even if the verdict is cached")
    p_check.set_defaults(func=_cmd_check)

    p_run = sub.add_parser("run", parents=[common], help="run a model on .npy/.npz inputs")
    p_run.add_argument("--input", "-i", action="append", metavar="NAME=FILE",
                       help="an input from a .npy file (NAME= may be left out for one-input models), "
                            "or all inputs from a .npz keyed by name; repeatable")
    p_run.add_argument("--random", action="store_true", help="random inputs for those not given")
    p_run.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    p_run.add_argument("--signature", help="signature to run (default: the only one, or the main graph)")
    p_run.add_argument("--raw", action="store_true", help="no (de)quantization: integers in and out")
    p_run.add_argument("--output", "-o", metavar="OUT.npz", help="save the outputs to a .npz file")
    p_run.set_defaults(func=_cmd_run)

    p_bench = sub.add_parser("bench", parents=[common], help="measure init time, first inference and latency")
    how_long = p_bench.add_mutually_exclusive_group()
    how_long.add_argument("--runs", "-n", type=_whole_number, help=f"timed runs (default {DEFAULT_RUNS})")
    how_long.add_argument("--duration", type=_seconds, metavar="SECONDS", help="time runs for this long instead")
    p_bench.add_argument("--warmup", type=_count, default=DEFAULT_WARMUP,
                         help=f"untimed runs after the first (default {DEFAULT_WARMUP})")
    p_bench.add_argument("--batch", type=_whole_number, default=1, help="batch size on dimension 0 (default 1)")
    p_bench.add_argument("--input", "-i", action="append", metavar="NAME=FILE",
                         help="an input from a .npy/.npz file, as for run (default: random)")
    p_bench.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p_bench.add_argument("--progress", action="store_true", help="show progress on stderr even when not a terminal")
    p_bench.set_defaults(func=_cmd_bench)

    add_task_commands(sub, common, _open)  # classify, detect, segment, landmarks: tfedge/tasks/_commands.py
    add_serve_parser(sub, common)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Warnings as one line a user reads (``tfedge: warning: ...``), not a source location."""
    print(f"tfedge: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tfedge`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.stderr_is_tty = sys.stderr is not None and sys.stderr.isatty()  # asked before fd 2 is captured
    if getattr(args, "live_stderr", False):  # `serve`: fd 2 stays the log (see tfedge.serve.cli)
        return _run(args)
    try:
        os.fstat(2)
    except OSError:  # started with stderr closed (2>&-): nothing to capture or to keep clean
        return _run(args)
    # What the backends print straight to fd 2 (an XNNPACK INFO line on every load) is
    # held back and replayed at the end without that noise; Python's own stderr keeps
    # going to the terminal as it happens, when it is fd 2.
    held = None
    try:
        with captured_native_output(fds=(2,)) as held:
            python_stderr = sys.stderr
            if _is_fd(python_stderr, 2):
                sys.stderr = held.stderr
            try:
                return _run(args)
            finally:
                sys.stderr = python_stderr
    finally:
        if held is not None:
            replay(held.text, sys.stderr)


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; map errors to one line on stderr and an exit status."""
    try:
        with warnings.catch_warnings():
            if not args.verbose:
                warnings.showwarning = _show_warning
            return int(args.func(args))
    except TfedgeError as exc:
        if args.verbose:
            raise
        print(f"tfedge: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `tfedge info m.tflite | head`: the reader left; no traceback, and none at exit
        # when Python flushes stdout again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


def _is_fd(stream: Any, fd: int) -> bool:
    """True when ``stream`` writes to file descriptor ``fd`` (not so for pytest's capsys)."""
    try:
        return bool(stream.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
