"""Table 5: the native binary (built by ``benchmarks/packaging.py`` once it exists)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tables import Context, Section

TITLE = "Packaging: the native binary"
_SCRIPT = Path(__file__).resolve().parents[1] / "packaging.py"


def table(ctx: Context) -> Section:
    """``table(ctx)`` of benchmarks/packaging.py when it exists, else a one-line note."""
    if not _SCRIPT.is_file():
        return Section(TITLE, "Not built yet: `benchmarks/packaging.py` does not exist in this checkout.")
    # Loaded by path under another name: `import packaging` must stay the PyPI library
    # (matplotlib and setuptools import it).
    spec = importlib.util.spec_from_file_location("tfedge_bench_packaging", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "table"):
        return Section(TITLE, "Not included yet: `benchmarks/packaging.py` has no `table(ctx)` to call.")
    return module.table(ctx)
