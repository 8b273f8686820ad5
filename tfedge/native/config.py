"""What one build is (BuildConfig), and the checks of what the user passed (no compiling)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from .._version import __version__
from ..embedded import EMBEDDED_PREFIX
from ..errors import ModelError, TfedgeError
from ..verify import verify_model
from .targets import Target, target_named

__all__ = [
    "EXCLUDED_MODULES",
    "FORBIDDEN_IMPORTS",
    "SERVE_MODULES",
    "BuildConfig",
    "BuildError",
    "Mode",
    "ModelFile",
    "ReportedError",
    "check_app",
    "parse_model_arg",
    "serve_excluded",
    "unique_models",
]


class BuildError(TfedgeError):
    """A native build cannot start or failed; the message says what to install or fix."""


class ReportedError(BuildError):
    """A build process this one started failed and printed its error line already."""


class Mode(str, Enum):
    """One self-unpacking file, or a folder with the executable and its libraries."""

    ONEFILE = "onefile"
    STANDALONE = "standalone"


#: Imports that must never reach a native binary (checked in the app before building).
FORBIDDEN_IMPORTS = ("tensorflow", "keras", "tf_keras", "converters")

#: tfedge's server (``tfedge serve``): in a ``--serve`` build only.
SERVE_MODULES: Tuple[str, ...] = ("tfedge.serve.app", "tfedge.serve.handlers", "tfedge.serve.server",
                                  "tfedge.serve.protocol", "tfedge.serve.metrics", "tfedge.serve.multipart",
                                  "tfedge.serve.native", "tfedge.serve.systemd")

#: Packages and stdlib parts the runtime never uses; Nuitka must not follow them even when
#: something imports them lazily (the other backend is added per build). A feature that
#: needs some of them takes them out of its BuildConfig's ``excluded`` (``tfedge serve``
#: will need ``http`` and ``socketserver``).
EXCLUDED_MODULES: Tuple[str, ...] = (
    *FORBIDDEN_IMPORTS,
    # tfedge's own parts that never run in a binary: the converters (TensorFlow) and this build.
    "tfedge.converters",
    "tfedge.native",
    "pip",
    "setuptools",
    "pkg_resources",
    "distutils",
    "numpy.distutils",
    "numpy.f2py",
    "numpy.testing",
    "numpy.array_api",
    "pytest",
    "unittest",
    "doctest",
    "pydoc",
    "tkinter",
    "sqlite3",
    "lib2to3",
    "ensurepip",
    "idlelib",
    "curses",
    "xmlrpc",
    "http.server",
    # Not multiprocessing (tfedge check and probe=True run the model in a spawned child)
    # nor concurrent (InterpreterPool's threads): the runtime uses both.
    "asyncio",
    "ssl",
    "_ssl",
    # hashlib falls back to its builtin SHA-256 without OpenSSL's libcrypto (4 MB).
    "_hashlib",
    # Backend versions come from __version__, so no importlib.metadata (and its email,
    # csv, socket); zipfile and shutil run without bz2/lzma; nothing needs decimal or
    # unicodedata.
    "importlib.metadata",
    "email",
    "_bz2",
    "_lzma",
    "_decimal",
    "unicodedata",
    # Stdlib that Nuitka includes by default and the runtime never imports: network
    # clients and servers, profilers, debuggers, archive and mail formats. pickle's C
    # accelerator goes too (pickle falls back to pure Python; numpy imports it but
    # pickles nothing here; numpy does need _datetime), and socket (platform.node()
    # works without it).
    "ftplib", "imaplib", "poplib", "smtplib", "nntplib", "telnetlib", "socketserver",
    "webbrowser", "cgi", "cgitb", "http", "urllib.request", "mailbox", "mailcap", "tarfile",
    "trace", "pstats", "cProfile", "profile", "tracemalloc", "timeit", "pdb", "bdb", "code",
    "codeop", "rlcompleter", "pickletools", "modulefinder", "pyclbr", "symtable", "sndhdr",
    "imghdr", "uu", "xdrlib", "crypt", "pipes", "chunk", "sched", "netrc", "getpass", "tomllib",
    "difflib", "_pydecimal", "_pickle",
    # numpy.show_runtime() only.
    "threadpoolctl",
    # Measured file by file in the x86_64 binary: numpy parts that tfedge never calls (FFT,
    # 0.5 MB; the C API's test module; polynomials; numpy 1 imports FFT and polynomials itself, so
    # a numpy-1 build follows them: compile.NUMPY1_EAGER). Not numpy.ma: numpy.median (tfedge
    # bench) imports it. The CJK codecs (0.5 MB), which only a decode from Shift-JIS, Big5 or
    # GB2312 would load: Nuitka takes their extension modules anyway (it includes every
    # encoding), so nuitka_plugin.py deletes them before packing.
    "numpy.fft", "numpy._core._multiarray_tests", "numpy.polynomial",
    "_codecs_jp", "_codecs_hk", "_codecs_cn", "_codecs_kr", "_codecs_tw", "_codecs_iso2022", "_multibytecodec",
    # Measured again with an import trace of every command the binary offers (info, check,
    # run, bench, the tasks, errors with --verbose): stdlib modules Nuitka includes on its
    # own ("non-excluded parts of the standard library") that none of them imports, and
    # numpy's typing and matrix helpers.
    "html", "_markupbase", "_pyio", "configparser", "cmd", "colorsys", "filecmp", "fileinput", "getopt",
    "graphlib", "imp", "importlib.resources", "importlib.readers", "importlib.simple", "_strptime",
    "nturl2path", "sre_compile", "sre_constants", "sre_parse", "__hello__", "__phello__", "_aix_support",
    "_osx_support", "_bootsubprocess", "pprint", "gzip", "py_compile", "encodings.bz2_codec",
    "encodings.punycode", "encodings.rot_13", "encodings.hex_codec", "encodings.base64_codec",
    "numpy.typing", "numpy.matlib", "numpy.ma.mrecords",
    # OpenCV (the landmarkers' crop when cv2 imports): never built in (80 MB); the binary crops in numpy.
    "cv2",
    # Pillow (tfedge.tasks reads image files with it): only a --serve build with Pillow
    # carries it, and only its JPEG and PNG decoders (tfedge.serve.native.PILLOW_KEPT).
    "PIL",
    # The server's own modules (0.8 MB of compiled code): only a --serve build carries them
    # (tfedge.serve.cli stays: `tfedge serve` then says how to build a binary that serves).
    *SERVE_MODULES,
)

def serve_excluded(excluded: Sequence[str], *, pillow: bool = False) -> Tuple[str, ...]:
    """``excluded`` without what ``tfedge serve`` needs: the server's modules and their stdlib packages.

    With ``pillow``, without Pillow and the stdlib modules its JPEG and PNG decoders import
    too (the build leaves out the rest of Pillow: :func:`tfedge.serve.native.pillow_left_out`).
    """
    from ..serve.native import PILLOW_STDLIB, STDLIB_PACKAGES

    kept = (*SERVE_MODULES, *(("PIL", *PILLOW_STDLIB) if pillow else ()))
    return tuple(name for name in excluded if name not in kept and name.split(".")[0] not in STDLIB_PACKAGES)


_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ModelFile:
    """A model to embed: the name the app asks for, and the file on this machine."""

    name: str
    path: Path


@dataclass(frozen=True)
class BuildConfig:
    """Everything one build needs, checked.

    ``excluded`` is what Nuitka must not follow (EXCLUDED_MODULES unless a feature
    needs some of it); ``no_blas`` builds with a numpy compiled without BLAS. ``serve``
    names the embedded models a ``--serve`` binary serves by default; ``detect`` the one
    that answers DeepStack's detection (a default argument of the binary, ``--detect``);
    ``pillow``: the binary carries Pillow's JPEG and PNG decoders. ``host`` and ``port``
    go into its systemd unit.
    """

    target: Target
    mode: Mode
    dist: Path
    app: Optional[Path] = None
    models: Tuple[ModelFile, ...] = ()
    docker: bool = False
    lto: bool = False
    jobs: int = 0
    no_blas: bool = False
    excluded: Tuple[str, ...] = field(default=EXCLUDED_MODULES)
    serve: Tuple[str, ...] = ()
    port: int = 8000
    host: str = "127.0.0.1"
    detect: Optional[str] = None
    pillow: bool = False

    @property
    def stem(self) -> str:
        """What the binary is called on the device: ``tfedge``, ``tfedge-serve`` or the app's name."""
        return self.app.stem if self.app else "tfedge-serve" if self.serve else "tfedge"

    @property
    def name(self) -> str:
        """File (or folder) name of the result in ``dist/``."""
        return f"{self.stem}-{__version__}-linux-{self.target.arch.value}"

    @property
    def serve_args(self) -> Tuple[str, ...]:
        """What a ``--serve`` binary's default command serves: ``serve`` and these (then the user's arguments)."""
        detect = ("--detect", self.detect) if self.detect else ()
        return (*(f"{EMBEDDED_PREFIX}{name}" for name in self.serve), *detect)

    def to_json(self) -> str:
        """The config as JSON, for the build process that compiles it (another venv, a root)."""
        return json.dumps({
            "target": self.target.name, "mode": self.mode.value, "dist": str(self.dist),
            "app": str(self.app) if self.app else None,
            "models": [[m.name, str(m.path)] for m in self.models],
            "docker": self.docker, "lto": self.lto, "jobs": self.jobs, "no_blas": self.no_blas,
            "excluded": list(self.excluded), "serve": list(self.serve), "port": self.port, "host": self.host,
            "detect": self.detect, "pillow": self.pillow,
        })

    @classmethod
    def from_json(cls, text: str) -> BuildConfig:
        """The config :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        return cls(target=target_named(data["target"]), mode=Mode(data["mode"]), dist=Path(data["dist"]),
                   app=Path(data["app"]) if data["app"] else None,
                   models=tuple(ModelFile(name, Path(path)) for name, path in data["models"]),
                   docker=data["docker"], lto=data["lto"], jobs=data["jobs"], no_blas=data["no_blas"],
                   excluded=tuple(data["excluded"]), serve=tuple(data["serve"]), port=data["port"],
                   host=data["host"], detect=data["detect"], pillow=data["pillow"])

    def with_(self, **changes: Any) -> BuildConfig:
        """A copy with ``changes``."""
        return replace(self, **changes)


def check_app(path: Path) -> None:
    """Fail unless ``path`` is a Python file that parses and imports no TensorFlow.

    Raises:
        BuildError: missing, not Python, a syntax error, or a forbidden import.
    """
    if not path.is_file():
        raise BuildError(f"App file {str(path)!r} does not exist. Pass --app PATH/TO/APP.py.")
    if path.suffix != ".py":
        raise BuildError(f"App file {str(path)!r} is not a .py file. Pass the Python script that imports tfedge.")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise BuildError(f"App file {str(path)!r} has a syntax error on line {exc.lineno}: {exc.msg}.") from exc
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in FORBIDDEN_IMPORTS or name.startswith("tfedge.converters"):
                raise BuildError(
                    f"App file {str(path)!r} imports {name} (line {getattr(node, 'lineno', 0)}); a native binary carries only "
                    "tfedge's runtime. Convert the model ahead of time (tfedge-convert) and use tfedge.Interpreter."
                )


def parse_model_arg(text: str) -> ModelFile:
    """``--model [NAME=]FILE.tflite`` as a checked ModelFile (NAME defaults to the file's stem).

    Raises:
        BuildError: the file is missing, or not a whole TFLite model (tfedge's structural
            check, the one every load runs: a binary must never carry a model it will
            refuse), or the name is invalid.
    """
    name, sep, file = text.partition("=")
    if not sep or "/" in name:
        name, file = "", text
    path = Path(file)
    name = name or path.stem
    if not _MODEL_NAME.match(name):
        raise BuildError(f"Model name {name!r} is not usable: use letters, digits, '_', '-' and '.' (--model NAME=FILE).")
    if not path.is_file():
        raise BuildError(f"Model file {file!r} does not exist. Give --model or --serve the path of a .tflite file.")
    try:
        verify_model(path.read_bytes())
    except ModelError as exc:
        raise BuildError(f"Model file {file!r}: {exc}") from exc
    return ModelFile(name=name, path=path.resolve())


def unique_models(models: Sequence[ModelFile]) -> Tuple[ModelFile, ...]:
    """The models, refusing two with one name."""
    seen: dict[str, Path] = {}
    for model in models:
        if model.name in seen:
            raise BuildError(
                f"Two models are named {model.name!r} ({seen[model.name]} and {model.path}). "
                "Name them apart with --model NAME=FILE."
            )
        seen[model.name] = model.path
    return tuple(models)
