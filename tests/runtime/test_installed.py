"""The package under test is the installed one: what the wheel leaves out, a test must miss."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import tfedge

CHECKOUT = Path(__file__).resolve().parents[2]


def test_tfedge_comes_from_the_environment_not_the_checkout() -> None:
    where = Path(tfedge.__file__).resolve()
    if os.environ.get("TFEDGE_TEST_CHECKOUT") == "1":  # an editable install, asked for by name
        return
    assert Path(sys.prefix).resolve() in where.parents, where
    assert CHECKOUT / "tfedge" not in where.parents, where  # .venv may live in the checkout; its source may not


def test_every_subpackage_of_the_source_is_importable() -> None:
    import importlib

    for init in sorted((CHECKOUT / "tfedge").rglob("__init__.py")):
        name = ".".join(init.parent.relative_to(CHECKOUT).parts)
        assert importlib.import_module(name).__file__ is not None, name
