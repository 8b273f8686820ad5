"""Building for another architecture: a cached Debian root (debootstrap) run through qemu-user.

Nuitka cannot cross-compile, so the build runs inside a Debian root of the target's
architecture (its record names the suite: the oldest whose glibc the backend's wheels
accept), cached in ``~/.cache/tfedge/roots/<suite>-<arch>``, with a build venv made once.
The installed tfedge is bind-mounted in, the models are checked there (under qemu), and
``python -m tfedge.native.compile`` compiles and runs the binary there.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

from .._files import cache_dir
from .compile import install_into_dist, stage_sources
from .config import BuildConfig, BuildError
from .probe import check_models
from .progress import Progress, log
from .targets import Arch, Target
from .toolchain import check_cross_tools

__all__ = ["ROOT_VENV", "build_in_root", "ensure_root", "ensure_root_venv", "root_path"]

ROOT_PACKAGES = "python3,python3-venv,python3-dev,python3-pip,gcc,g++,make,binutils,patchelf,ccache,file,ca-certificates"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
ROOT_VENV = "/opt/tfedge-venv"
ROOT_SRC = "/mnt/tfedge-src"


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
    log(f"creating the {suite} {arch.debian} root (a few minutes, once): {shlex.join(cmd)}")
    with open(log_path, "w") as log_file:
        proc = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        _unmount_all(partial)
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(
            f"debootstrap of Debian {suite} ({arch.debian}) failed (exit {proc.returncode}); see {log_path}. "
            "Check that the Debian mirror is reachable and qemu-user-static is installed."
        )
    os.replace(partial, root)
    return root


def _mounts_under(root: Path) -> List[str]:
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
def _locked(root: Path) -> Iterator[None]:
    """``root`` held by this build alone (an exclusive lock next to it; another build waits)."""
    with open(root.with_name(root.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build using {root}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the file's close (or the process's end)


@contextmanager
def _mounted(root: Path, sources: Path) -> Iterator[None]:
    """/proc, /dev and the staged tfedge sources bind-mounted into ``root`` for the duration.

    Mounts left by a build that was killed (SIGKILL, a reboot-less crash) are unmounted first:
    a bind of a since-deleted sources folder cannot be mounted over. Only under the lock, so
    they are never another running build's.
    """
    binds = [("/proc", root / "proc"), ("/dev", root / "dev"), (str(sources), root / ROOT_SRC.lstrip("/"))]
    stale = _mounts_under(root)
    if stale:
        log(f"unmounting {len(stale)} mount(s) left in {root} by an interrupted build: {', '.join(stale)}")
        _unmount_all(root)
    try:
        for source, target in binds:
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", source, str(target)], check=True, capture_output=True)
        yield
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"Could not bind-mount into {root}: {exc.stderr.decode(errors='replace').strip()}") from exc
    finally:
        _unmount_all(root)


def _root_env() -> dict[str, str]:
    """The clean environment of commands inside a root (the staged tfedge importable)."""
    return {
        "PATH": f"{ROOT_VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONPATH": ROOT_SRC,
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "CCACHE_DIR": "/root/.cache/tfedge/ccache",
    }


def _chroot(root: Path, command: str, log_path: Path) -> int:
    """Run ``command`` (sh) inside ``root`` with a clean environment; output to ``log_path``."""
    with open(log_path, "a") as log_file:
        log_file.write(f"$ {command}\n")
        log_file.flush()
        proc = subprocess.run(["chroot", str(root), "/bin/sh", "-c", command], env=_root_env(),
                              stdout=log_file, stderr=subprocess.STDOUT)
    return proc.returncode


def venv_commands(target: Target, jobs: int = 0) -> str:
    """The shell command that makes ``target``'s build venv inside its root."""
    command = f"python3 -m venv {ROOT_VENV}"
    if target.numpy_from_source:
        command = (f"{command} && {target.source_env} NPY_NUM_BUILD_JOBS={jobs or os.cpu_count() or 1} "
                   f"{ROOT_VENV}/bin/pip install --no-binary numpy {shlex.quote(target.numpy_from_source)}")
    if target.apt:
        command = f"({target.apt}) && {command}"
    reqs = " ".join(shlex.quote(r) for r in target.requirements)
    return f"{command} && {ROOT_VENV}/bin/pip install {reqs}"


def ensure_root_venv(root: Path, target: Target, log_path: Path, jobs: int = 0) -> None:
    """Create (once) the build venv inside the root: what ``target``'s record lists.

    Raises:
        BuildError: apt or pip failed inside the root.
    """
    marker = root / ROOT_VENV.lstrip("/") / ".tfedge-requirements"
    wanted = "\n".join(target.requirements) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return
    for name in ("etc/ssl/certs/ca-certificates.crt", "etc/resolv.conf"):
        host = Path("/") / name
        if host.exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(host, root / name)
    what = f"compiling {target.numpy_from_source} without BLAS and " if target.numpy_from_source else ""
    log(f"{what}installing the build venv in {root} (pip under qemu, {'an hour' if what else 'minutes'}, once)")
    rc = _chroot(root, venv_commands(target, jobs), log_path)
    if rc != 0:
        raise BuildError(f"Setting up the build venv inside {root} failed (exit {rc}): apt or pip; see {log_path}.")
    marker.write_text(wanted)


def _relay_measured(log_path: Path) -> None:
    """Repeat what the build inside the root measured (the glibc floor) on this terminal."""
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("build_native: needs glibc >= "):
            log(line[len("build_native: "):])


def _inner_paths(config: BuildConfig, stage: Path, inner: str) -> BuildConfig:
    """``config`` with its files copied into ``stage`` (seen as ``inner`` in the root)."""
    app = None
    if config.app is not None:
        (stage / "app").mkdir()
        shutil.copy2(config.app, stage / "app" / config.app.name)
        app = Path(f"{inner}/app/{config.app.name}")
    models = []
    for model in config.models:
        (stage / "models").mkdir(exist_ok=True)
        shutil.copy2(model.path, stage / "models" / f"{model.name}.tflite")
        models.append(model.__class__(model.name, Path(f"{inner}/models/{model.name}.tflite")))
    inside = config.with_(app=app, models=tuple(models), dist=Path(f"{inner}/dist"),
                          jobs=config.jobs or os.cpu_count() or 1)
    return inside


def build_in_root(config: BuildConfig, progress: Progress) -> Path:
    """Build ``config`` for another architecture inside its cached Debian root through qemu-user.

    Raises:
        BuildError: missing cross tools, debootstrap/pip failure, a model the backend cannot
            run there, or the build inside failed.
    """
    target = config.target
    assert target.suite is not None, f"target {target.name} has no root"
    check_cross_tools(target)
    progress.stage(f"Debian {target.suite} {target.arch.debian} root")
    root = ensure_root(target.suite, target.arch)
    config.dist.mkdir(parents=True, exist_ok=True)
    log_path = config.dist / f"{config.name}.build.log"
    log_path.write_text("")
    started = time.monotonic()
    sources = Path(tempfile.mkdtemp(prefix="tfedge-src-"))
    try:
        stage_sources(sources)
        with _locked(root), _mounted(root, sources):
            progress.stage("build venv in the root")
            ensure_root_venv(root, target, log_path, config.jobs)
            stage = Path(tempfile.mkdtemp(prefix="tfedge-stage-", dir=root / "tmp"))
            try:
                inner = f"/tmp/{stage.name}"
                inside = _inner_paths(config, stage, inner)
                if config.models:
                    progress.stage(f"running the models once on {target.backend.value} (under qemu)")
                    check_models(target, [m.__class__(m.name, stage / "models" / f"{m.name}.tflite")
                                          for m in config.models],
                                 f"{ROOT_VENV}/bin/python", env=_root_env(), prefix=["chroot", str(root)])
                (stage / "config.json").write_text(inside.to_json())
                log(f"building inside {root} under qemu-user (Debian {target.suite}, glibc {target.glibc}); "
                    f"log: {log_path}")
                progress.stage("Nuitka under qemu (compile, then run the binary)")
                rc = _chroot(root, f"python -m tfedge.native.compile {inner}/config.json", log_path)
                progress.done()
                inner_log = stage / "dist" / f"{config.name}.build.log"
                if inner_log.exists():  # Nuitka's own output, from inside
                    with open(log_path, "a") as log_file:
                        log_file.write(inner_log.read_text(errors="replace"))
                if rc != 0:
                    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if "build_native:" in ln]
                    raise BuildError(f"The build inside {root} failed (exit {rc}): {(lines or [''])[-1]} "
                                     f"Full log: {log_path}")
                _relay_measured(log_path)
                built = stage / "dist" / config.name
                result = install_into_dist(built, config.dist, config.name)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    finally:
        shutil.rmtree(sources, ignore_errors=True)
    log(f"built {result} for {target.arch.value} in {time.monotonic() - started:.0f} s; "
        f"runs on glibc >= {target.glibc} (Debian {target.suite}) devices: {target.devices}")
    return result
