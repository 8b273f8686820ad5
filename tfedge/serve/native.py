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

__all__ = ["OPTIONAL_STDLIB", "PILLOW_KEPT", "PILLOW_LEFT_OUT", "PILLOW_STDLIB", "STDLIB_PACKAGES", "main",
           "pillow_left_out"]

#: Top-level standard-library packages serve imports (http.server and what it pulls: email
#: for header parsing, with base64 and quopri, html, mimetypes, calendar for dates; hmac to
#: compare API keys; shlex for the systemd unit; traceback for the log of a 500). Not
#: unicodedata: the server skips http.server's lookup of the host's name, whose IDNA codec
#: needs it. (numpy 1.26 imports base64 and hmac itself; numpy 2 does not.)
STDLIB_PACKAGES = ("base64", "calendar", "email", "hmac", "html", "http", "mimetypes", "quopri", "shlex", "socket",
                   "socketserver", "string", "traceback")

#: Imported when present, not needed: ``http.client`` falls back without ``ssl`` (no HTTPS here).
OPTIONAL_STDLIB = ("ssl",)

#: The Pillow image plugins a serving binary keeps: DeepStack's JPEGs (MPO is a phone's JPEG
#: with more frames; JPEG's EXIF reader uses TIFF's) and PNG. ``Image.open`` imports the other
#: plugins by name and skips those that fail to import, so another format is an image Pillow
#: cannot identify: a 400, as a broken file is.
PILLOW_KEPT = ("JpegImagePlugin", "MpoImagePlugin", "PngImagePlugin", "TiffImagePlugin")

#: Pillow's modules beside the plugins that decoding never imports; each extension module
#: brings its libraries from ``pillow.libs`` (FreeType and HarfBuzz, LittleCMS, libwebp,
#: libavif), and Nuitka would take them all (it includes every plugin ``Image.init`` names).
PILLOW_LEFT_OUT = ("PIL.ImageCms", "PIL._imagingcms", "PIL.ImageFont", "PIL._imagingft", "PIL.ImageDraw",
                   "PIL.ImageDraw2", "PIL.ImageMath", "PIL._imagingmath", "PIL.ImageMorph", "PIL._imagingmorph",
                   "PIL.ImageTk", "PIL._imagingtk", "PIL._tkinter_finder", "PIL.ImageQt", "PIL.ImageShow",
                   "PIL.ImageGrab", "PIL.features", "PIL._webp", "PIL._avif")

#: Standard-library modules the kept plugins import that the default build leaves out
#: (PNG's and TIFF's ``fractions`` imports ``decimal``, whose C module this is).
PILLOW_STDLIB = ("_decimal",)


def pillow_left_out() -> tuple[str, ...]:
    """Every Pillow module a serving binary leaves out: the image plugins but :data:`PILLOW_KEPT`, and :data:`PILLOW_LEFT_OUT`.

    Asked of the Pillow in the build venv (its plugin list changes between versions).
    """
    from PIL import Image

    return (*(f"PIL.{name}" for name in Image._plugins if name not in PILLOW_KEPT), *PILLOW_LEFT_OUT)


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
