"""The native build's side of ``tfedge serve``: what it must keep, and a serving binary's entry.

``tfedge-build --serve [NAME=]MODEL ...`` builds a binary whose default command is
``tfedge serve`` with its embedded models (:func:`main`). The default build leaves out
``http``, ``socketserver``, ``email`` and more to save size; a binary that serves keeps the
standard-library packages below beside what ``tfedge`` itself imports. tests/serve checks
the list against what ``import tfedge.serve.app`` really brings, so it cannot drift.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

__all__ = ["OPTIONAL_STDLIB", "STDLIB_PACKAGES", "main"]

#: Top-level standard-library packages serve imports (http.server and what it pulls: email
#: for header parsing, html, mimetypes, calendar for dates; shlex for the systemd unit;
#: traceback for the log of a 500). Not unicodedata: the server skips http.server's lookup
#: of the host's name, whose IDNA codec needs it.
STDLIB_PACKAGES = ("calendar", "email", "html", "http", "mimetypes", "quopri", "shlex", "socket", "socketserver",
                   "string", "traceback")

#: Imported when present, not needed: ``http.client`` falls back without ``ssl`` (no HTTPS here).
OPTIONAL_STDLIB = ("ssl",)

#: What the ``tfedge`` command takes before a subcommand.
_TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")


def _commands() -> frozenset[str]:
    """The subcommands of ``tfedge`` (info, run, serve, ...)."""
    import argparse

    from ..cli import build_parser

    return frozenset(name for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
                     for name in action.choices)


def main(argv: Optional[Sequence[str]] = None, serve_args: Sequence[str] = ()) -> int:
    """The entry of a binary built with ``tfedge-build --serve``: ``tfedge serve`` unless a command is named.

    ``BINARY`` and ``BINARY --port 9000 --workers 2`` serve: ``serve``, then ``serve_args``
    (the build's models, ``embedded:NAME``, and options such as ``--detect NAME``), then
    the arguments given. ``BINARY info``, ``BINARY run ...``, ``--version`` and ``--help``
    are tfedge's own commands and options, as in every tfedge binary.

    Returns:
        The exit status of the command.
    """
    from ..cli import main as tfedge_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in _TOP_LEVEL_OPTIONS and args[0] not in _commands()):
        args = ["serve", *serve_args, *args]
    return tfedge_main(args)
