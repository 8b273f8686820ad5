"""A real armv7l build (32-bit Raspberry Pi OS) through qemu-user, and the binary run under qemu.

Slow, and only where its cached root is ready: the first build of the Debian bullseye armhf
root compiles numpy from source under qemu (its build venv took 52 minutes on 2 shared cores),
far beyond CI's budget. So this runs only when all of these hold, and is skipped (saying which
failed) otherwise:

- ``~/.cache/tfedge/roots/bullseye-armhf`` holds a finished build venv (its
  ``opt/tfedge-venv/.tfedge-requirements`` lists exactly what the armv7l record installs now);
- this is an x86_64 or aarch64 machine, running as root, with qemu-arm registered in binfmt_misc;
- ``TFEDGE_TEST_ARMV7L=1``: even with the cached root and a warm ccache, the module takes
  minutes (3 on a quiet machine, load about 1: Nuitka under qemu 2.5 of them, then a dozen
  runs of the binary under emulation; 5 for Nuitka alone measured earlier on a busier one),
  and a cold ccache adds 10 more; too much for a test CI runs on every push.

The binary runs as a Raspberry Pi 2's core (qemu's cortex-a7, described in /proc/cpuinfo:
see :func:`cross_arch.with_arm_cpu`), as on the device, not with this machine's CPU files.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from cross_arch import (ARMV7L_CPU, ARMV7L_CPUINFO, build, check_embedded_and_one_backend, compare_with_x86_64, marks,
                        run, with_arm_cpu)
from support import MODELS
from tfedge.native import compile
from tfedge.native.targets import Arch, target_named

TARGET = target_named("armv7l")
ENV_VAR = "TFEDGE_TEST_ARMV7L"

#: The models test_build.py checks the x86_64 binary on, but conv_huge_im2col (see below).
COMPARED = ("add", "add_quantized_int8", "multi_add", "pc_conv", "lstm", "no_signatures")

pytestmark = marks(TARGET, ENV_VAR, "minutes even with the cached root", (Arch.X86_64, Arch.AARCH64))


class Native(NamedTuple):
    """The built binary, the script that runs it as an ARMv7 core, the environment, the build's stderr."""

    binary: Path
    command: Path
    env: dict[str, str]
    stderr: str


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Native:
    """The armv7l binary (built once for this module) and how to run it."""
    tmp = tmp_path_factory.mktemp("armv7l")
    binary, env, stderr = build(["--arch", "armv7l"], TARGET, tmp)
    return Native(binary, with_arm_cpu(binary, ARMV7L_CPU, ARMV7L_CPUINFO, tmp / "cpu"), env, stderr)


def test_binary_is_32bit_arm_eabi5_with_glibc_2_31_and_at_most_15_mb(native: Native) -> None:
    binary, stderr = native.binary, native.stderr
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
def test_outputs_match_x86_64_within_arm_rounding(native: Native, tmp_path: Path, model: str) -> None:
    compare_with_x86_64(native.command, native.env, model, "tflite_runtime", tmp_path)


def test_a_model_beyond_32_bits_is_one_clear_error(native: Native, tmp_path: Path) -> None:
    """conv_huge_im2col: 390 MB of inputs and, with no XNNPACK here, a CONV_2D im2col buffer of
    several GB: more than a 32-bit process can address (x86_64 runs it). One line, exit 1."""
    path = MODELS / "conv_huge_im2col.tflite"
    proc = subprocess.run([str(native.command), "run", str(path), "--random", "--threads", "1",
                           "--output", str(tmp_path / "out.npz")], env=native.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == (f"tfedge: error: Model file '{path}' loaded, but tflite_runtime could not allocate "
                           "its tensors: std::bad_alloc\n")
    assert not (tmp_path / "out.npz").exists()


def test_embedded_model_check_and_one_backend(native: Native, tmp_path: Path) -> None:
    check_embedded_and_one_backend(native.command, native.env, "tflite_runtime", "2.13.0", tmp_path)


def test_tflite_runtimes_armv7l_wheel_has_no_xnnpack(native: Native) -> None:
    """tflite-runtime 2.13's armv7l wheel is built without XNNPACK (TensorFlow's
    build_pip_package_with_cmake.sh passes -DTFLITE_ENABLE_XNNPACK=OFF for armhf; its
    library has none of XNNPACK's functions): no node goes to XNNPACK, as an ARMv7 core with
    NEON (a Pi 2's, described) and with this machine's CPU files alike. x86_64 takes every node."""
    path = str(MODELS / "multi_add.tflite")
    here = run([sys.executable, "-m", "tfedge", "info", path, "--backend", "tflite_runtime"], native.env).stdout
    placement = re.compile(r"^placement  xnnpack: (\d+) nodes, cpu: (\d+) nodes$", re.M)
    found = placement.search(here)
    assert found is not None
    xnnpack, cpu = map(int, found.groups())
    assert xnnpack > 0 and cpu == 0
    for command in (native.command, native.binary):
        arm = run([str(command), "info", path], native.env).stdout
        got = placement.search(arm)
        assert got is not None and got.groups() == ("0", str(xnnpack)), arm
    bench = json.loads(run([str(native.command), "bench", path, "--runs", "3", "--json"], native.env).stdout)
    assert bench["backend"] == "tflite_runtime"
