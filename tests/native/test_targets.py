"""The target records: one per target, the fastest backend by default, every earlier target still buildable.

A new target is a new record in tfedge/native/targets.py and a row in RECORDS below.
"""

from __future__ import annotations

import shlex

import pytest

from tfedge.native import root
from tfedge.native.targets import TARGETS, Arch, Backend, Target, TargetError, select_target, target_named

#: Each record as the user gets it: name, arch, backend, Debian suite of its root, promised glibc, qemu.
RECORDS = [
    ("x86_64", Arch.X86_64, Backend.AI_EDGE_LITERT, None, None, ""),
    ("x86_64-tflite-runtime", Arch.X86_64, Backend.TFLITE_RUNTIME, None, None, ""),
    ("aarch64", Arch.AARCH64, Backend.AI_EDGE_LITERT, "bookworm", "2.35", "aarch64"),
    ("aarch64-glibc2.31", Arch.AARCH64, Backend.TFLITE_RUNTIME, "bullseye", "2.31", "aarch64"),
    ("armv7l", Arch.ARMV7L, Backend.TFLITE_RUNTIME, "bullseye", "2.31", "arm"),
]


def test_every_record_is_listed_here_once() -> None:
    assert [t.name for t in TARGETS] == [r[0] for r in RECORDS]


@pytest.mark.parametrize(("name", "arch", "backend", "suite", "glibc", "qemu"), RECORDS)
def test_record(name: str, arch: Arch, backend: Backend, suite: str | None, glibc: str | None, qemu: str) -> None:
    target = target_named(name)
    assert (target.arch, target.backend, target.suite, target.glibc, target.qemu) == (arch, backend, suite, glibc, qemu)
    assert target.devices and target.why
    if suite is None:  # built on this machine, from what the running Python has
        assert target.requirements == () and target.no_blas
        return
    # A root's venv holds Nuitka, numpy and exactly this target's backend.
    packages = {r.split("=")[0].split("<")[0].split(">")[0] for r in target.requirements}
    assert {"nuitka", "zstandard", "numpy", backend.distribution} <= packages
    assert not {b.distribution for b in Backend if b is not backend} & packages
    command = root.venv_commands(target, jobs=2)
    assert command.endswith(" ".join(shlex.quote(r) for r in target.requirements))
    assert (f"--no-binary numpy {target.numpy_from_source}" in command) == bool(target.numpy_from_source)


@pytest.mark.parametrize(("arch", "glibc", "backend", "name"), [
    (Arch.X86_64, None, None, "x86_64"),  # ai-edge-litert: int8 through XNNPACK, 20x tflite-runtime 2.14
    (Arch.X86_64, None, Backend.TFLITE_RUNTIME, "x86_64-tflite-runtime"),
    (Arch.AARCH64, None, None, "aarch64"),
    (Arch.AARCH64, "2.36", None, "aarch64"),  # Raspberry Pi OS bookworm
    (Arch.AARCH64, "2.39", None, "aarch64"),  # Ubuntu 24.04
    (Arch.AARCH64, "2.35", None, "aarch64"),  # JetPack 6, Ubuntu 22.04: what the bookworm binary measured
    (Arch.AARCH64, "2.34", None, "aarch64-glibc2.31"),
    (Arch.AARCH64, "2.31", None, "aarch64-glibc2.31"),  # Pi OS bullseye, JetPack 5
    (Arch.AARCH64, None, Backend.TFLITE_RUNTIME, "aarch64-glibc2.31"),  # the earlier default, still there
    (Arch.ARMV7L, None, None, "armv7l"),
    (Arch.ARMV7L, "2.36", None, "armv7l"),
])
def test_the_fastest_target_that_runs_there(arch: Arch, glibc: str | None, backend: Backend | None, name: str) -> None:
    assert select_target(arch, glibc=glibc, backend=backend).name == name


@pytest.mark.parametrize(("arch", "glibc", "backend", "message"), [
    (Arch.ARMV7L, None, Backend.AI_EDGE_LITERT,
     "ai-edge-litert publishes no armv7l wheels; build armv7l with --backend tflite_runtime."),
    (Arch.AARCH64, "2.31", Backend.AI_EDGE_LITERT,
     "ai-edge-litert does not run on glibc 2.31 for aarch64; build with --backend tflite_runtime there, "
     "or for a newer --glibc."),
    (Arch.AARCH64, "2.28", None, "No aarch64 target runs on glibc 2.28: the oldest, 'aarch64-glibc2.31', "
     "needs glibc >= 2.31."),
    (Arch.AARCH64, "bookworm", None, "--glibc 'bookworm' is not a glibc version. Pass it as MAJOR.MINOR, "
     "e.g. --glibc 2.31 (ldd --version on the device prints it)."),
    (Arch.X86_64, "2.31", None, "--glibc is for targets built in a Debian root (aarch64, armv7l); a x86_64 binary "
     "is built on this machine and needs this machine's glibc or newer."),
])
def test_what_no_target_fits_says(arch: Arch, glibc: str | None, backend: Backend | None, message: str) -> None:
    with pytest.raises(TargetError) as info:
        select_target(arch, glibc=glibc, backend=backend)
    assert str(info.value) == message


def test_unknown_target_lists_them() -> None:
    with pytest.raises(TargetError, match=r"^Unknown target 'pi5'\. Available: 'x86_64', "):
        target_named("pi5")


def test_records_are_values() -> None:
    target = target_named("aarch64")
    assert isinstance(target, Target) and target.glibc_tuple == (2, 35)
    with pytest.raises(AttributeError):
        target.backend = Backend.TFLITE_RUNTIME  # type: ignore[misc]
