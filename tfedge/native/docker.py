"""The Docker route: ``dist/docker/`` with a Dockerfile and one binary per architecture."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from .._files import write_atomically
from .._version import __version__
from .config import BuildConfig, BuildError

__all__ = ["DEVICE_LIB_PACKAGES", "DOCKER_BASES", "DOCKER_UID", "base_for", "check_docker_context", "dockerfile_text", "write_docker_context"]

#: Debian's slim images by the glibc they carry, oldest first. The base is the oldest that
#: runs every binary in the context: a binary needs the glibc of the system it was built on
#: (a Debian root for ARM, this machine for x86_64) or newer. Each has libstdc++, which the
#: TFLite libraries need.
DOCKER_BASES: Tuple[Tuple[Tuple[int, int], str], ...] = (
    ((2, 31), "debian:11-slim"), ((2, 36), "debian:12-slim"), ((2, 41), "debian:13-slim"))
DOCKER_UID = 65532
#: The Debian package of each library a target takes from the device (Target.device_libs),
#: which a slim image lacks.
DEVICE_LIB_PACKAGES = {"libexpat.so.1": "libexpat1"}
_BINARIES = "binaries.json"  # what each binary in the context needs (Docker ignores it: .dockerignore)


def base_for(glibc: Tuple[int, int]) -> str:
    """The oldest Debian slim image whose glibc is ``glibc`` or newer.

    Raises:
        BuildError: no Debian image has it (the binary was built on a newer system).
    """
    for have, image in DOCKER_BASES:
        if have >= glibc:
            return image
    newest, image = DOCKER_BASES[-1]
    raise BuildError(f"The binary needs glibc >= {glibc[0]}.{glibc[1]}, newer than {image}'s "
                     f"{newest[0]}.{newest[1]}: build it on an older system for --docker.")


def dockerfile_text(base: str = DOCKER_BASES[0][1], *, port: int | None = None, packages: Sequence[str] = ()) -> str:
    """A Dockerfile for ``dist/docker/``: the binary for ``$TARGETARCH`` on ``base``.

    Args:
        base: The base image (see :func:`base_for`).
        port: For server binaries (``--serve``): the port they listen on, on every address
            of the container; None for a plain tfedge binary (its default command is ``--help``).
        packages: Debian packages to install: the libraries a binary takes from the system.
    """
    install = ""
    if packages:
        install = ("# The libraries the binaries take from the system (tfedge-build's target records say which);\n"
                   "# the base's current versions, as a device's would be.\n"
                   "# hadolint ignore=DL3008\n"
                   "RUN apt-get update && apt-get install -y --no-install-recommends "
                   f"{' '.join(sorted(packages))} && rm -rf /var/lib/apt/lists/*\n")
    if port is None:
        what, run = "tfedge runtime as one native executable", 'CMD ["--help"]'
    else:
        what = "tfedge serve (KServe v2 and DeepStack) as one native executable"
        run = (f"EXPOSE {port}\n# The server binary serves its embedded models by default; here on every address of\n"
               f'# the container (publish the port: docker run -p {port}:{port} ...).\nCMD ["--host", "0.0.0.0", "--port", "{port}"]')
    return f"""\
# syntax=docker/dockerfile:1
# Built by build_native.py --docker. One context serves every architecture:
#   docker buildx build --platform linux/amd64,linux/arm64 -t tfedge dist/docker
# (linux/arm/v7 too, for a context with the armv7l binary: Docker calls that arch "arm")
FROM {base}
ARG TARGETARCH
LABEL org.opencontainers.image.title="tfedge" \\
      org.opencontainers.image.description="{what}" \\
      org.opencontainers.image.version="{__version__}" \\
      org.opencontainers.image.licenses="Apache-2.0"
{install}COPY --chmod=0755 tfedge-${{TARGETARCH}} /usr/local/bin/tfedge
# The binary unpacks its payload once into $XDG_CACHE_HOME; doing it here bakes the
# unpacked files into the image, so containers start without unpacking.
ENV XDG_CACHE_HOME=/var/cache/tfedge
RUN mkdir -p /var/cache/tfedge && chown {DOCKER_UID}:{DOCKER_UID} /var/cache/tfedge
USER {DOCKER_UID}:{DOCKER_UID}
RUN ["/usr/local/bin/tfedge", "--version"]
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/tfedge"]
{run}
"""


def _glibc_of(config: BuildConfig) -> Tuple[int, int]:
    """The glibc a binary of ``config`` needs: its target's, or this machine's for a build here."""
    if config.target.glibc:
        return config.target.glibc_tuple
    major, _, minor = (platform.libc_ver()[1] or "2.31").partition(".")
    return int(major), int(minor or 0)


def check_docker_context(config: BuildConfig) -> Dict[str, Any]:
    """What the binaries ``dist/docker/`` already holds for other archs need, by Docker arch.

    Called before a build too, so that a context this build cannot join fails at once.

    Raises:
        BuildError: the context holds a server binary for one arch and a plain one (or one
            on another port) for another: one image runs one kind.
    """
    context = config.dist / "docker"
    arch = config.target.arch.docker
    record = context / _BINARIES
    try:
        held: Dict[str, Any] = json.loads(record.read_text()) if record.exists() else {}
    except ValueError:
        held = {}
    held = {a: v for a, v in held.items() if a != arch and (context / f"tfedge-{a}").exists()}
    port = config.port if config.serve else None
    others = {a: v.get("port") for a, v in held.items() if v.get("port") != port}
    if others:
        kinds = ", ".join(f"{a}: {_kind(p)}" for a, p in others.items())
        raise BuildError(f"{context} holds binaries of another kind ({kinds}) than this {arch} build ({_kind(port)}): "
                         "one image runs one kind. Build every arch the same way, or pass another --dist.")
    return held


def _kind(port: Any) -> str:
    return f"a server on port {port}" if port else "a plain tfedge binary"


def write_docker_context(binary: Path, config: BuildConfig) -> Path:
    """Add ``binary`` to ``dist/docker/`` as ``tfedge-<Docker arch>`` and (re)write its Dockerfile.

    The Dockerfile fits every binary the context holds: the base that the newest glibc among
    them needs, and a server's port and command if they serve.

    Raises:
        BuildError: see :func:`check_docker_context`; or no Debian image has the glibc a
            binary needs.
    """
    held = check_docker_context(config)
    context = config.dist / "docker"
    context.mkdir(parents=True, exist_ok=True)
    arch = config.target.arch.docker
    port = config.port if config.serve else None
    held[arch] = {"glibc": list(_glibc_of(config)), "port": port,
                  "packages": [DEVICE_LIB_PACKAGES[lib] for lib in config.target.device_libs]}
    base = base_for(max((int(v["glibc"][0]), int(v["glibc"][1])) for v in held.values()))
    packages = sorted({p for v in held.values() for p in v.get("packages", ())})
    staged = context / f".tfedge-{arch}.tmp"
    shutil.copy2(binary, staged)
    os.replace(staged, context / f"tfedge-{arch}")
    write_atomically(context / _BINARIES, json.dumps(held, indent=2, sort_keys=True).encode())
    write_atomically(context / "Dockerfile", dockerfile_text(base, port=port, packages=packages).encode())
    write_atomically(context / ".dockerignore", b"*\n!Dockerfile\n!tfedge-amd64\n!tfedge-arm64\n!tfedge-arm\n")
    return context
