"""Putting a server together: models into pools, pools into a Service, a Service on a port."""

from __future__ import annotations

import os
import sys
import threading
from importlib.util import find_spec
from typing import Any, Callable, Mapping, Optional

from .._model import ModelSource
from ..pool import InterpreterPool
from ..tasks.classify import Labels, read_labels
from .handlers import Model, Service, check_detector
from .protocol import RequestError
from .server import Server

__all__ = ["API_KEY_ENV", "build_service", "reuse_freed_memory", "serve"]

#: Environment variable holding the API key when --api-key is not given.
API_KEY_ENV = "TFEDGE_API_KEY"

# glibc's mallopt() parameters (malloc.h) and the values serve() sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 16 << 20  # the largest glibc takes on 32-bit targets too
_TRIM_THRESHOLD = 64 << 20


def reuse_freed_memory() -> bool:
    """Make glibc keep freed memory for the next request instead of giving it back at once.

    By default glibc unmaps a freed block of more than about 128 KiB-1 MiB, or trims the
    heap's free top once it exceeds twice that, so every request's buffers (a decoded
    image, its resized copy, a model's outputs) fault in fresh zeroed pages again: on the
    DeepStack path that was about 2 ms of kernel time per request of 7 ms of CPU in all
    (a 512x512 JPEG, x86-64; ``benchmarks/serve.py``). With blocks below 16 MiB taken from the heap and up to 64 MiB of free heap
    kept, a steady stream of requests reuses the same pages; the resident memory is the
    busiest moment's working set, and stays flat after it.

    Process-wide, so called by :func:`serve` (a process that only serves), not by
    :class:`Server` (which an app may embed). Does nothing but on glibc.

    Returns:
        True when the settings took effect.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False  # musl, or not Linux
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, ValueError, OSError, ImportError):  # no confstr name, no ctypes, no mallopt
        return False
    # The mmap threshold first: setting either turns off glibc's own adjustment of both.
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def build_service(models: Mapping[str, ModelSource], *, workers: Optional[int] = None, queue: int = 16,
                  detect: Optional[str] = None, labels: Labels = None, api_key: Optional[str] = None,
                  **interpreter_options: Any) -> Service:
    """Load every model on an InterpreterPool of ``workers`` and wrap them in a :class:`Service`.

    Raises:
        ModelError, BackendNotFoundError, DelegateError: a model does not load.
        RequestError: ``detect`` names no model in ``models``.
    """
    check_detector(detect, models)  # before the slow part
    if detect is not None and find_spec("PIL") is None:
        # Refused at start, not with a 500 on every request (a binary built without Pillow: armv7l).
        raise RequestError(f"--detect {detect!r} needs Pillow to decode DeepStack's images, and it is not "
                           'installed: pip install "tfedge[draw]" (a native binary: build it with tfedge-build '
                           "--serve ... --detect NAME, which carries Pillow on x86_64 and aarch64).")
    served = {name: Model(name, InterpreterPool(source, size=workers, **interpreter_options), queue)
              for name, source in models.items()}
    names = read_labels(labels)
    return Service(served, detect=detect, labels=names, api_key=api_key)


def serve(models: Mapping[str, ModelSource], *, host: str = "127.0.0.1", port: int = 8000,
          workers: Optional[int] = None, queue: int = 16, detect: Optional[str] = None, labels: Labels = None,
          api_key: Optional[str] = None, max_body: int = 64 * 1024 * 1024, quiet: bool = False,
          on_ready: Optional[Callable[[Server], None]] = None, **interpreter_options: Any) -> None:
    """Serve ``models`` ({name: path or bytes}) over HTTP until SIGTERM/SIGINT (or ``on_ready``'s stop()).

    Args:
        models: The models by the name clients use (``/v2/models/NAME``).
        host: The address to bind; 127.0.0.1 answers this machine only, 0.0.0.0 everyone.
        port: The TCP port (0: any free one; ``on_ready`` sees which).
        workers: Interpreters per model (default: the usable CPU cores).
        queue: Requests per model that may wait for a worker; beyond, 503 with Retry-After.
        detect: The model that answers DeepStack's ``POST /v1/vision/detection``.
        labels: The detector's labels (default: its metadata's).
        api_key: Require this key (``Authorization: Bearer KEY``, ``X-API-Key`` or DeepStack's
            ``api_key`` field) on every request but the health checks.
        max_body: The largest request body, bytes (413 beyond).
        quiet: No access log (the line saying where it listens stays).
        on_ready: Called with the Server once it listens (from the serving thread).
        **interpreter_options: For each :class:`~tfedge.Interpreter` (``backend``, ``delegates``, ...).

    The process's allocator is tuned for serving first (:func:`reuse_freed_memory`), and the
    interpreters load with ``quiet=True`` (the line each load prints is dropped).
    """
    reuse_freed_memory()
    # quiet: each load's "Created TensorFlow Lite XNNPACK delegate" line is dropped; the rest
    # of what the backends print goes to stderr as it comes.
    service = build_service(models, workers=workers, queue=queue, detect=detect, labels=labels, api_key=api_key,
                            quiet=True, **interpreter_options)
    server = Server(service, host, port, max_body=max_body, quiet=quiet)
    if threading.current_thread() is threading.main_thread():
        server.install_signal_handlers()
    bound, at = server.address  # one line even with quiet (which silences the access log)
    sys.stderr.write(f"tfedge serve: {', '.join(service.models)} on http://{bound}:{at} "
                     f"({next(iter(service.models.values())).pool.size} workers per model)\n")
    sys.stderr.flush()
    if on_ready is not None:
        on_ready(server)
    server.serve_forever()

