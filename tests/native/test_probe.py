"""Before Nuitka starts, every --model is run once on the backend that goes in; the finished binary is run too."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from support import MODELS, needs_backend
from tfedge import __version__
from tfedge.native import cli, compile, probe
from tfedge.native.config import BuildConfig, BuildError, Mode, ModelFile
from tfedge.native.targets import target_named

SELFIE = MODELS.parent / "mediapipe" / "selfie_segmentation.tflite"


@pytest.fixture
def no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any start of Nuitka fails the test; the toolchain check is skipped (this machine may lack gcc)."""
    def nuitka(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("Nuitka was started")

    monkeypatch.setattr(compile, "nuitka_command", nuitka)
    monkeypatch.setattr(cli, "check_toolchain", lambda target: None)


def _build(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """tfedge-build's exit status and its error line."""
    code = cli.main(list(argv))
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    return code, errors[0]


@needs_backend("tflite_runtime")
@needs_backend("ai_edge_litert")
def test_a_missing_op_stops_the_build_naming_it_and_targets_that_run_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_compiling: None) -> None:
    dist = tmp_path / "dist"
    code, err = _build(capsys, "--target", "x86_64-tflite-runtime", "--model", f"selfie={SELFIE}", "--dist", str(dist))
    assert code == 1
    assert err == ("build_native: error: Model 'selfie' (selfie_segmentation.tflite) cannot run on tflite_runtime, "
                   "the backend of target 'x86_64-tflite-runtime': it uses Convolution2DTransposeBias, which "
                   "tflite_runtime does not have. Nothing was compiled; build for a target whose backend runs it: "
                   "--target x86_64, --target aarch64.")
    assert not dist.exists()


@needs_backend("ai_edge_litert")
def test_a_model_no_backend_runs_stops_the_default_build(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         no_compiling: None) -> None:
    dist = tmp_path / "dist"
    code, err = _build(capsys, "--model", str(MODELS / "custom_sinh.tflite"), "--dist", str(dist))
    assert code == 1
    assert err == ("build_native: error: Model 'custom_sinh' (custom_sinh.tflite) cannot run on ai_edge_litert, "
                   "the backend of target 'x86_64': it uses Sinh, which ai_edge_litert does not have. Nothing was "
                   "compiled; no backend installed here runs it: convert the model with builtin ops only.")
    assert not dist.exists()


@needs_backend("ai_edge_litert")
def test_models_that_run_pass(tmp_path: Path) -> None:
    models = [ModelFile("adder", MODELS / "add.tflite"), ModelFile("selfie", SELFIE)]
    probe.check_models(target_named("x86_64"), models, sys.executable)


def _fake_binary(path: Path, failing: str) -> Path:
    """A shell script standing for a built binary that fails when its first argument is ``failing``."""
    path.write_text(f'#!/bin/sh\n[ "$1" = {failing} ] && {{ echo "ImportError: libfoo.so: cannot open" >&2; '
                    "exit 1; }\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize("failing", ["--version", "run", "bench"])
def test_a_binary_that_cannot_start_fails_the_build(tmp_path: Path, failing: str) -> None:
    config = BuildConfig(target=target_named("x86_64"), mode=Mode.ONEFILE, dist=tmp_path / "dist")
    binary = _fake_binary(tmp_path / "tfedge", failing)
    with pytest.raises(BuildError) as info:
        compile.self_check(binary, config, tmp_path)
    words = "--version" if failing == "--version" else f"{failing} {compile.SELF_CHECK_MODEL}"
    assert str(info.value) == (f"The binary built fails `tfedge {words}` (exit 1: ImportError: libfoo.so: cannot "
                               f"open); it was not installed. Full log: {tmp_path / 'dist' / config.name}.build.log")
    compile.self_check(_fake_binary(tmp_path / "ok", "never"), config, tmp_path)  # one that runs passes


def test_a_binary_that_cannot_start_is_not_installed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Nuitka "succeeds" with a binary that fails at start: exit 1, and dist/ holds only the log."""
    script = '#!/bin/sh\necho "RuntimeError: Nuitka: import of module numpy failed unexpectedly" >&2\nexit 1\n'

    def fake(config: BuildConfig, *, entry: Path, workdir: Path, manifest: Path | None, key: str = "") -> list[str]:
        target = workdir / config.name
        code = (f"import os; os.makedirs({str(workdir)!r}); open({str(target)!r}, 'w').write({script!r}); "
                f"os.chmod({str(target)!r}, 0o755)")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(compile, "nuitka_command", fake)
    monkeypatch.setattr(cli, "check_toolchain", lambda target: None)
    dist = tmp_path / "dist"
    code, err = _build(capsys, "--blas", "--dist", str(dist))
    assert code == 1
    assert err.startswith("build_native: error: The binary built fails `tfedge --version` (exit 1: RuntimeError: "
                          "Nuitka: import of module numpy failed unexpectedly); it was not installed.")
    assert sorted(p.name for p in dist.iterdir()) == [f"tfedge-{__version__}-linux-x86_64.build.log"]
