"""What several test folders share: the test models and the installed backends.

A module of its own, not conftest.py: each test folder may have a conftest, and
``from conftest import`` would take whichever was imported last.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest

#: The LiteRT test models kept in the repository (see its README.md).
MODELS = Path(__file__).resolve().parent / "data" / "litert-testdata"

#: Installed backends that tfedge refuses here, with its reason (tflite-runtime under numpy 2).
UNUSABLE: dict[str, str] = {}


def _working_backends() -> list[str]:
    """The runtime backends that are installed and that tfedge can use here."""
    from tfedge import _backend
    from tfedge.errors import BackendNotFoundError

    found = []
    for name in ("ai_edge_litert", "tflite_runtime"):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            _backend.get_backend(name)
        except BackendNotFoundError as exc:
            UNUSABLE[name] = str(exc)
            continue
        found.append(name)
    return found


#: The backends tests run on: the two runtime backends that are installed and work here.
BACKENDS = _working_backends()


def needs_backend(name: str) -> pytest.MarkDecorator:
    """Skip the test, saying why, unless backend ``name`` works here."""
    if name in BACKENDS:
        return pytest.mark.skipif(False, reason="")
    why = f"installed but unusable: {UNUSABLE[name]}" if name in UNUSABLE else "not installed"
    return pytest.mark.skip(reason=f"needs {name}, which is {why}")


def model_path(name: str) -> Path:
    """Path of a test model; fails the test, naming the file, when it is not there."""
    path = MODELS / name
    assert path.is_file(), f"{path} is missing from the checkout"
    return path


def in_ci() -> bool:
    """True when running under CI (which sets CI=true)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class ServerProcess:
    """A ``tfedge serve`` child (``python -m tfedge serve``, or ``command``: a native binary) on a free
    loopback port; ``url`` once it listens, its log in ``log``; ``timeout`` s to start, half that to stop."""

    def __init__(self, args: List[str], log: Path, env: Optional[dict] = None, *,
                 command: Optional[List[str]] = None, timeout: float = 60) -> None:
        self.log = log
        self._out = open(log, "wb")
        # The installed tfedge, never the checkout: no PYTHONPATH.
        child_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        child_env.update(env or {})
        command = command or [sys.executable, "-m", "tfedge", "serve"]
        self.proc = subprocess.Popen([*command, *args, "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=self._out, env=child_env, cwd=log.parent)
        deadline = time.monotonic() + timeout
        self._timeout = timeout
        while True:
            match = re.search(r"on (http://127\.0\.0\.1:\d+) ", self.text())
            if match:
                self.url = match.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start:\n{self.text()}")
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self._timeout / 2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode
