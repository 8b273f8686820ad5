"""What ``pip install tfedge`` brings, per platform: pyproject's dependency markers, evaluated.

Checked against PyPI when written (``pip install --dry-run --only-binary=:all: --platform
manylinux2014_armv7l --python-version X tflite-runtime``): tflite-runtime 2.13.0 has armv7l
wheels for cp38-cp310, 2.14.0 has none, and ai-edge-litert has no armv7l wheels at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import MODELS

packaging_requirements = pytest.importorskip("packaging.requirements")
from packaging.specifiers import SpecifierSet  # noqa: E402 - packaging is there (checked above)
try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _installed(machine: str, python: str, system: str = "Linux") -> dict[str, str]:
    """{distribution: combined specifier} that the dependencies give on this platform."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    environment = {
        "platform_machine": machine,
        "platform_system": system,
        "sys_platform": {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}[system],
        "os_name": "nt" if system == "Windows" else "posix",
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    found: dict[str, SpecifierSet] = {}
    for line in dependencies:
        req = packaging_requirements.Requirement(line)
        if req.marker is None or req.marker.evaluate(environment):
            found[req.name] = found.get(req.name, SpecifierSet()) & req.specifier
    return {name: str(specs) for name, specs in found.items()}


@pytest.mark.parametrize("python", ["3.9", "3.10"])
@pytest.mark.parametrize("machine", ["armv7l", "armv8l"])
def test_32bit_arm_gets_tflite_runtime_2_13_and_numpy_1(machine: str, python: str) -> None:
    assert _installed(machine, python) == {"numpy": "<2,>=1.21", "tflite-runtime": "<2.14,>=2.13"}


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_32bit_arm_without_wheels_gets_no_backend(python: str) -> None:
    # Raspberry Pi OS bookworm 32-bit (Python 3.11): Interpreter() then points to the native binary.
    assert _installed("armv7l", python) == {"numpy": ">=1.21"}


@pytest.mark.parametrize("machine, system", [("x86_64", "Linux"), ("aarch64", "Linux"), ("arm64", "Darwin"),
                                             ("AMD64", "Windows")])
def test_python_3_14_gets_ai_edge_litert(machine: str, system: str) -> None:
    # ai-edge-litert 2.3.0 publishes cp314 wheels there (scripts/check_package.py asks pip for each).
    assert _installed(machine, "3.14", system=system) == {"numpy": ">=1.21", "ai-edge-litert": ">=1.2"}


def test_64bit_platforms_keep_their_backends() -> None:
    assert _installed("aarch64", "3.9") == {"numpy": "<2,>=1.21", "tflite-runtime": ">=2.13"}
    assert _installed("x86_64", "3.9") == {"numpy": "<2,>=1.21", "tflite-runtime": ">=2.13"}
    assert _installed("aarch64", "3.10") == {"numpy": ">=1.21", "ai-edge-litert": ">=1.2"}
    assert _installed("x86_64", "3.11") == {"numpy": ">=1.21", "ai-edge-litert": ">=1.2"}
    assert _installed("arm64", "3.12", system="Darwin") == {"numpy": ">=1.21", "ai-edge-litert": ">=1.2"}
    assert _installed("AMD64", "3.11", system="Windows") == {"numpy": ">=1.21", "ai-edge-litert": ">=1.2"}


def test_32bit_arm_without_a_backend_points_to_the_native_binary(tmp_path: Path) -> None:
    """Pi OS bookworm 32-bit: ``pip install tfedge`` brings no backend; Interpreter() says what to do."""
    script = tmp_path / "arm32.py"
    script.write_text(
        "import platform, sys\n"
        "platform.machine = lambda: 'armv7l'\n"
        "sys.modules['ai_edge_litert'] = sys.modules['tflite_runtime'] = None  # neither installs there\n"
        "import tfedge\n"
        "try:\n"
        "    tfedge.Interpreter(sys.argv[1])\n"
        "except tfedge.errors.BackendNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    env = dict(os.environ)
    env.pop("TFEDGE_BACKEND", None)
    out = subprocess.run([sys.executable, str(script), str(MODELS / "add.tflite")], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.version_info >= (3, 11):
        assert out.startswith(
            f"No TFLite backend found. On 32-bit ARM no backend has wheels for Python {version}: use tfedge's "
            "native binary (tfedge-build --arch armv7l, on any Linux machine with qemu-user), or "
            'Python 3.9/3.10 with pip install "tfedge[tflite]". Backend '
        ), out
    else:
        assert out.startswith(
            'No TFLite backend found. Install one: pip install "tfedge[tflite]" (tflite-runtime 2.13, the only '
            "backend with 32-bit ARM wheels), or use tfedge's native binary (tfedge-build --arch armv7l). "
        ), out
