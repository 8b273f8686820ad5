"""The targets tfedge builds native binaries for: one record each.

A target is what a user has (an x86_64 server, a Raspberry Pi OS bookworm 64-bit, a
JetPack 5 Jetson), and its record holds everything the build needs for it: the CPU
architecture, the Debian root it is built in under qemu-user (none: built on this
machine), the backend wheel and numpy that go in, the glibc the binary promises, and
the compiler flags of what is compiled from source. Adding a target is adding a record
(and its test in ``tests/native/test_targets.py``).

The records are ordered fastest first: for an architecture, the first record that fits
the user's ``--glibc`` and ``--backend`` is the one built.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Optional, Tuple

__all__ = ["Arch", "Backend", "TARGETS", "Target", "host_arch", "select_target", "target_named"]


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


class Backend(str, Enum):
    """The TFLite backend compiled into the binary (exactly one: the other is left out)."""

    TFLITE_RUNTIME = "tflite_runtime"
    AI_EDGE_LITERT = "ai_edge_litert"

    @property
    def distribution(self) -> str:
        """The backend's name on PyPI."""
        return self.value.replace("_", "-")


#: What every build venv inside a root holds besides the backend and numpy.
_NUITKA = ("nuitka==4.3.3", "zstandard>=0.22", "ordered-set>=4.1")
#: Pillow, which a ``--serve`` binary decodes DeepStack's images with; in the roots of the
#: architectures PyPI has Pillow wheels for (aarch64: manylinux; armv7l: none).
_PILLOW = "pillow>=9"


@dataclass(frozen=True)
class Target:
    """One target: where and how its binary is built.

    Attributes:
        name: What ``--target`` takes, and what the build prints.
        arch: The CPU architecture.
        backend: The backend compiled in.
        devices: The systems the binary runs on, for messages and docs.
        suite: The Debian suite of the build root, or None when built on a machine of
            this architecture (x86_64: this one).
        glibc: The glibc the binary promises, or None for "this machine's": the newest
            GLIBC_x.y symbol version anything in it imports, measured in a build (at most
            the root's).
        qemu: qemu-user's name for the architecture (binfmt_misc's ``qemu-<name>``).
        requirements: What the build venv inside the root installs with pip.
        numpy_from_source: A numpy requirement compiled from source without BLAS in the
            root before the rest (no wheel for the arch), or None.
        source_env: Environment (compiler flags) of that compile.
        apt: A shell command run in the root first (Debian packages a compile needs), or "".
        no_blas: numpy without BLAS on a build on this machine (compiled once, cached).
        device_libs: Shared libraries the binary loads from the device instead of carrying
            them (Nuitka's ``--noinclude-dlls``): ones whose root copy needs a newer glibc
            than the rest, and that every device of the target has.
        why: Why this backend is the one for the target (printed by the build).
    """

    name: str
    arch: Arch
    backend: Backend
    devices: str
    suite: Optional[str] = None
    glibc: Optional[str] = None
    qemu: str = ""
    requirements: Tuple[str, ...] = ()
    numpy_from_source: Optional[str] = None
    source_env: str = ""
    apt: str = ""
    no_blas: bool = True
    device_libs: Tuple[str, ...] = ()
    why: str = ""

    @property
    def pillow(self) -> bool:
        """Whether a ``--serve`` build can carry Pillow: built here (the build venv's), or in a root that installs it."""
        return self.suite is None or _PILLOW in self.requirements

    @property
    def glibc_tuple(self) -> tuple[int, int]:
        """The promised glibc as numbers ((0, 0) for a build on this machine)."""
        major, _, minor = (self.glibc or "0.0").partition(".")
        return int(major), int(minor)


#: The records, fastest first per architecture.
TARGETS: tuple[Target, ...] = (
    Target(
        name="x86_64", arch=Arch.X86_64, backend=Backend.AI_EDGE_LITERT,
        devices="x86_64 Linux with this machine's glibc or newer",
        why="the fastest backend here: it runs int8 models through XNNPACK (tflite-runtime 2.14 does not)",
    ),
    Target(
        name="x86_64-tflite-runtime", arch=Arch.X86_64, backend=Backend.TFLITE_RUNTIME,
        devices="x86_64 Linux with this machine's glibc or newer",
        why="asked for with --backend tflite_runtime",
    ),
    Target(
        name="aarch64", arch=Arch.AARCH64, backend=Backend.AI_EDGE_LITERT,
        devices="64-bit Raspberry Pi OS bookworm, Debian 12, Ubuntu 22.04 and 24.04, JetPack 6 (glibc >= 2.35)",
        suite="bookworm", glibc="2.35", qemu="aarch64",
        # ai-edge-litert's aarch64 wheels import glibc 2.34 symbols: bookworm is the oldest Debian with them.
        # Measured in the built binary (objdump -T, in the root): 2.35, from Debian's Python (hypot); the
        # wheels' libraries need 2.34. libstdc++ is the device's (the wheels need GLIBCXX_3.4.30: GCC 12).
        # Debian builds pyexpat into its Python, so the program links libexpat.so.1, which nothing
        # tfedge runs calls; bookworm's imports arc4random_buf@GLIBC_2.36, so the binary takes the
        # device's (libexpat1 >= 2.4: every Pi OS, Ubuntu 22.04+ and JetPack 6 has it) and keeps 2.35.
        device_libs=("libexpat.so.1",),
        requirements=(*_NUITKA, "numpy>=2,<2.5", "ai-edge-litert==2.3.0", _PILLOW),
        no_blas=False,
        why="the fastest backend for aarch64 with glibc >= 2.34; --glibc 2.31 builds for older systems",
    ),
    Target(
        name="aarch64-glibc2.31", arch=Arch.AARCH64, backend=Backend.TFLITE_RUNTIME,
        devices="64-bit Raspberry Pi OS bullseye, JetPack 5 (Ubuntu 20.04), and newer (glibc >= 2.31)",
        suite="bullseye", glibc="2.31", qemu="aarch64",
        # tflite-runtime 2.13's aarch64 wheels are manylinux2014; bullseye has Python 3.9.
        requirements=(*_NUITKA, "numpy<2", "tflite-runtime==2.13.0", _PILLOW),
        no_blas=False,
        why="ai-edge-litert needs glibc >= 2.34, which glibc 2.31 systems lack; tflite-runtime 2.13 is the backend there",
    ),
    Target(
        name="armv7l", arch=Arch.ARMV7L, backend=Backend.TFLITE_RUNTIME,
        devices="32-bit Raspberry Pi OS bullseye or bookworm (ARMv7, glibc >= 2.31)",
        suite="bullseye", glibc="2.31", qemu="arm",
        # PyPI has no armv7l numpy, and Debian bullseye's (1.19.5) is older than the C API
        # tflite-runtime 2.13 was built against, so numpy is compiled in the root without BLAS
        # (tfedge never calls it); -g0 after Debian's -g: debug information only slows gcc
        # under qemu. zstandard has no armv7l wheels either: its source build needs cffi,
        # whose own needs libffi's headers.
        requirements=(*_NUITKA, "numpy==1.24.4", "tflite-runtime==2.13.0"),
        numpy_from_source="numpy==1.24.4",
        source_env="BLAS=None LAPACK=None ATLAS=None CFLAGS=-g0",
        apt=("dpkg -s libffi-dev >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive "
             "apt-get install -y -q --no-install-recommends libffi-dev)"),
        no_blas=False,
        why="tflite-runtime 2.13 is the last backend with 32-bit ARM wheels (ai-edge-litert has none)",
    ),
)


class TargetError(ValueError):
    """No target fits what was asked for (the message lists the choices)."""


def target_named(name: str) -> Target:
    """The record called ``name``.

    Raises:
        TargetError: no such target (the message lists them).
    """
    for target in TARGETS:
        if target.name == name:
            return target
    raise TargetError(f"Unknown target {name!r}. Available: {', '.join(repr(t.name) for t in TARGETS)}.")


def _parse_glibc(text: str) -> tuple[int, int]:
    """``"2.31"`` as (2, 31)."""
    major, sep, minor = text.partition(".")
    if not (sep and major.isdigit() and minor.isdigit()):
        raise TargetError(f"--glibc {text!r} is not a glibc version. Pass it as MAJOR.MINOR, e.g. --glibc 2.31 "
                          "(ldd --version on the device prints it).")
    return int(major), int(minor)


def select_target(arch: Arch, *, glibc: Optional[str] = None, backend: Optional[Backend] = None) -> Target:
    """The fastest target for ``arch`` that runs on ``glibc`` (the device's) with ``backend``.

    Raises:
        TargetError: nothing fits (the message says what does).
    """
    candidates = [t for t in TARGETS if t.arch is arch]
    if glibc is not None:
        device = _parse_glibc(glibc)
        if candidates and candidates[0].suite is None:
            raise TargetError(f"--glibc is for targets built in a Debian root (aarch64, armv7l); a {arch.value} "
                              "binary is built on this machine and needs this machine's glibc or newer.")
        fitting = [t for t in candidates if t.glibc_tuple <= device]
        if not fitting:
            oldest = min(candidates, key=lambda t: t.glibc_tuple)
            raise TargetError(f"No {arch.value} target runs on glibc {glibc}: the oldest, {oldest.name!r}, "
                              f"needs glibc >= {oldest.glibc}.")
        candidates = fitting
    if backend is not None:
        with_backend = [t for t in candidates if t.backend is backend]
        if not with_backend:
            others = ", ".join(sorted({t.backend.value for t in candidates}))
            if any(t.backend is backend for t in TARGETS if t.arch is arch):  # only --glibc ruled it out
                raise TargetError(f"{backend.distribution} does not run on glibc {glibc} for {arch.value}; "
                                  f"build with --backend {others} there, or for a newer --glibc.")
            raise TargetError(f"{backend.distribution} publishes no {arch.value} wheels; build {arch.value} with "
                              f"--backend {others}.")
        candidates = with_backend
    return candidates[0]


def host_arch() -> Optional[Arch]:
    """This machine's architecture (its Python's, for a 32-bit one), or None if tfedge builds nothing for it."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64", "armv8l": "armv7l"}.get(machine, machine)
    if machine == "aarch64" and sys.maxsize < 2**32:
        # 32-bit Raspberry Pi OS on a 64-bit kernel (Pi 4/5): uname says aarch64, the userland is armhf.
        machine = "armv7l"
    return Arch(machine) if machine in {a.value for a in Arch} else None
