"""Shared pieces of the native-build tests: build_native.py importable, the test models."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO.parent / "shared" / "models" / "litert-testdata"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
