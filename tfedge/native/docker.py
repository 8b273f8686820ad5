"""The Docker route: ``dist/docker/`` with a Dockerfile and one binary per architecture."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .._files import write_atomically
from .._version import __version__
from .config import BuildConfig

__all__ = ["DOCKER_BASE", "DOCKER_UID", "dockerfile_text", "write_docker_context"]

#: Docker base image: Debian 11 has glibc 2.31 (the floor of a bullseye-built binary)
#: and libstdc++, which the TFLite libraries need. (A bookworm-built aarch64 binary needs a
#: bookworm base: debian:12-slim.)
DOCKER_BASE = "debian:11.11-slim"
DOCKER_UID = 65532


def dockerfile_text() -> str:
    """A Dockerfile for ``dist/docker/``: the binary for ``$TARGETARCH`` on a slim Debian 11."""
    return f"""\
# syntax=docker/dockerfile:1
# Built by build_native.py --docker. One context serves every architecture:
#   docker buildx build --platform linux/amd64,linux/arm64 -t tfedge dist/docker
# (linux/arm/v7 too, for a context with the armv7l binary: Docker calls that arch "arm")
FROM {DOCKER_BASE}
ARG TARGETARCH
LABEL org.opencontainers.image.title="tfedge" \\
      org.opencontainers.image.description="tfedge runtime as one native executable" \\
      org.opencontainers.image.version="{__version__}" \\
      org.opencontainers.image.licenses="Apache-2.0"
COPY --chmod=0755 tfedge-${{TARGETARCH}} /usr/local/bin/tfedge
# The binary unpacks its payload once into $XDG_CACHE_HOME; doing it here bakes the
# unpacked files into the image, so containers start without unpacking.
ENV XDG_CACHE_HOME=/var/cache/tfedge
RUN mkdir -p /var/cache/tfedge && chown {DOCKER_UID}:{DOCKER_UID} /var/cache/tfedge
USER {DOCKER_UID}:{DOCKER_UID}
RUN ["/usr/local/bin/tfedge", "--version"]
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/tfedge"]
CMD ["--help"]
"""


def write_docker_context(binary: Path, config: BuildConfig) -> Path:
    """Add ``binary`` to ``dist/docker/`` as ``tfedge-<Docker arch>`` and (re)write its Dockerfile."""
    context = config.dist / "docker"
    context.mkdir(parents=True, exist_ok=True)
    arch = config.target.arch.docker
    staged = context / f".tfedge-{arch}.tmp"
    shutil.copy2(binary, staged)
    os.replace(staged, context / f"tfedge-{arch}")
    write_atomically(context / "Dockerfile", dockerfile_text().encode())
    write_atomically(context / ".dockerignore", b"*\n!Dockerfile\n!tfedge-amd64\n!tfedge-arm64\n!tfedge-arm\n")
    return context
