"""What the ARM build tests share: when they can run, the build, and the comparison with x86_64.

An ARM build test runs only where its cached root is ready (the first build of a root takes
an hour or more under qemu, far beyond CI's budget), as root with qemu registered, and when
its environment variable asks for it; otherwise it is skipped saying which failed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

import tfedge
from support import MODELS
from tfedge.cli import random_input
from tfedge.native import toolchain
from tfedge.native.root import ROOT_VENV, root_path
from tfedge.native.targets import Arch, Target, host_arch

#: The command pip installs beside this Python.
BUILD = str(Path(sys.executable).parent / "tfedge-build")


def not_ready(target: Target, env_var: str, why_slow: str, hosts: tuple[Arch, ...]) -> Optional[str]:
    """Why this machine cannot run ``target``'s build test now, or None."""
    assert target.suite is not None
    marker = root_path(target.suite, target.arch) / ROOT_VENV.lstrip("/") / ".tfedge-requirements"
    wanted = "\n".join(target.requirements) + "\n"
    if not marker.is_file() or marker.read_text() != wanted:
        return (f"no cached {target.name} root with its build venv ({marker}): build once with "
                f"tfedge-build --target {target.name}")
    if host_arch() not in hosts:
        return f"runs on {' or '.join(a.value for a in hosts)} (through qemu-{target.qemu})"
    if os.geteuid() != 0 or not (toolchain.BINFMT_MISC / f"qemu-{target.qemu}").exists():
        return f"needs root and qemu-{target.qemu} registered in binfmt_misc"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux) to describe an ARM CPU to the binary under qemu"
    if os.environ.get(env_var) != "1":
        return f"set {env_var}=1 to run it ({why_slow})"
    return None


def marks(target: Target, env_var: str, why_slow: str, hosts: tuple[Arch, ...]) -> list[pytest.MarkDecorator]:
    """The ``pytestmark`` of ``target``'s build test: slow, a native build, skipped unless :func:`not_ready` is None."""
    reason = not_ready(target, env_var, why_slow, hosts)
    return [pytest.mark.slow, pytest.mark.native_build, pytest.mark.skipif(reason is not None, reason=str(reason))]


def build(args: list[str], target: Target, tmp: Path) -> tuple[Path, dict[str, str], str]:
    """Build with ``args`` (which pick ``target``) and the add model embedded as ``adder``: the
    binary, the environment to run it in under qemu-user, and the build's stderr."""
    proc = subprocess.run([BUILD, *args, "--model", f"adder={MODELS / 'add.tflite'}",
                           "--dist", str(tmp / "dist")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    binary = Path(proc.stdout.strip())
    assert binary == tmp / "dist" / f"tfedge-{tfedge.__version__}-linux-{target.arch.value}"
    assert f"build_native: target {target.name}: {target.backend.value} inside (" in proc.stderr
    assert target.suite is not None
    # qemu-user finds the loader and libc in the root (on the device they are the system's).
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), QEMU_LD_PREFIX=str(root_path(target.suite, target.arch)))
    env.pop("TFEDGE_BACKEND", None)
    return binary, env, proc.stderr


#: qemu's model of a Raspberry Pi 5's core, and /proc/cpuinfo as Linux shows one of them.
AARCH64_CPU = "cortex-a76"
AARCH64_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

"""


#: qemu's model of a Raspberry Pi 2's core (BCM2836), and /proc/cpuinfo as 32-bit Raspberry Pi OS shows one of them.
ARMV7L_CPU = "cortex-a7"
ARMV7L_CPUINFO = """processor\t: 0
model name\t: ARMv7 Processor rev 5 (v7l)
BogoMIPS\t: 38.40
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xc07
CPU revision\t: 5

Hardware\t: BCM2835
Revision\t: a01041
Model\t\t: Raspberry Pi 2 Model B Rev 1.1
"""


def with_arm_cpu(binary: Path, qemu_cpu: str, cpuinfo: str, tmp: Path) -> Path:
    """A script that runs ``binary`` under qemu-user as ``qemu_cpu``, where it sees one such core, not this machine's.

    qemu-user passes /proc/cpuinfo and /sys/devices/system/cpu through from this x86_64
    machine; XNNPACK's cpuinfo, parsing them as ARM's, crashes ai-edge-litert's aarch64
    build (SIGSEGV in the first model run) or, with /sys hidden (in a chroot), gives up and
    runs no node on XNNPACK. On the device it reads the real ones. The script mounts
    ``cpuinfo`` and a one-CPU ``possible``/``present``/``online`` over them in a private
    mount namespace (``unshare -m``), so XNNPACK runs its ARM kernels under qemu as on a device.
    qemu-user looks for a file under ``QEMU_LD_PREFIX`` (the root) first: while a build has
    /proc mounted there, the root's /proc/cpuinfo is this machine's, so that one is covered too.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "cpuinfo").write_text(cpuinfo)
    cpu = tmp / "cpu"
    cpu.mkdir(exist_ok=True)
    for name in ("possible", "present", "online"):
        (cpu / name).write_text("0\n")
    setup = (f"mount -t tmpfs none /sys/devices/system/cpu && cp {shlex.quote(str(cpu))}/* /sys/devices/system/cpu/ "
             f"&& mount --bind {shlex.quote(str(tmp / 'cpuinfo'))} /proc/cpuinfo "
             f"&& if [ -n \"${{QEMU_LD_PREFIX:-}}\" ] && [ -f \"$QEMU_LD_PREFIX/proc/cpuinfo\" ]; then "
             f"mount --bind {shlex.quote(str(tmp / 'cpuinfo'))} \"$QEMU_LD_PREFIX/proc/cpuinfo\"; fi && exec \"$@\"")
    script = tmp / binary.name
    script.write_text(f"#!/bin/sh\nexport QEMU_CPU={shlex.quote(qemu_cpu)}\nexec unshare -m sh -c {shlex.quote(setup)} sh {shlex.quote(str(binary))} \"$@\"\n")
    script.chmod(0o755)
    return script


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a tfedge command line; fail the test with its stderr if it fails."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-2000:]}"
    return proc


def check_embedded_and_one_backend(binary: Path, env: dict[str, str], backend: str, version: str, tmp: Path) -> None:
    """The embedded model runs and checks on ``backend`` ``version``; the other backend is not inside."""
    info = run([str(binary), "info"], env).stdout
    assert info.startswith("model      embedded:adder (")
    assert f"backend    {backend} {version}, " in info
    run([str(binary), "run", "--random", "--output", str(tmp / "emb.npz")], env)
    out = run([str(binary), "check", "--no-cache"], env).stdout
    assert out == f"embedded:adder: ok (structure verified; loaded and ran once on {backend} {version})\n"
    other = "tflite_runtime" if backend == "ai_edge_litert" else "ai_edge_litert"
    proc = subprocess.run([str(binary), "info", "--backend", other], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"Backend '{other}' could not be imported (ModuleNotFoundError" in proc.stderr


def activation_step(path: str, backend: str) -> float:
    """The largest quantization step of the model's per-tensor quantized (activation) tensors, or 0."""
    details = tfedge.Interpreter(path, backend=backend).get_tensor_details()
    steps = [float(d["quantization_parameters"]["scales"][0]) for d in details
             if len(d["quantization_parameters"]["scales"]) == 1 and np.dtype(d["dtype"]).kind in "iu"]
    return max(steps, default=0.0)


def compare_with_x86_64(binary: Path, env: dict[str, str], model: str, backend: str, tmp: Path) -> dict[str, float]:
    """Run ``model`` on the ARM binary and on this Python's ``backend`` with the same random inputs;
    assert the outputs agree within ARM rounding; return the largest absolute difference per output.

    Integer kernels round once per output: one quantization step at most (of the output, or for a
    float output computed through an int8 tensor, of that tensor: pc_conv's differs by exactly its
    output_int8 step, 0.00475). Float kernels sum in another order (NEON vs AVX): relative float32
    rounding.
    """
    path = str(MODELS / f"{model}.tflite")
    interpreter = tfedge.Interpreter(path, backend=backend)
    rng = np.random.default_rng(0)
    np.savez(tmp / "in.npz", **{s.name: random_input(s, rng) for s in interpreter.input_specs()})
    common = ["run", path, "--input", str(tmp / "in.npz"), "--threads", "1"]
    run([str(binary), *common, "--output", str(tmp / "arm.npz")], env)
    run([sys.executable, "-m", "tfedge", *common, "--output", str(tmp / "x86.npz")], dict(env, TFEDGE_BACKEND=backend))
    outputs = {s.name: s for s in interpreter.output_specs()}
    largest = {}
    with np.load(tmp / "arm.npz") as got, np.load(tmp / "x86.npz") as want:
        assert got.files == want.files and got.files
        for key in want.files:
            assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
            quantization = outputs[key].quantization  # None for a float output
            scales = quantization.scales if quantization is not None else ()
            atol = float(np.max(scales)) if len(scales) else max(
                1e-5 * max(1.0, float(np.max(np.abs(want[key])))), activation_step(path, backend))
            atol *= 1 + 1e-5  # one step as the float32 values dequantized from it differ: 0.00475359
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=atol, err_msg=key)
            difference = np.abs(got[key].astype(np.float64) - want[key].astype(np.float64))
            largest[key] = float(difference.max()) if difference.size else 0.0
    return largest
