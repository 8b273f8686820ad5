"""Compiling on this machine: the Nuitka command, its run with progress, and the check of the result.

``python -m tfedge.native.compile CONFIG.json`` compiles a config the command line
checked, in the Python that runs it (the no-BLAS venv, or a root's venv under qemu),
and prints the path of the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Dict, List, Optional, Sequence, Tuple

from .._version import __version__
from ..embedded import MANIFEST_FORMAT, MANIFEST_NAME
from ..serve.native import PILLOW_STDLIB
from .config import BuildConfig, BuildError, Mode, ModelFile
from .elf import loadable_segments
from .progress import Progress, log, nuitka_stage
from .targets import Backend
from .toolchain import build_env

__all__ = ["build_here", "build_key", "glibc_floor", "install_into_dist", "nuitka_command", "self_check",
           "stage_sources", "write_manifest"]

#: The environment variables nuitka_plugin.py reads (the extension modules it deletes, and strips).
DROP_ENV = "TFEDGE_NATIVE_DROP"
STRIP_ENV = "TFEDGE_NATIVE_STRIP"
_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)")
#: Subpackages that numpy 1's ``import numpy`` imports itself (numpy 2 imports them on first
#: use): a build against numpy 1 (the glibc 2.31 and armv7l roots, a numpy 1.26 venv) must
#: follow them, or the binary cannot import numpy.
NUMPY1_EAGER = ("numpy.fft", "numpy.polynomial")
#: The model the finished binary runs when none is embedded (LiteRT's add.tflite, Apache 2.0).
SELF_CHECK_MODEL = Path(__file__).resolve().parent / "data" / "add.tflite"


def stage_sources(folder: Path) -> Path:
    """Copy the installed tfedge runtime (wherever it lives) into ``folder``; return ``folder``.

    The build compiles this copy: it is the installed package, not a checkout, and a build
    venv (no BLAS, a root's) imports it from here without seeing the installing venv's numpy.
    """
    package = Path(__file__).resolve().parents[1]
    shutil.copytree(package, folder / "tfedge",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "converters", "_embedded"))
    return folder


def build_key(config: BuildConfig, entry: Path, sources: Path) -> str:
    """A short hash of everything that goes into the payload: names the unpack folder."""
    digest = hashlib.sha256()
    files = sorted(sources.joinpath("tfedge").rglob("*.py")) + [entry] + [m.path for m in config.models]
    for file in files:
        digest.update(str(file.name).encode() + b"\0" + file.read_bytes())
    for model in config.models:
        digest.update(model.name.encode() + b"\0")
    digest.update(f"{config.target.backend.value}|{config.target.arch.value}|{sys.version}|{__version__}".encode())
    # The compiled libraries too: two builds that differ only in them (numpy with and
    # without BLAS) must not share a folder, or each start of one re-extracts over the other.
    from importlib.util import find_spec

    for package, libs in _compiled_packages(config):
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations)))
        libraries = [*folder.rglob("*.so*"), *folder.with_name(libs).glob("*.so*")]
        for library in sorted(libraries):
            digest.update(f"{library.relative_to(folder.parent)}\0".encode() + library.read_bytes())
    return digest.hexdigest()[:16]


def _compiled_packages(config: BuildConfig) -> List[Tuple[str, str]]:
    """The packages with shared libraries that go in, each with the folder of the libraries its wheel bundles."""
    packages = [("numpy", "numpy.libs"), (config.target.backend.value, f"{config.target.backend.value}.libs")]
    return packages + [("PIL", "pillow.libs")] if config.pillow else packages


def numpy_major() -> int:
    """The major version of the numpy this Python builds with (0 if none is installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("numpy").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 0


def not_followed(excluded: Sequence[str]) -> List[str]:
    """``excluded`` less what this Python's numpy imports itself (numpy 1: :data:`NUMPY1_EAGER`)."""
    eager = NUMPY1_EAGER if numpy_major() < 2 else ()
    return [name for name in excluded if name not in eager]


def pillow_options(config: BuildConfig) -> List[str]:
    """Nuitka's options for Pillow in a ``config.pillow`` build: its JPEG and PNG decoders in, the rest out.

    Raises:
        BuildError: Pillow is not installed in the Python that builds.
    """
    if not config.pillow:
        return []
    try:
        from ..serve.native import PILLOW_KEPT, pillow_left_out

        left_out = pillow_left_out()
    except ImportError:
        raise BuildError(f"Pillow is not installed in the build's Python ({sys.executable}): pip install pillow "
                         "there, or leave out --detect.") from None
    # As bytecode, as numpy and tfedge: compiled to C, Pillow's Python took 4 minutes of gcc here.
    return ["--noinclude-custom-mode=PIL:bytecode", *(f"--include-module=PIL.{name}" for name in PILLOW_KEPT),
            *(f"--nofollow-import-to={name}" for name in left_out)]


def nuitka_command(config: BuildConfig, *, entry: Path, workdir: Path, manifest: Optional[Path],
                   key: str = "") -> List[str]:
    """The ``python -m nuitka ...`` command line for ``config``.

    Args:
        config: The build.
        entry: The main script (the user's app, or a two-line one calling tfedge.cli.main).
        workdir: Nuitka's output folder (temporary).
        manifest: The embedded models' manifest, if any models.
        key: :func:`build_key`, naming the folder a one-file binary unpacks into.
    """
    backend = config.target.backend
    other = [b for b in Backend if b is not backend]
    cmd = [
        sys.executable, "-m", "nuitka",
        f"--mode={config.mode.value}",
        f"--output-dir={workdir}",
        f"--output-filename={config.name}",
        f"--jobs={config.jobs or os.cpu_count() or 1}",
        f"--lto={'yes' if config.lto else 'no'}",
        "--python-flag=no_site",
        "--python-flag=no_docstrings",
        # The backend module imports the backend by name at run time: Nuitka cannot see it.
        f"--include-module={backend.value}.interpreter",
        "--include-module=tfedge.embedded",
        # numpy and tfedge as bytecode, as a venv runs them: the binary is smaller (tfedge
        # compiled to C was 5 MB of machine code), starts no slower, and builds minutes
        # faster; the hot loops are in numpy's and the backend's C code either way.
        "--noinclude-custom-mode=numpy:bytecode",
        "--noinclude-custom-mode=tfedge:bytecode",
        "--noinclude-setuptools-mode=nofollow",
        "--noinclude-pytest-mode=nofollow",
        "--noinclude-unittest-mode=nofollow",
        "--noinclude-pydoc-mode=nofollow",
        "--noinclude-IPython-mode=nofollow",
        "--noinclude-dask-mode=nofollow",
        "--noinclude-numba-mode=nofollow",
        *(f"--nofollow-import-to={name}" for name in (*not_followed(config.excluded), *(b.value for b in other))),
        *pillow_options(config),
        *(f"--noinclude-dlls={name}" for name in config.target.device_libs),
        "--no-deployment-flag=self-execution",
        # Nuitka takes some excluded extension modules anyway (the CJK codecs: it includes
        # every encoding); this plugin deletes them before the payload is packed.
        f"--user-plugin={Path(__file__).resolve().with_name('nuitka_plugin.py')}",
        f"--report={workdir / 'nuitka-report.xml'}",
    ]
    if config.mode is Mode.ONEFILE:
        cmd += [
            f"--onefile-tempdir-spec={{CACHE_DIR}}/tfedge/native-{key or 'build'}",
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


def dropped_extensions(names: Sequence[str]) -> List[str]:
    """The top-level names among ``names`` that are extension modules here (``_codecs_jp``, ``_ssl``...)."""
    from importlib.machinery import EXTENSION_SUFFIXES
    from importlib.util import find_spec

    found = []
    for name in names:
        spec = find_spec(name) if "." not in name else None
        if spec is not None and spec.origin and spec.origin.endswith(tuple(EXTENSION_SUFFIXES)):
            found.append(name)
    return found


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


def glibc_floor(paths: Sequence[Path]) -> Optional[str]:
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


def install_into_dist(source: Path, dist: Path, name: str) -> Path:
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


def _stripped_copies(packages: Sequence[Tuple[str, str]], folder: Path) -> Optional[Path]:
    """Copies of ``packages`` (numpy, the backend, Pillow) with their shared libraries' symbols stripped.

    The wheels' shared libraries keep symbol tables that the device never reads. Nuitka
    picks the copies up because their folder comes first on PYTHONPATH. Returns that
    folder, or None when ``strip`` is missing (the build then goes on unstripped).
    """
    strip = shutil.which("strip")
    if strip is None:
        log("strip not found (apt-get install binutils): the binary keeps its symbol tables")
        return None
    import importlib.util

    for package, libs_name in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin).parent
        shutil.copytree(source, folder / package, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        libs = source.parent / libs_name
        if libs.is_dir():
            shutil.copytree(libs, folder / libs.name)
    for library in [f for f in folder.rglob("*.so*") if f.is_file() and not f.is_symlink()]:
        stripped = library.with_name(library.name + ".stripped")
        subprocess.run([strip, "--strip-unneeded", "-o", str(stripped), str(library)], check=True, capture_output=True)
        # strip misaligns the segments of a library patchelf edited (auditwheel's bundled
        # ones: numpy 2's OpenBLAS); the loader refuses those, Nuitka's ldd with it, and the
        # binary could not start. Those keep their symbols.
        if loadable_segments(stripped):
            os.replace(stripped, library)
        else:
            stripped.unlink()
    return folder


def _run_nuitka(cmd: List[str], env: Dict[str, str], cwd: Path, log_path: Path, progress: Progress,
                build_dir: Path) -> int:
    """Run Nuitka with its output in ``log_path``, turning it into stages as it goes.

    On a terminal, the C stage counts the object files in ``build_dir`` (Nuitka's
    ``<entry>.build``) against its C files.
    """
    progress.stage("Nuitka: following and optimising Python modules")
    with open(log_path, "a") as log_file, open(log_path, errors="replace") as reader:
        log_file.write(shlex.join(cmd) + "\n")
        log_file.flush()
        reader.seek(0, os.SEEK_END)
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd)
        pending = ""
        while True:
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                code = None
            pending += reader.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                stage = nuitka_stage(line)
                if stage is not None:
                    progress.stage(stage)
            if progress.tty and build_dir.is_dir():
                sources = sum(1 for _ in build_dir.glob("*.c"))
                if sources:
                    progress.count(sum(1 for _ in build_dir.glob("*.o")), sources)
            if code is not None:
                return code


def self_check(binary: Path, config: BuildConfig, work: Path) -> None:
    """Run the finished binary: ``--version``, then one model (embedded, or a test one) with ``run`` and ``bench``.

    Raises:
        BuildError: it does not start or fails (one line, with the binary's last line of stderr).
    """
    executable = binary if binary.is_file() else binary / config.name
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
    env.pop("TFEDGE_BACKEND", None)
    model = f"embedded:{config.models[0].name}" if config.models else str(SELF_CHECK_MODEL)
    checks = [["--version"], ["run", model, "--random", "--threads", "1", "--output", str(work / "check.npz")],
              ["bench", model, "--runs", "2", "--threads", "1"]]
    for args in checks:
        try:
            proc = subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=300, env=env)
        except subprocess.TimeoutExpired:
            raise BuildError(f"The binary built did not finish `{shlex.join(args)}` within 300 s; "
                             "it was not installed.") from None
        if proc.returncode != 0:
            raise _failed(config, ["tfedge", *args[:2]], proc.returncode, proc.stderr)
    if config.serve:
        _serve_check(executable, config, env)


def _failed(config: BuildConfig, args: Sequence[str], code: Optional[int], stderr: str) -> BuildError:
    """The error of a self-check the binary failed: the command, its exit status, its last line of stderr."""
    tail = (stderr.strip().splitlines() or ["no output"])[-1][:300]
    return BuildError(f"The binary built fails `{shlex.join(args)}` (exit {code}: {tail}); it was not installed. "
                      f"Full log: {config.dist / (config.name + '.build.log')}")


def _serve_check(executable: Path, config: BuildConfig, env: Dict[str, str]) -> None:
    """Start a ``--serve`` binary's default command on a free loopback port, ask it, stop it with SIGTERM.

    Raises:
        BuildError: it does not listen within 120 s, does not answer ready, each model's
            metadata and (with a detector) a JPEG's and a PNG's detection with 200, or does
            not exit 0 on SIGTERM.
    """
    import http.client
    import signal

    args = ["--port", "0", "--workers", "1"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([str(executable), *args], stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            deadline = time.monotonic() + 120
            port = None
            while port is None and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
                err.seek(0)
                found = re.search(rb"on http://127\.0\.0\.1:(\d+) ", err.read())
                port = int(found.group(1)) if found else None
            if port is None:
                raise _failed(config, ["tfedge-serve", *args], proc.poll(), _text(err))
            asks: List[Tuple[str, str, Optional[bytes], Dict[str, str]]] = [
                ("GET", path, None, {}) for path in ("/v2/health/ready", *(f"/v2/models/{n}" for n in config.serve))]
            if config.detect:  # its decoders: a JPEG and a PNG
                asks += [("POST", "/v1/vision/detection", *_detection_form(kind)) for kind in ("JPEG", "PNG")]
            for method, path, body, headers in asks:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    connection.request(method, path, body=body, headers=headers)
                    response = connection.getresponse()
                    status, answer = response.status, response.read()[:200].decode("utf-8", "replace")
                finally:
                    connection.close()
                if status != 200:
                    raise BuildError(f"The binary built answers {method} {path} with {status}, not 200 ({answer}); "
                                     f"it was not installed. Full log: {config.dist / (config.name + '.build.log')}")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            if code != 0:
                raise _failed(config, ["tfedge-serve", *args, "(SIGTERM)"], code, _text(err))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _detection_form(kind: str) -> Tuple[bytes, Dict[str, str]]:
    """A DeepStack request (multipart, a 64x48 gradient as a ``kind`` file in ``image``) and its headers."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[..., 0] = np.arange(64, dtype=np.uint8) * 4
    data = io.BytesIO()
    Image.fromarray(pixels).save(data, format=kind)
    boundary = "tfedge-self-check"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"check\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _text(file: IO[bytes]) -> str:
    """All of a temporary file, as text."""
    file.seek(0)
    return file.read().decode("utf-8", "replace")


def build_here(config: BuildConfig, progress: Optional[Progress] = None) -> Path:
    """Compile ``config`` on this machine (its arch must be the host's); return the result's path.

    The result is run (:func:`self_check`) before it goes into ``dist/``.

    Raises:
        BuildError: Nuitka failed (its log is kept and named), or the binary does not run.
    """
    progress = progress or Progress()
    env = build_env()
    config.dist.mkdir(parents=True, exist_ok=True)
    log_path = config.dist / f"{config.name}.build.log"
    log_path.write_text("")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=config.dist) as tmp:
        work = Path(tmp)
        sources = stage_sources(work / "src")
        path = [str(sources)]
        if config.app is not None:
            entry = work / config.app.name
            shutil.copy2(config.app, entry)
            path.insert(0, str(config.app.resolve().parent))
        else:
            entry = work / "tfedge_native_main.py"
            # Guarded: a multiprocessing child (tfedge check) re-runs this module under
            # another name, and must not parse the child's command line as tfedge's.
            main = "tfedge.serve.native import main" if config.serve else "tfedge.cli import main"
            call = f"main(serve_args={list(config.serve_args)!r})" if config.serve else "main()"
            entry.write_text(f"from {main}\n\nif __name__ == '__main__':\n    raise SystemExit({call})\n")
        progress.stage(f"stripping numpy{', Pillow' if config.pillow else ''} and the backend")
        stripped = _stripped_copies(_compiled_packages(config), work / "stripped")
        progress.done()
        if stripped is not None:
            path.insert(0, str(stripped))
        env["PYTHONPATH"] = os.pathsep.join(path)
        env[DROP_ENV] = ",".join(dropped_extensions(config.excluded))
        env[STRIP_ENV] = ",".join(PILLOW_STDLIB if config.pillow else ())
        manifest = None
        if config.models:
            (work / "embedded").mkdir()
            manifest = write_manifest(config.models, work / "embedded")
        cmd = nuitka_command(config, entry=entry, workdir=work / "out", manifest=manifest,
                             key=build_key(config, entry, sources))
        log(f"compiling {config.name} with Nuitka ({config.mode.value}, {config.target.backend.value}); "
            f"log: {log_path}")
        started = time.monotonic()
        code = _run_nuitka(cmd, env, work, log_path, progress, work / "out" / f"{entry.stem}.build")
        progress.done()
        if code != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise BuildError(f"Nuitka failed (exit {code}): {' '.join(tail)[:300]} Full log: {log_path}")
        elapsed = time.monotonic() - started
        out = work / "out"
        dist_folder = out / f"{entry.stem}.dist"
        built = out / config.name if config.mode is Mode.ONEFILE else dist_folder
        if not built.exists():
            raise BuildError(f"Nuitka finished but {built} is missing. Full log: {log_path}")
        floor = glibc_floor([built, dist_folder])
        blas = sorted(dist_folder.glob("lib*openblas*")) if dist_folder.is_dir() else []
        if config.app is None:
            progress.stage("running the binary (--version and a model)")
            self_check(built, config, work)
            progress.done()
        else:
            log("not run: an --app's command line is its own (run it once on this machine before shipping)")
        target = install_into_dist(built, config.dist, config.name)
        report = out / "nuitka-report.xml"
        if report.exists():  # what went in and why: for whoever wants it smaller still
            shutil.copyfile(report, config.dist / f"{config.name}.report.xml")
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) if target.is_dir() else target.stat().st_size
    log(f"built {target} ({size / 1e6:.1f} MB) in {elapsed:.0f} s")
    if floor:
        log(f"needs glibc >= {floor} on the device (this machine has {platform.libc_ver()[1] or 'unknown'})"
            + "".join(f"; takes {name} from the device" for name in config.target.device_libs))
    if blas:
        log("numpy brings OpenBLAS, which tfedge never calls; leave out --blas for a smaller binary that starts faster")
    return target


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tfedge.native.compile CONFIG.json``: compile it here; print the result's path."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tfedge.native.compile CONFIG.json", file=sys.stderr)
        return 2
    try:
        target = build_here(BuildConfig.from_json(Path(args[0]).read_text()))
    except BuildError as exc:
        print(f"build_native: error: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
