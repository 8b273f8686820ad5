"""``tfedge serve``: models as a local HTTP service (KServe v2 / Triton, and DeepStack's detection).

Example::

    from tfedge.serve import serve

    serve({"faces": "face_detection_short_range.tflite"}, port=8000, detect="faces")

Standard library and numpy only (Pillow for DeepStack's images). Parsing is in
:mod:`~tfedge.serve.protocol` and :mod:`~tfedge.serve.multipart`, the endpoints in
:mod:`~tfedge.serve.handlers`, HTTP in :mod:`~tfedge.serve.server`.

The names below load on first use: ``tfedge --help`` (which registers the ``serve``
command from :mod:`tfedge.serve.cli`) does not pay for ``http.server``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import build_service, serve
    from .handlers import Model, Response, Service
    from .protocol import RequestError
    from .server import Server
    from .systemd import systemd_unit, write_unit

__all__ = ["Model", "RequestError", "Response", "Server", "Service", "build_service", "serve", "systemd_unit",
           "write_unit"]

_HOMES = {"build_service": "app", "serve": "app", "Model": "handlers", "Response": "handlers",
          "Service": "handlers", "RequestError": "protocol", "Server": "server", "systemd_unit": "systemd",
          "write_unit": "systemd"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tfedge.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
