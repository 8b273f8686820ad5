"""A Nuitka user plugin (``--user-plugin=`` this file): leaves stdlib extension modules out of the payload, strips others.

Nuitka puts every encoding into a standalone build, and with them the CJK codecs'
extension modules (0.5 MB compressed, 1.3 MB that each warm start checks), whatever
``--nofollow-import-to`` or ``--noinclude-dlls`` say. This plugin deletes the files named
in ``$TFEDGE_NATIVE_DROP`` (module names, comma-separated) from the standalone folder
before Nuitka packs it into one file; importing one of them then fails, so its codec is
unknown, as in a Python built without it. It strips the symbols of those named in
``$TFEDGE_NATIVE_STRIP`` (``_decimal`` in a binary with Pillow: 0.58 MB compressed as pyenv
builds it, 0.12 MB stripped). Loaded by Nuitka only, never by tfedge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from nuitka.plugins.PluginBase import NuitkaPluginBase  # type: ignore[import-not-found, import-untyped, unused-ignore]

#: The environment variable with the extension modules to leave out.
DROP_ENV = "TFEDGE_NATIVE_DROP"
#: The environment variable with the extension modules to strip of their symbols (Nuitka
#: copies the stdlib's as the Python install has them: pyenv's keep their symbol tables).
STRIP_ENV = "TFEDGE_NATIVE_STRIP"


class NuitkaPluginTfedgeDrop(NuitkaPluginBase):  # type: ignore[misc, unused-ignore]
    """Deletes ``$TFEDGE_NATIVE_DROP``'s extension modules from the distribution folder."""

    plugin_name = "tfedge-drop"
    plugin_desc = "Leave the named stdlib extension modules out of the payload."

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def onStandaloneDistributionFinished(self, dist_dir: str) -> None:
        for name in filter(None, os.environ.get(DROP_ENV, "").split(",")):
            for path in Path(dist_dir).glob(f"{name}.*so"):
                path.unlink()
                self.info(f"left out {path.name} (tfedge's EXCLUDED_MODULES)")
        strip = shutil.which("strip")
        for name in filter(None, os.environ.get(STRIP_ENV, "").split(",")):
            for path in Path(dist_dir).glob(f"{name}.*so"):
                if strip is not None:
                    subprocess.run([strip, "--strip-unneeded", str(path)], check=True, capture_output=True)
                    self.info(f"stripped {path.name}")
