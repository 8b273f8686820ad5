"""A real build, as users run it: the installed ``tfedge-build`` with no flags but one model embedded.

The default for this machine (x86_64: ai-edge-litert, numpy without BLAS, made once and
cached). Labelled ``native_build``: it compiles with Nuitka (minutes, faster with a warm
ccache) and runs in CI, in a venv made by a plain ``pip install "<wheel>[native]"`` (numpy 2);
``pytest -m "not native_build"`` leaves it out locally.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import MODELS
import tfedge
from tfedge import __version__
from tfedge.cli import random_input
from tfedge.native import compile
from tfedge.native.elf import loadable_segments
from tfedge.native.targets import host_arch, select_target

#: The command pip installs beside this Python.
BUILD = str(Path(sys.executable).parent / "tfedge-build")

pytestmark = pytest.mark.native_build

#: The backend this machine's default target compiles in.
BACKEND = select_target(host_arch()).backend.value if host_arch() else ""

#: Models both backends run (see tests/data/litert-testdata/README.md): float, int8, several inputs,
#: per-channel quantization, LSTM, a large im2col convolution, no signatures.
COMPARED = ("add", "add_quantized_int8", "multi_add", "pc_conv", "lstm", "conv_huge_im2col", "no_signatures")


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The binary (built once for this module) and the environment to run it in."""
    arch = host_arch()
    if arch is None:
        pytest.fail(f"tfedge-build builds for x86_64, aarch64 and armv7l, not {os.uname().machine}")
    tmp = tmp_path_factory.mktemp("native")
    proc = subprocess.run([BUILD, "--model", f"adder={MODELS / 'add.tflite'}", "--dist", str(tmp / "dist")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    binary = Path(proc.stdout.strip())
    assert binary == tmp / "dist" / f"tfedge-{__version__}-linux-{arch.value}"
    assert sorted(p.name for p in binary.parent.iterdir()) == [
        f"{binary.name}{suffix}" for suffix in ("", ".build.log", ".report.xml")
    ]
    # Said which backend went in and why; checked the model and ran the binary before installing it.
    assert f"build_native: target {arch.value}: {BACKEND} inside (" in proc.stderr
    assert f"build_native: running the models once on {BACKEND}: done in " in proc.stderr
    assert "build_native: running the binary (--version and a model): done in " in proc.stderr
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
    env.pop("TFEDGE_BACKEND", None)
    return binary, env


def _tfedge(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a tfedge command line; fail the test with its stderr if it fails."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-2000:]}"
    return proc


@pytest.mark.parametrize("model", COMPARED)
def test_outputs_bit_identical_to_python(native: tuple[Path, dict[str, str]], tmp_path: Path, model: str) -> None:
    binary, env = native
    path = str(MODELS / f"{model}.tflite")
    rng = np.random.default_rng(0)
    specs = tfedge.Interpreter(path, backend=BACKEND).input_specs()
    np.savez(tmp_path / "in.npz", **{s.name: random_input(s, rng) for s in specs})
    common = ["run", path, "--input", str(tmp_path / "in.npz"), "--threads", "1"]
    _tfedge([str(binary), *common, "--output", str(tmp_path / "native.npz")], env)
    python_env = dict(env, TFEDGE_BACKEND=BACKEND)
    _tfedge([sys.executable, "-m", "tfedge", *common, "--output", str(tmp_path / "python.npz")], python_env)
    with np.load(tmp_path / "native.npz") as got, np.load(tmp_path / "python.npz") as want:
        assert got.files == want.files and got.files
        for key in want.files:
            assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
            assert got[key].tobytes() == want[key].tobytes(), key


def test_embedded_model_runs_without_a_file_argument(native: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    binary, env = native
    _tfedge([str(binary), "run", "--random", "--output", str(tmp_path / "emb.npz")], env)
    _tfedge([str(binary), "run", str(MODELS / "add.tflite"), "--random", "--output", str(tmp_path / "file.npz")], env)
    with np.load(tmp_path / "emb.npz") as a, np.load(tmp_path / "file.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    info = _tfedge([str(binary), "info"], env).stdout
    assert info.startswith("model      embedded:adder (")
    assert f"backend    {BACKEND} " in info


def test_binary_carries_one_backend_and_no_tensorflow(native: tuple[Path, dict[str, str]]) -> None:
    binary, env = native
    other = "tflite_runtime" if BACKEND == "ai_edge_litert" else "ai_edge_litert"
    proc = subprocess.run([str(binary), "info", "--backend", other], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"Backend '{other}' could not be imported (ModuleNotFoundError" in proc.stderr
    proc = subprocess.run([str(binary), "info", "--backend", "tensorflow"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    if importlib.util.find_spec("tensorflow") is not None:
        # Nuitka's deployment mode names the exclusion: "Module 'tensorflow' was actively excluded".
        assert proc.stderr.startswith("tfedge: error: Backend 'tensorflow' could not be imported (ImportError: ")
        assert "excluded" in proc.stderr
    else:  # a venv of `pip install "tfedge[native]"` has no TensorFlow to leave out
        assert proc.stderr.startswith("tfedge: error: Backend 'tensorflow' could not be imported "
                                      "(ModuleNotFoundError: No module named 'tensorflow')")


def test_check_probes_in_a_child_and_pool_imports(native: tuple[Path, dict[str, str]]) -> None:
    """The binary keeps multiprocessing (tfedge check spawns a child) and the pool's threads."""
    binary, env = native
    out = _tfedge([str(binary), "check", "--no-cache"], env).stdout
    assert re.fullmatch(rf"embedded:adder: ok \(structure verified; loaded and ran once on {BACKEND} [\d.]+\)\n", out)
    proc = subprocess.run([str(binary), "check", str(MODELS / "nested_while.tflite"), "--timeout", "2"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "did not finish one inference within 2 s" in proc.stderr


def test_bad_model_argument_is_one_line(native: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    binary, env = native
    proc = subprocess.run([str(binary), "run", "embedded:nope", "--random"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == "tfedge: error: No embedded model 'nope'. Available: 'adder'.\n"


def test_every_library_the_build_strips_still_loads(tmp_path: Path) -> None:
    """strip breaks libraries patchelf edited (numpy 2's bundled OpenBLAS: "ELF load command
    address/offset not page-aligned"), which Nuitka then left out: a --blas binary that could not
    start. Those go in unstripped; every extension finds all its libraries."""
    backend = select_target(host_arch()).backend.value
    folder = compile._stripped_copies([("numpy", "numpy.libs"), (backend, f"{backend}.libs")], tmp_path / "stripped")
    if folder is None:
        pytest.skip("strip is not installed")
    libraries = [p for p in folder.rglob("*.so*") if p.is_file()]
    assert any(p.parent.name == "numpy.libs" for p in libraries) == (Path(np.__file__).parent.with_name(
        "numpy.libs")).is_dir()
    assert [p.name for p in libraries if not loadable_segments(p)] == []
    for extension in (p for p in libraries if ".cpython-" in p.name):
        proc = subprocess.run(["ldd", str(extension)], capture_output=True, text=True)
        assert proc.returncode == 0 and "not found" not in proc.stdout, (extension, proc.stdout, proc.stderr)


@pytest.mark.slow
def test_the_blas_build_is_bigger_and_gives_the_same_outputs(native: tuple[Path, dict[str, str]],
                                                             tmp_path: Path) -> None:
    """--blas keeps numpy's OpenBLAS: bigger, same outputs (the default leaves it out)."""
    lean, env = native
    proc = subprocess.run([BUILD, "--blas", "--dist", str(tmp_path / "dist")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full = Path(proc.stdout.strip())
    assert lean.stat().st_size < 0.85 * full.stat().st_size
    report = (tmp_path / "dist" / f"{full.name}.report.xml").read_text()
    assert "openblas" in report
    path = str(MODELS / "add_quantized_int8.tflite")
    specs = tfedge.Interpreter(path, backend=BACKEND).input_specs()
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "in.npz", **{s.name: random_input(s, rng) for s in specs})
    for exe, out in ((full, "full.npz"), (lean, "lean.npz")):
        _tfedge([str(exe), "run", path, "--input", str(tmp_path / "in.npz"), "--output", str(tmp_path / out)], env)
    with np.load(tmp_path / "full.npz") as a, np.load(tmp_path / "lean.npz") as b:
        assert a.files == b.files and all(a[k].tobytes() == b[k].tobytes() for k in a.files)


def test_default_build_says_how_to_get_the_server(native: tuple[Path, dict[str, str]]) -> None:
    """The default build leaves the server out (tfedge-build --serve keeps it), and says so in one line."""
    binary, env = native
    proc = subprocess.run([str(binary), "serve", "embedded:adder", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == ("tfedge: error: This binary was built without the server. Build one that serves: "
                           "tfedge-build --serve [NAME=]MODEL.tflite.\n")
