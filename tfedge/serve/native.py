"""What the native build must keep for ``tfedge serve`` (``build_native.py --serve``).

Today the native build leaves out ``http``, ``socketserver``, ``email`` and more to save size;
a binary that serves needs the standard-library packages below beside what ``tfedge``
itself imports. tests/serve checks the list against what ``import tfedge.serve.app``
really brings, so it cannot drift.
"""

from __future__ import annotations

__all__ = ["OPTIONAL_STDLIB", "STDLIB_PACKAGES"]

#: Top-level standard-library packages serve imports (http.server and what it pulls: email
#: for header parsing, html, mimetypes, calendar for dates; shlex for the systemd unit;
#: traceback for the log of a 500).
STDLIB_PACKAGES = ("calendar", "email", "html", "http", "mimetypes", "quopri", "shlex", "socket", "socketserver",
                   "string", "traceback")

#: Imported when present, not needed: ``http.client`` falls back without ``ssl`` (no HTTPS here).
OPTIONAL_STDLIB = ("ssl",)
