"""The names the rest of tfedge (and code written against older tfedge) import from here.

The backends now live in :mod:`tfedge.backends`, one module per backend; this module only
re-exports that package's public names (``BACKENDS``, ``BACKEND_ERRORS``, ``ENV_VAR``,
``Backend``, ``Runtime``, ``Schema``, ``Stage``, ``available_backends``, ``choose``,
``get_backend``, ``mapped``, ``translate``, ``unsupported_features``) and
``_install_hint``, which tests call.
"""

from __future__ import annotations

from . import backends as _backends
from .backends import *  # noqa: F403 - exactly tfedge.backends.__all__
from .backends._choose import _install_hint

__all__ = [*_backends.__all__, "_install_hint"]
