"""Real aarch64 builds through qemu-user, and the binaries run under qemu: the new floor (Debian
bookworm root, ai-edge-litert 2.3.0, numpy 2) and the old one (``--glibc 2.31``: bullseye,
tflite-runtime 2.13, numpy 1).

Slow, and only where a target's cached root is ready: the first build of a root
(debootstrap, then pip under qemu) and Nuitka with a cold ccache take an hour or more here,
far beyond CI's budget. So a target's cases run only when all of these hold, and are skipped
(saying which failed) otherwise:

- ``~/.cache/tfedge/roots/<suite>-arm64`` holds a finished build venv (its
  ``opt/tfedge-venv/.tfedge-requirements`` lists exactly what the target's record installs now);
- this is an x86_64 machine (an aarch64 one builds natively), running as root, with
  qemu-aarch64 registered in binfmt_misc and ``unshare``;
- ``TFEDGE_TEST_AARCH64=1``: even with the cached root, Nuitka runs under qemu for many
  minutes, and a dozen runs of the binary under emulation follow.

The binary runs as a Raspberry Pi 5's core (qemu's cortex-a76, described in /proc/cpuinfo:
see :func:`cross_arch.with_arm_cpu`), so XNNPACK runs its ARM kernels as on the device.
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

from cross_arch import (AARCH64_CPU, AARCH64_CPUINFO, build, check_embedded_and_one_backend, compare_with_x86_64,
                        marks, run, with_arm_cpu)
from support import MODELS
from tfedge.native import compile
from tfedge.native.targets import Arch, Target, target_named

ENV_VAR = "TFEDGE_TEST_AARCH64"

#: The models test_build.py checks the x86_64 binary on (64 bits: conv_huge_im2col too).
COMPARED = ("add", "add_quantized_int8", "multi_add", "pc_conv", "lstm", "conv_huge_im2col", "no_signatures")

#: Each target with its command line, the backend version inside, and its size limit
#: (measured with the add model inside: aarch64 15.0 MB, aarch64-glibc2.31 10.8 MB; a little more).
TARGETS = {
    "aarch64": (["--arch", "aarch64"], "2.3.0", 16_000_000),
    "aarch64-glibc2.31": (["--arch", "aarch64", "--glibc", "2.31"], "2.13.0", 12_000_000),
}


class Native(NamedTuple):
    """A built binary, the script that runs it as an ARM core, the environment, the build's stderr."""

    target: Target
    binary: Path
    command: Path
    env: dict[str, str]
    stderr: str


def _case(name: str) -> object:
    target = target_named(name)
    return pytest.param(target, id=name,
                        marks=marks(target, ENV_VAR, "Nuitka and the binary under qemu: many minutes", (Arch.X86_64,)))


@pytest.fixture(scope="module", params=[_case(name) for name in TARGETS])
def native(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Native:
    """The target's binary (built once for this module) and how to run it."""
    target: Target = request.param
    tmp = tmp_path_factory.mktemp(target.name)
    binary, env, stderr = build(TARGETS[target.name][0], target, tmp)
    return Native(target, binary, with_arm_cpu(binary, AARCH64_CPU, AARCH64_CPUINFO, tmp / "cpu"), env, stderr)


def test_binary_is_64bit_arm_with_the_promised_glibc_floor(native: Native, tmp_path: Path) -> None:
    target = native.target
    header = native.binary.read_bytes()[:64]
    assert header[:4] == b"\x7fELF" and header[4] == 2 and header[5] == 1  # ELFCLASS64, little-endian
    machine, = struct.unpack_from("<H", header, 18)
    assert machine == 183  # EM_AARCH64
    if shutil.which("file"):
        out = subprocess.run(["file", "-b", str(native.binary)], capture_output=True, text=True, check=True).stdout
        assert out.startswith("ELF 64-bit LSB") and "ARM aarch64" in out, out
    assert native.binary.stat().st_size <= TARGETS[target.name][2]
    # Measured inside the root over every file that went in (objdump -T): at most what the record
    # promises (aarch64: exactly, 2.35; bullseye's Python and tflite-runtime 2.13 need less than 2.31).
    measured = re.search(r"needs glibc >= 2\.(\d+) on the device", native.stderr)
    assert measured is not None and (2, int(measured.group(1))) <= target.glibc_tuple, native.stderr
    assert f"runs on glibc >= {target.glibc} (Debian {target.suite}) devices" in native.stderr
    for library in target.device_libs:
        assert f"takes {library} from the device" in native.stderr
    # And again here, over what the binary unpacks: every file of its payload, and the starter.
    env = dict(native.env, XDG_CACHE_HOME=str(tmp_path))
    run([str(native.command), "--version"], env)
    payload, = (tmp_path / "tfedge").glob("native-*")
    assert not [name for name in target.device_libs if (payload / name).exists()]
    floor = compile.glibc_floor([payload, native.binary])
    assert floor == f"2.{measured.group(1)}", floor


@pytest.mark.parametrize("model", COMPARED)
def test_outputs_match_x86_64_within_arm_rounding(native: Native, tmp_path: Path, model: str) -> None:
    if model == "conv_huge_im2col":  # its one inference under qemu takes longer than the default probe's 30 s
        run([str(native.command), "check", str(MODELS / f"{model}.tflite"), "--timeout", "900"], native.env)
    compare_with_x86_64(native.command, native.env, model, native.target.backend.value, tmp_path)


def test_embedded_model_check_and_one_backend(native: Native, tmp_path: Path) -> None:
    check_embedded_and_one_backend(native.command, native.env, native.target.backend.value,
                                   TARGETS[native.target.name][1], tmp_path)


def test_xnnpack_takes_the_nodes_it_takes_on_x86_64(native: Native) -> None:
    """Both aarch64 backends delegate to XNNPACK as x86_64 does (tflite-runtime 2.13's armv7l does not)."""
    backend = native.target.backend.value
    path = str(MODELS / "multi_add.tflite")
    here = run([sys.executable, "-m", "tfedge", "info", path, "--backend", backend], native.env).stdout
    arm = run([str(native.command), "info", path], native.env).stdout
    placement = re.compile(r"^placement  xnnpack: (\d+) nodes, cpu: (\d+) nodes$", re.M)
    found, got = placement.search(here), placement.search(arm)
    assert found is not None and int(found.group(1)) > 0 and found.group(2) == "0"
    assert got is not None and got.groups() == found.groups(), arm
    bench = json.loads(run([str(native.command), "bench", path, "--runs", "3", "--json"], native.env).stdout)
    assert bench["backend"] == backend
