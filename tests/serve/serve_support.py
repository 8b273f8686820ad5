"""What the serve tests share: the models, and ``tfedge serve`` subprocesses on free loopback ports.

A module of its own, not conftest.py (see tests/support.py): ``from conftest import`` would take
whichever folder's conftest was imported last."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

DATA = Path(__file__).resolve().parents[1] / "data"
ADD = DATA / "litert-testdata" / "add.tflite"
ADD_Q = DATA / "litert-testdata" / "add_quantized.tflite"
MULTI = DATA / "litert-testdata" / "multi_add.tflite"
FACES = DATA / "mediapipe" / "face_detection_short_range.tflite"


class ServerProcess:
    """A ``python -m tfedge serve`` child; ``url`` once it listens, its log in ``log``."""

    def __init__(self, args: List[str], log: Path, env: Optional[dict] = None) -> None:
        self.log = log
        self._out = open(log, "wb")
        # The installed tfedge, never the checkout: no PYTHONPATH.
        child_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        child_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "tfedge", "serve", *args, "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=self._out, env=child_env, cwd=log.parent)
        deadline = time.monotonic() + 60
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
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode
