"""``python -m tfedge.native``: the same as ``tfedge-build``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
