"""A real armv7l build (32-bit Raspberry Pi OS) through qemu-user, and the binary run under qemu.

Slow, and only where its cached root is ready: the first build of the Debian bullseye armhf
root compiles numpy from source under qemu (about half an hour), far beyond CI's budget. So
this runs only when all of these hold, and is skipped (saying which failed) otherwise:

- ``~/.cache/tfedge/roots/bullseye-armhf`` holds a finished build venv (its
  ``opt/tfedge-venv/.tfedge-requirements`` lists exactly what the armv7l record installs now);
- this is an x86_64 or aarch64 machine, running as root, with qemu-arm registered in binfmt_misc;
- ``TFEDGE_TEST_ARMV7L=1``: even with the cached root, Nuitka under qemu took 5 minutes with a
  warm ccache (measured by hand, on a quiet machine), and a dozen runs of the binary under
  emulation follow: more than the ~6 minutes CI can give one test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import MODELS
import tfedge
from tfedge import __version__
from tfedge.cli import random_input
from tfedge.native import compile, toolchain
from tfedge.native.root import ROOT_VENV, root_path
from tfedge.native.targets import Arch, host_arch, target_named

TARGET = target_named("armv7l")
ROOT = root_path("bullseye", Arch.ARMV7L)
ENV_VAR = "TFEDGE_TEST_ARMV7L"
#: The command pip installs beside this Python.
BUILD = str(Path(sys.executable).parent / "tfedge-build")

#: The models test_build.py checks the x86_64 binary on, but conv_huge_im2col (see below).
COMPARED = ("add", "add_quantized_int8", "multi_add", "pc_conv", "lstm", "no_signatures")


def _not_ready() -> str | None:
    """Why this machine cannot run the armv7l build test now, or None."""
    marker = ROOT / ROOT_VENV.lstrip("/") / ".tfedge-requirements"
    wanted = "\n".join(TARGET.requirements) + "\n"
    if not marker.is_file() or marker.read_text() != wanted:
        return f"no cached armv7l root with its build venv ({marker}): build once with tfedge-build --arch armv7l"
    if host_arch() not in (Arch.X86_64, Arch.AARCH64):
        return "runs on an x86_64 or aarch64 machine (through qemu-arm)"
    if os.geteuid() != 0 or not (toolchain.BINFMT_MISC / "qemu-arm").exists():
        return "needs root and qemu-arm registered in binfmt_misc"
    if os.environ.get(ENV_VAR) != "1":
        return f"set {ENV_VAR}=1 to run it (over 6 minutes even with the cached root)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.native_build,
    pytest.mark.skipif(_not_ready() is not None, reason=str(_not_ready())),
]


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """The armv7l binary (built once for this module), the environment to run it in, the build's stderr."""
    tmp = tmp_path_factory.mktemp("armv7l")
    proc = subprocess.run([BUILD, "--arch", "armv7l", "--model", f"adder={MODELS / 'add.tflite'}",
                           "--dist", str(tmp / "dist")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    binary = Path(proc.stdout.strip())
    assert binary == tmp / "dist" / f"tfedge-{__version__}-linux-armv7l"
    # qemu-arm finds the armhf loader and libc in the root (on a Pi they are the system's).
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), QEMU_LD_PREFIX=str(ROOT))
    env.pop("TFEDGE_BACKEND", None)
    return binary, env, proc.stderr


def _tfedge(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a tfedge command line; fail the test with its stderr if it fails."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-2000:]}"
    return proc


def test_binary_is_32bit_arm_eabi5_with_glibc_2_31_and_at_most_15_mb(native: tuple[Path, dict[str, str], str]) -> None:
    binary, _, stderr = native
    header = binary.read_bytes()[:52]
    assert header[:4] == b"\x7fELF" and header[4] == 1 and header[5] == 1  # ELFCLASS32, little-endian
    machine, = struct.unpack_from("<H", header, 18)
    flags, = struct.unpack_from("<I", header, 36)
    assert machine == 40 and flags >> 24 == 5  # EM_ARM, EABI version 5
    if shutil.which("file"):
        out = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
        assert out.startswith("ELF 32-bit LSB") and "ARM, EABI5" in out, out
    assert binary.stat().st_size <= 15_000_000
    # Measured inside the root over every library that went in (objdump -T), then the root's own.
    measured = re.search(r"needs glibc >= 2\.(\d+) on the device", stderr)
    assert measured is not None and int(measured.group(1)) <= 31, stderr
    assert "runs on glibc >= 2.31 (Debian bullseye) devices" in stderr
    floor = compile.glibc_floor([binary])  # the self-unpacking starter
    assert floor is not None and tuple(map(int, floor.split("."))) <= (2, 31)


@pytest.mark.parametrize("model", COMPARED)
def test_outputs_match_x86_64_within_arm_rounding(native: tuple[Path, dict[str, str], str], tmp_path: Path,
                                                  model: str) -> None:
    binary, env, _ = native
    path = str(MODELS / f"{model}.tflite")
    specs = tfedge.Interpreter(path, backend="tflite_runtime").input_specs()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "in.npz", **{s.name: random_input(s, rng) for s in specs})
    common = ["run", path, "--input", str(tmp_path / "in.npz"), "--threads", "1"]
    _tfedge([str(binary), *common, "--output", str(tmp_path / "arm.npz")], env)
    python_env = dict(env, TFEDGE_BACKEND="tflite_runtime")
    _tfedge([sys.executable, "-m", "tfedge", *common, "--output", str(tmp_path / "x86.npz")], python_env)
    outputs = {s.name: s for s in tfedge.Interpreter(path, backend="tflite_runtime").output_specs()}
    with np.load(tmp_path / "arm.npz") as got, np.load(tmp_path / "x86.npz") as want:
        assert got.files == want.files and got.files
        for key in want.files:
            assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
            quantization = outputs[key].quantization  # None for a float output
            scales = quantization.scales if quantization is not None else ()
            # Integer kernels round once per output: one quantization step at most (of the
            # output, or for a float output computed through an int8 tensor, of that tensor:
            # pc_conv's differs by exactly its output_int8 step, 0.00475). Float kernels sum
            # in another order (NEON vs AVX): relative float32 rounding.
            atol = float(np.max(scales)) if len(scales) else max(
                1e-5 * max(1.0, float(np.max(np.abs(want[key])))), _activation_step(path))
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=atol, err_msg=key)


def test_a_model_beyond_32_bits_is_one_clear_error(native: tuple[Path, dict[str, str], str], tmp_path: Path) -> None:
    """conv_huge_im2col: 390 MB of inputs and, with no XNNPACK here, a CONV_2D im2col buffer of
    several GB: more than a 32-bit process can address (x86_64 runs it). One line, exit 1."""
    binary, env, _ = native
    path = MODELS / "conv_huge_im2col.tflite"
    proc = subprocess.run([str(binary), "run", str(path), "--random", "--threads", "1",
                           "--output", str(tmp_path / "out.npz")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == (f"tfedge: error: Model file '{path}' loaded, but tflite_runtime could not allocate "
                           "its tensors: std::bad_alloc\n")
    assert not (tmp_path / "out.npz").exists()


def _activation_step(path: str) -> float:
    """The largest quantization step of the model's per-tensor quantized (activation) tensors, or 0."""
    details = tfedge.Interpreter(path, backend="tflite_runtime").get_tensor_details()
    steps = [float(d["quantization_parameters"]["scales"][0]) for d in details
             if len(d["quantization_parameters"]["scales"]) == 1 and np.dtype(d["dtype"]).kind in "iu"]
    return max(steps, default=0.0)


def test_embedded_model_check_and_one_backend(native: tuple[Path, dict[str, str], str], tmp_path: Path) -> None:
    binary, env, _ = native
    info = _tfedge([str(binary), "info"], env).stdout
    assert info.startswith("model      embedded:adder (")
    assert "backend    tflite_runtime 2.13.0, " in info
    _tfedge([str(binary), "run", "--random", "--output", str(tmp_path / "emb.npz")], env)
    out = _tfedge([str(binary), "check", "--no-cache"], env).stdout
    assert out == "embedded:adder: ok (structure verified; loaded and ran once on tflite_runtime 2.13.0)\n"
    proc = subprocess.run([str(binary), "info", "--backend", "ai_edge_litert"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Backend 'ai_edge_litert' could not be imported (ModuleNotFoundError" in proc.stderr


def test_xnnpack_takes_no_nodes_on_armv7l(native: tuple[Path, dict[str, str], str]) -> None:
    """tflite-runtime 2.13's armv7l build delegates nothing to XNNPACK (README says so); x86_64 takes every node."""
    binary, env, _ = native
    path = str(MODELS / "multi_add.tflite")
    here = _tfedge([sys.executable, "-m", "tfedge", "info", path, "--backend", "tflite_runtime"], env).stdout
    arm = _tfedge([str(binary), "info", path], env).stdout
    placement = re.compile(r"^placement  xnnpack: (\d+) nodes, cpu: (\d+) nodes$", re.M)
    xnnpack, cpu = map(int, placement.search(here).groups())
    assert xnnpack > 0 and cpu == 0
    assert placement.search(arm).groups() == ("0", str(xnnpack)), arm
    bench = json.loads(_tfedge([str(binary), "bench", path, "--runs", "3", "--json"], env).stdout)
    assert bench["backend"] == "tflite_runtime"
