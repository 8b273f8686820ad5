"""``python -m tfedge.converters`` runs ``tfedge-convert``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
