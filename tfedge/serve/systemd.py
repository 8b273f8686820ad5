"""A systemd unit that runs the server as a service: restarted on failure, a dedicated user.

The native build (``build_native.py --serve``) calls :func:`write_unit` beside the binary;
the unit runs the binary's default command, ``serve`` with its embedded models.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional, Sequence

from .._files import write_atomically

__all__ = ["systemd_unit", "write_unit"]


def systemd_unit(exec_path: str, args: Sequence[str] = (), *, port: int = 8000, host: str = "127.0.0.1",
                 user: str = "tfedge", description: str = "tfedge model server") -> str:
    """The text of a ``tfedge.service`` unit running ``exec_path serve ARGS --host HOST --port PORT``.

    Args:
        exec_path: Absolute path of the ``tfedge`` binary (or of a ``tfedge`` command) on the device.
        args: More arguments after ``serve`` (models, ``--detect NAME``, ``--workers N``).
        port: The port to listen on.
        host: The address to bind: 127.0.0.1 (this machine only) unless the NVR is elsewhere.
        user: The dedicated system user it runs as (``DynamicUser`` creates it).
        description: The unit's description.

    Raises:
        ValueError: ``exec_path`` is not absolute (systemd needs an absolute path).
    """
    if not exec_path.startswith("/"):
        raise ValueError(f"exec_path must be an absolute path (systemd requires one), got {exec_path!r}.")
    command = " ".join(shlex.quote(a) for a in (exec_path, "serve", *args, "--host", host, "--port", str(port)))
    return f"""[Unit]
Description={description} on {host}:{port}
After=network-online.target
Wants=network-online.target

[Service]
ExecStart={command}
# Stop: SIGTERM lets the requests in flight finish, then the server exits 0.
KillSignal=SIGTERM
TimeoutStopSec=40
Restart=on-failure
RestartSec=2
User={user}
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
# The only writable folder: a native binary unpacks itself there once (tfedge's caches go there too).
CacheDirectory=tfedge
Environment=XDG_CACHE_HOME=%C/tfedge

[Install]
WantedBy=multi-user.target
"""


def write_unit(binary: Path, args: Sequence[str] = (), *, port: int = 8000, host: str = "127.0.0.1",
               install_path: Optional[str] = None, user: str = "tfedge") -> Path:
    """Write ``<binary>.service`` beside ``binary`` (atomically) and return its path.

    ``install_path`` is where the binary will live on the device (default:
    ``/usr/local/bin/<binary name>``).
    """
    binary = Path(binary)
    unit = systemd_unit(install_path or f"/usr/local/bin/{binary.name}", args, port=port, host=host, user=user)
    target = binary.with_name(binary.name + ".service")
    write_atomically(target, unit.encode())
    return target
