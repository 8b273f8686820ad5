"""The command line: ``tfedge-build`` (and ``python build_native.py``, its thin entry point)."""

from __future__ import annotations

import argparse
import platform
import signal
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Optional, Sequence

from . import __doc__ as _doc
from .compile import build_here
from .config import (BuildConfig, BuildError, Mode, ReportedError, check_app, parse_model_arg, serve_excluded,
                     unique_models)
from .docker import check_docker_context, write_docker_context
from .noblas import ensure_noblas_env
from .probe import check_models
from .progress import Progress, log
from .root import build_in_root
from .targets import TARGETS, Arch, Backend, Target, TargetError, host_arch, select_target, target_named
from .toolchain import build_env, check_toolchain
from ..serve.systemd import write_unit

__all__ = ["build", "build_parser", "config_from_args", "main"]

PROG = "tfedge-build"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of tfedge-build."""
    parser = argparse.ArgumentParser(prog=PROG, description=(_doc or "").split("\n\n")[0])
    parser.add_argument("--app", type=Path, help="compile this app (which imports tfedge) instead of the tfedge command")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]FILE.tflite",
                        help="embed a model (repeatable); the app gets it with tfedge.embedded_model(NAME)")
    serve = parser.add_argument_group("serving (tfedge serve as the binary's default command)")
    serve.add_argument("--serve", action="append", default=[], metavar="[NAME=]FILE.tflite",
                       help="embed a model and serve it: the binary's default command becomes `tfedge serve` "
                            "with its models, and a systemd unit is written beside it (repeatable)")
    serve.add_argument("--detect", metavar="NAME",
                       help="the served model that answers DeepStack's POST /v1/vision/detection (Frigate, "
                            "Blue Iris); the binary carries Pillow's JPEG and PNG decoders for it")
    serve.add_argument("--host", default="127.0.0.1", help="the address in the systemd unit (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="the port in the systemd unit (default 8000)")
    parser.add_argument("--arch", choices=[a.value for a in Arch], help="target architecture (default: this machine's)")
    parser.add_argument("--glibc", metavar="X.Y",
                        help="the device's glibc (ldd --version): picks the fastest target that runs there "
                             "(--arch aarch64 --glibc 2.31: Raspberry Pi OS bullseye, JetPack 5)")
    parser.add_argument("--target", choices=[t.name for t in TARGETS],
                        help="a target by name (instead of --arch/--glibc/--backend)")
    parser.add_argument("--backend", choices=[b.value for b in Backend],
                        help="the TFLite backend to compile in (default: the target's fastest)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--onefile", dest="mode", action="store_const", const=Mode.ONEFILE, help="one executable (default)")
    mode.add_argument("--standalone", dest="mode", action="store_const", const=Mode.STANDALONE,
                      help="a folder with the executable and its libraries")
    parser.add_argument("--docker", action="store_true", help="also write dist/docker/ (Dockerfile + binary)")
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="output folder (default: ./dist)")
    parser.add_argument("--lto", action="store_true", help="link-time optimisation (slower build; off by default)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel C compiler jobs (default: all cores)")
    blas = parser.add_mutually_exclusive_group()
    blas.add_argument("--blas", dest="blas", action="store_true", default=None,
                      help="keep numpy's OpenBLAS (tfedge never calls it; an --app using numpy.linalg may want it)")
    blas.add_argument("--no-blas", dest="blas", action="store_false",
                      help="numpy compiled without BLAS (the default on x86_64; made once in "
                           "~/.cache/tfedge/build-envs, minutes the first time)")
    return parser


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Check the arguments (no compiling) and make the BuildConfig.

    Raises:
        BuildError: a missing or unusable app or model file, no target fits, or an unsupported machine.
    """
    host = host_arch()
    try:
        if args.target:
            if args.arch or args.glibc or args.backend:
                raise BuildError("--target names everything; leave out --arch, --glibc and --backend.")
            target = target_named(args.target)
        else:
            arch = Arch(args.arch) if args.arch else host
            if arch is None:
                raise BuildError(f"This machine is {platform.machine()}; pass --arch x86_64, --arch aarch64 "
                                 "or --arch armv7l.")
            target = select_target(arch, glibc=args.glibc, backend=Backend(args.backend) if args.backend else None)
    except TargetError as exc:
        raise BuildError(str(exc)) from exc
    mode = args.mode or Mode.ONEFILE
    if args.docker and mode is not Mode.ONEFILE:
        raise BuildError("--docker needs the one-file binary; leave out --standalone.")
    cross = target.arch is not host
    no_blas = target.no_blas if args.blas is None else not args.blas
    if cross and no_blas and not target.numpy_from_source:
        raise BuildError(
            "--no-blas compiles numpy, which takes hours under qemu: build on the device itself "
            f"({PROG} --no-blas on the Pi or Jetson), or leave out --no-blas."
        )
    if args.app is not None:
        check_app(args.app)
    served = [parse_model_arg(text) for text in args.serve]
    _check_serve_args(args, [m.name for m in served])
    models = unique_models([parse_model_arg(text) for text in args.model] + served)
    config = BuildConfig(target=target, mode=mode, dist=args.dist.resolve(),
                         app=args.app.resolve() if args.app else None, models=models, docker=args.docker,
                         lto=args.lto, jobs=max(args.jobs, 0), no_blas=no_blas and not cross)
    if not served:
        return config
    pillow = _pillow(target, args.detect)
    return config.with_(serve=tuple(m.name for m in served), host=args.host, port=args.port, detect=args.detect,
                        pillow=pillow, excluded=serve_excluded(config.excluded, pillow=pillow))


def _pillow(target: Target, detect: Optional[str]) -> bool:
    """Whether a --serve build carries Pillow: where the target has it (x86_64: when installed here).

    Raises:
        BuildError: ``--detect`` where it cannot (armv7l: no Pillow wheels; x86_64: not installed).
    """
    if not target.pillow:
        if detect is not None:
            raise BuildError(f"--detect needs Pillow in the binary, and PyPI has no {target.arch.value} Pillow wheels: "
                             f"the {target.arch.value} binary serves KServe v2 only; leave out --detect, or serve the "
                             "detector with tfedge serve from Python on the device.")
        return False
    if target.suite is not None or find_spec("PIL") is not None:
        return True  # a root installs it; here, the build venv takes this venv's
    if detect is not None:
        raise BuildError("--detect needs Pillow in the binary (it decodes DeepStack's JPEGs), and it is not "
                         "installed here: pip install pillow (or \"tfedge[native]\"), then build again.")
    log("Pillow is not installed here, so the binary serves no DeepStack detection (--detect); "
        "pip install pillow to build one that does")
    return False


def _check_serve_args(args: argparse.Namespace, served: Sequence[str]) -> None:
    """Fail unless the serving options fit together.

    Raises:
        BuildError: --detect, --host or --port without --serve, --serve with --app, a port out of
            range, or --detect naming no served model.
    """
    if not served:
        given = [flag for flag, value, default in (("--detect", args.detect, None), ("--host", args.host, "127.0.0.1"),
                                                   ("--port", args.port, 8000)) if value != default]
        if given:
            raise BuildError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to a server build: add --serve [NAME=]MODEL.tflite, "
                             f"or leave out {', '.join(given)}.")
        return
    if args.app is not None:
        raise BuildError("--serve builds the tfedge command as a server; an --app has its own command line. "
                         "Leave out one of them.")
    if not 1 <= args.port <= 65535:
        raise BuildError(f"--port must be from 1 to 65535, got {args.port}.")
    if args.detect is not None and args.detect not in served:
        raise BuildError(f"--detect {args.detect!r} names no --serve model. Served: {', '.join(served)}.")


def _stop_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like an error, so the root is unmounted and staging removed."""
    def stop(signum: int, frame: object) -> None:
        raise BuildError("stopped by SIGTERM; the root was unmounted and nothing half-built was left in --dist.")

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, stop)


def _in_noblas_env(config: BuildConfig, progress: Progress) -> Path:
    """Compile ``config`` with the no-BLAS venv's Python (made once); the result's path."""
    python = ensure_noblas_env(config.target.backend, progress, pillow=config.pillow)
    with tempfile.TemporaryDirectory(prefix="tfedge-build-") as tmp:
        from .compile import stage_sources

        sources = stage_sources(Path(tmp) / "src")
        (Path(tmp) / "config.json").write_text(config.to_json())
        env = dict(build_env(str(python)), PYTHONPATH=str(sources))
        proc = subprocess.Popen([str(python), "-m", "tfedge.native.compile", str(Path(tmp) / "config.json")],
                                env=env, stdout=subprocess.PIPE, text=True)
        try:
            out, _ = proc.communicate()
        except BaseException:  # SIGTERM, Ctrl-C: the child cleans up its staging first
            proc.terminate()
            proc.wait(60)
            raise
    if proc.returncode != 0:
        raise ReportedError(f"the build in the no-BLAS venv failed (exit {proc.returncode})")
    return Path(out.strip().splitlines()[-1])


def build(config: BuildConfig, progress: Optional[Progress] = None) -> Path:
    """Check the models on the target's backend, compile, run the result; return its path.

    Raises:
        BuildError: anything that stops the build (one line says what to fix).
    """
    progress = progress or Progress()
    target = config.target
    log(f"target {target.name}: {target.backend.value} inside ({target.why}); runs on {target.devices}")
    if target.arch is not host_arch():
        return build_in_root(config, progress)
    check_toolchain(target)
    if config.models:
        progress.stage(f"running the models once on {target.backend.value}")
        check_models(target, config.models, sys.executable)
        progress.done()
    if not config.no_blas:
        return build_here(config, progress)
    return _in_noblas_env(config, progress)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (0 built, 1 build error, 2 usage error)."""
    args = build_parser().parse_args(argv)
    _stop_on_sigterm()
    try:
        config = config_from_args(args)
        if config.docker:
            check_docker_context(config)  # a context this build cannot join fails now, not after the build
        target = build(config)
        if config.serve:
            unit = write_unit(target, config.serve_args, port=config.port, host=config.host,
                              install_path=f"/usr/local/bin/{config.stem}")
            log(f"wrote the systemd unit {unit} (install it as /etc/systemd/system/{config.stem}.service; "
                "docs/serve.md says how)")
        if config.docker:
            context = write_docker_context(target, config)
            log(f"wrote the Docker build context {context}")
    except ReportedError:
        return 1  # the build process that failed printed its one line
    except BuildError as exc:
        print(f"build_native: error: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0
