"""What the serve tests share: the models, and ``tfedge serve`` subprocesses on free loopback ports.

A module of its own, not conftest.py (see tests/support.py): ``from conftest import`` would take
whichever folder's conftest was imported last."""

from __future__ import annotations

from pathlib import Path

from support import ServerProcess  # noqa: F401 - the serve tests import it from here

DATA = Path(__file__).resolve().parents[1] / "data"
ADD = DATA / "litert-testdata" / "add.tflite"
ADD_Q = DATA / "litert-testdata" / "add_quantized.tflite"
MULTI = DATA / "litert-testdata" / "multi_add.tflite"
FACES = DATA / "mediapipe" / "face_detection_short_range.tflite"


