"""The one interface every backend module implements, and what a backend implements of the schema.

A backend module (``litert.py``, ``tflite.py``, ``tf_lite.py``) has a ``NAME``, whether
the automatic choice may take it (``AUTOMATIC``), ``problem()`` (why it cannot work in
this process although installed, or None) and ``load()``, which imports it and returns
a :class:`Backend`. A :class:`Backend` opens a model as a runtime object (for the three
with TFLite's Python ``Interpreter`` API, :class:`~.interpreter_api.Runtime`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..verify import TENSOR_TYPE_NAMES

if TYPE_CHECKING:
    from ..verify import ModelSummary
    from .interpreter_api import Runtime

__all__ = ["Backend", "Schema", "distribution_version", "unsupported_features"]

_DETAILS = {1: "custom quantization", 2: "blockwise quantization", 3: "multi-axis quantization"}


@dataclass(frozen=True)
class Schema:
    """The parts of the model schema a backend's releases implement."""

    max_tensor_type: int
    quantization_details: frozenset[int]


@dataclass(frozen=True)
class Backend:
    """A TFLite backend that imported: its name, version and the pieces tfedge uses.

    Attributes:
        schema: What it implements of the model schema; None: the current schema.
        runtime_class: What :meth:`open` builds.
    """

    name: str
    version: str
    interpreter_class: type
    load_delegate: Callable[..., Any]
    op_resolver_type: Any = field(repr=False)
    module: ModuleType = field(repr=False, compare=False)
    schema: Optional[Schema] = field(default=None, repr=False)
    runtime_class: Optional[type] = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """``tflite_runtime 2.14.0``, as messages name it."""
        return f"{self.name} {self.version}"

    def open(self, content: bytes, *, num_threads: int, xnnpack: bool, options: Mapping[str, Any]) -> Runtime:
        """Build this backend's runtime for a model's bytes (the backend's errors propagate)."""
        from .interpreter_api import Runtime

        runtime_class: Callable[..., Runtime] = self.runtime_class or Runtime
        return runtime_class(self, content, num_threads=num_threads, xnnpack=xnnpack, options=options)

    def unknown_options(self, options: Mapping[str, Any]) -> list[str]:
        """The keys of ``options`` that this backend's Interpreter does not take (in order)."""
        if not options:  # the common case: no signature to read on each Interpreter built
            return []
        taken = self.option_names()
        return [] if taken is None else [key for key in options if key not in taken]

    def option_names(self) -> tuple[str, ...] | None:
        """The keyword options this backend's Interpreter takes; None if it takes any."""
        try:
            params = inspect.signature(self.interpreter_class).parameters
        except (TypeError, ValueError):  # not introspectable: the backend judges
            return None
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return None
        named = [name for name, p in params.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return (*named, "custom_op_registerers")  # InterpreterWithCustomOps, built when it is given

    def applies_xnnpack(self, options: Mapping[str, Any]) -> bool | None:
        """Whether a caller's ``experimental_op_resolver_type`` applies XNNPACK; None if not given."""
        if "experimental_op_resolver_type" not in options:
            return None
        resolver = self.op_resolver_type
        return options["experimental_op_resolver_type"] in (resolver.AUTO, resolver.BUILTIN)


def unsupported_features(backend: Backend, summary: ModelSummary | None) -> list[str]:
    """What the model uses that ``backend`` does not implement, in words; [] if nothing."""
    schema = backend.schema
    if schema is None or summary is None:
        return []
    missing = [
        f"{TENSOR_TYPE_NAMES[t] if t < len(TENSOR_TYPE_NAMES) else f'type {t}'} tensors"
        for t in sorted(summary.tensor_types)
        if t > schema.max_tensor_type
    ]
    missing += [_DETAILS.get(d, f"quantization details type {d}") for d in sorted(summary.quantization_details)
                if d not in schema.quantization_details]
    return missing


def distribution_version(name: str) -> str:
    """Installed version of a backend's distribution, or "unknown"."""
    # The package's own __version__ first: a native binary leaves out importlib.metadata.
    declared = getattr(importlib.import_module(name), "__version__", None)
    if isinstance(declared, str):
        return declared
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:
        return "unknown"
    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:
        return "unknown"


def from_interpreter_module(name: str, version: str, interp_mod: Any, module: Any,
                            schema: Schema | None = None) -> Backend:
    """The Backend of a module with TFLite's Python Interpreter API (``interp_mod``)."""
    return Backend(name=name, version=version, interpreter_class=module.Interpreter,
                   load_delegate=interp_mod.load_delegate, op_resolver_type=interp_mod.OpResolverType,
                   module=interp_mod, schema=schema)
