"""The ``tfedge serve`` subcommand (registered by :mod:`tfedge.cli`; the server loads only when run)."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any, Dict, Sequence, Union

__all__ = ["add_parser", "parse_models"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_models(items: Sequence[str]) -> Dict[str, Union[str, bytes]]:
    """``[NAME=]MODEL`` arguments as {name: path or embedded bytes}; no argument: every embedded model.

    Raises:
        ModelError: an unknown embedded model, no model at all, or a name used twice.
    """
    from ..embedded import EMBEDDED_PREFIX, embedded_models, resolve_model
    from ..errors import ModelError

    if not items:
        items = [EMBEDDED_PREFIX + name for name in embedded_models()]
        if not items:
            raise ModelError("No model given. Pass one or more [NAME=]MODEL.tflite.")
    models: Dict[str, Union[str, bytes]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        if not (sep and _NAME.fullmatch(name)):
            rest = item
            base = os.path.basename(item[len(EMBEDDED_PREFIX):] if item.startswith(EMBEDDED_PREFIX) else item)
            name = base[:-7] if base.endswith(".tflite") else base
        if name in models:
            raise ModelError(f"Two models are named {name!r}: name them, e.g. {name}2={rest}.")
        models[name] = resolve_model(rest)[0]
    return models


def _port(text: str) -> int:
    """argparse type for --port."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    """argparse type for counts >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``serve`` to the ``tfedge`` subcommands (``common``: the shared model and backend options)."""
    p = sub.add_parser("serve", parents=[common], help="serve models over HTTP (KServe v2 / Triton, DeepStack)",
                       description="Serve models over HTTP/1.1: KServe's Open Inference Protocol v2 (what "
                                   "tritonclient speaks) and DeepStack's /v1/vision/detection. MODEL is "
                                   "[NAME=]PATH.tflite or [NAME=]embedded:NAME; the name defaults to the file's.")
    p.add_argument("more", nargs="*", metavar="[NAME=]MODEL", help="more models to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for the network)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=_positive, help="interpreters per model (default: the usable CPU cores)")
    p.add_argument("--queue", type=int, default=16,
                   help="requests per model that may wait for a worker; more get 503 (default 16)")
    p.add_argument("--max-body", type=_positive, default=64 * 1024 * 1024, metavar="BYTES",
                   help="largest request body; larger get 413 (default 64 MiB)")
    p.add_argument("--detect", metavar="NAME", help="the model that answers DeepStack's POST /v1/vision/detection")
    p.add_argument("--labels", metavar="FILE", help="the detector's labels, one per line (default: its metadata)")
    p.add_argument("--api-key", help="require this key (default: $TFEDGE_API_KEY; none when unset)")
    p.add_argument("--quiet", action="store_true", help="no access log")
    # A server runs for days: what the backends print to fd 2 must reach its log as it happens,
    # not be held for the end as for the other commands (tfedge.cli.main); serve() drops only
    # the line each load prints.
    p.set_defaults(func=_cmd_serve, live_stderr=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGTERM or Ctrl-C; exit 0 then."""
    try:
        from .app import API_KEY_ENV, serve
    except ImportError:
        from ..errors import TfedgeError
        from ..isolate import _compiled

        if not _compiled():
            raise
        # A native binary built without --serve leaves the server out (and its stdlib parts).
        raise TfedgeError("This binary was built without the server. Build one that serves: "
                          "tfedge-build --serve [NAME=]MODEL.tflite.") from None

    models = parse_models(([args.model] if args.model else []) + list(args.more))
    options: Dict[str, Any] = {"backend": args.backend, "strict": args.strict}
    if args.threads:
        options["num_threads"] = args.threads
    if args.delegate:
        options["delegates"] = args.delegate
    serve(models, host=args.host, port=args.port, workers=args.workers, queue=max(args.queue, 0),
          detect=args.detect, labels=args.labels, api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
          max_body=args.max_body, quiet=args.quiet, **options)
    return 0
