"""Build the tfedge command, or an app that imports tfedge, into one native executable.

The thin entry point the repository's layout names: the build itself is the package's
``tfedge.native`` (installed by ``pip install "tfedge[native]"`` as the ``tfedge-build``
command), which compiles the installed tfedge. See docs/native.md.

    python build_native.py                          # this machine's arch, the fastest backend
    python build_native.py --model net=model.tflite # ... with a model inside
    python build_native.py --arch aarch64           # 64-bit Pi OS bookworm (glibc >= 2.36)
    python build_native.py --arch aarch64 --glibc 2.31   # Pi OS bullseye, JetPack 5
    python build_native.py --arch armv7l            # 32-bit Raspberry Pi OS
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

if __name__ == "__main__":
    # Python put this checkout first on sys.path; the build compiles the installed tfedge
    # (an editable install's own entry for the checkout, later on the path, stays).
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    if find_spec("tfedge") is None:
        print(f'build_native: error: tfedge is not installed for {sys.executable}. Install it: '
              'pip install "tfedge[native]" (in a checkout: pip install -e ".[native]").', file=sys.stderr)
        raise SystemExit(1)
    from tfedge.native.cli import main

    raise SystemExit(main())
