"""Delegates: named accelerators, finding their libraries, loading, and falling back.

``Interpreter(model, delegates=[...])`` takes an ordered preference list, like
onnxruntime's providers. Each entry is one of:

- ``"xnnpack"``: the backend's built-in XNNPACK CPU delegate (its threads are the
  Interpreter's ``num_threads``). The backend always applies it after every external
  delegate, wherever it stands in the list, so it takes what they left.
- ``"gpu"``: the TFLite GPU delegate, built as an external delegate library
  (``libtensorflowlite_gpu_delegate.so`` on Linux/Jetson, also looked for under its
  Android JNI name), searched for on the usual paths (see :func:`search_dirs`).
- ``"edgetpu"``: the Coral Edge TPU runtime (``libedgetpu.so.1`` / ``.1.dylib`` /
  ``edgetpu.dll``), with options such as ``{"device": "usb:0"}``.
- ``"none"``: no XNNPACK: what no delegate takes runs on the builtin kernels (the
  backends' ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``). ``["none"]`` and
  ``[]`` mean the same; ``["gpu", "none"]`` is the GPU delegate, then the builtin kernels.
- a path to any external delegate library (one that exports
  ``tflite_plugin_create_delegate`` and ``tflite_plugin_destroy_delegate``).
- ``(entry, {"key": "value"})``: one of the above with options, passed to the library
  as strings; or a :class:`DelegateSpec`.

Every external delegate that loads and prepares is applied, in list order, each taking
the nodes it supports; whatever none of them takes runs on the CPU: XNNPACK, the
backends' default CPU path, unless the list says ``"none"`` (then the builtin kernels).
So ``["gpu"]`` means ``["gpu", "xnnpack"]``, as the backends do after an external
delegate, and a fallback from a missing GPU delegate costs nothing against not asking.
The default, when ``delegates`` is not given, is ``("xnnpack",)``: what the backends do
by themselves, plus the fallback below.

Fallback: when a delegate's library is missing, fails to load or to create the
delegate, or the model fails to prepare or run under it, that delegate is dropped, the
model is rebuilt with the rest of the list, and one :class:`DelegateFallbackWarning`
(a ``warnings.warn``) names the delegate and the reason. ``strict=True`` raises
:class:`~tfedge.errors.DelegateError` with the same message instead. The CPU is the
end of every list, so a model that runs on the CPU always runs. A failure while
running counts as the delegate's only when the backend's message names one of its
nodes (``Node number N (TfLiteXNNPackDelegate) failed to prepare``); any other failure
is the model's and raises :class:`~tfedge.errors.InvokeError` as before.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

from .backends import Backend, get_backend
from .errors import DelegateError

__all__ = [
    "DEFAULT",
    "DelegateEntry",
    "DelegateFallbackWarning",
    "DelegateKind",
    "DelegateSpec",
    "ENV_VAR",
    "library_names",
    "load_delegate",
    "resolve",
    "search_dirs",
]

#: Directories (``os.pathsep``-separated) searched first for delegate libraries.
ENV_VAR = "TFEDGE_DELEGATE_PATH"
_PLUGIN_SYMBOLS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


class DelegateFallbackWarning(RuntimeWarning):
    """A delegate was skipped and the model runs on the next one (or the CPU)."""


class DelegateKind(str, Enum):
    """What a :class:`DelegateSpec` names."""

    XNNPACK = "xnnpack"
    GPU = "gpu"
    EDGETPU = "edgetpu"
    NONE = "none"
    EXTERNAL = "external"


@dataclass(frozen=True)
class DelegateSpec:
    """One entry of a delegate preference list.

    Attributes:
        kind: Which delegate.
        library: The library's path (or a name the system loader finds). Required for
            ``EXTERNAL``; for ``GPU`` and ``EDGETPU`` it skips the search.
        options: Passed to the library's ``tflite_plugin_create_delegate``, as
            strings, in this order.
        loaded: A delegate object the backend's ``load_delegate`` already returned
            (how ``experimental_delegates`` enter the list); used as is.
    """

    kind: DelegateKind
    library: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    loaded: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """The name warnings and :attr:`Interpreter.placement` use."""
        if self.kind is DelegateKind.EXTERNAL:
            return self.library or "external"
        return self.kind.value


DelegateEntry = Union[str, "os.PathLike[str]", DelegateSpec, "tuple[str | os.PathLike[str], Mapping[str, Any]]"]

#: The preference list used when ``delegates`` is not given.
DEFAULT: tuple[DelegateSpec, ...] = (DelegateSpec(DelegateKind.XNNPACK),)

# Library file names per platform.system(). Android reports "Linux" before Python 3.13.
_LIBRARIES: dict[DelegateKind, dict[str, tuple[str, ...]]] = {
    DelegateKind.EDGETPU: {
        "Linux": ("libedgetpu.so.1",),
        "Android": ("libedgetpu.so.1",),
        "Darwin": ("libedgetpu.1.dylib",),
        "Windows": ("edgetpu.dll",),
    },
    DelegateKind.GPU: {
        "Linux": ("libtensorflowlite_gpu_delegate.so", "libtensorflowlite_gpu_jni.so"),
        "Android": ("libtensorflowlite_gpu_jni.so", "libtensorflowlite_gpu_delegate.so"),
        "Darwin": ("libtensorflowlite_gpu_delegate.dylib",),
        "Windows": ("tensorflowlite_gpu_delegate.dll",),
    },
}
_HINTS = {
    DelegateKind.EDGETPU: "Install the Edge TPU runtime (apt install libedgetpu1-std)",
    DelegateKind.GPU: "Build the TFLite GPU delegate "
    "(bazel target //tensorflow/lite/delegates/gpu:libtensorflowlite_gpu_delegate.so)",
}
_LIBRARY_SUFFIX = re.compile(r"\.(so(\.\d+)*|dylib|dll)$", re.IGNORECASE)


def library_names(kind: DelegateKind, system: str | None = None) -> tuple[str, ...]:
    """The library file names looked for for ``kind`` on ``system`` (default: this one)."""
    table = _LIBRARIES.get(kind, {})
    return table.get(system or platform.system(), table.get("Linux", ()))


def search_dirs() -> tuple[str, ...]:
    """Directories searched for delegate libraries, in order.

    ``$TFEDGE_DELEGATE_PATH`` first, then the platform's usual places (on Jetson the
    GPU delegate is usually installed in ``/usr/local/lib``). The system loader's own
    path (``LD_LIBRARY_PATH``, the ld cache) is tried after these.
    """
    extra = [d for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    system = platform.system()
    if system == "Darwin":
        usual = ["/opt/homebrew/lib", "/usr/local/lib"]
    elif system == "Windows":
        usual = []
    else:
        machine = platform.machine()
        usual = ["/usr/local/lib", f"/usr/lib/{machine}-linux-gnu", "/usr/lib"]
        if machine == "aarch64":
            usual += ["/usr/lib/aarch64-linux-gnu/tegra", "/system/lib64", "/vendor/lib64"]
    return tuple(extra + usual)


def resolve(entries: Sequence[DelegateEntry] | None, preloaded: Sequence[Any] | None = None) -> tuple[DelegateSpec, ...]:
    """The preference list as DelegateSpecs: ``preloaded`` first, then ``entries``.

    Raises:
        ValueError: an entry is not a known delegate name, path, or (entry, options).
    """
    specs = [
        DelegateSpec(DelegateKind.EXTERNAL, library=_preloaded_name(obj, i), loaded=obj)
        for i, obj in enumerate(preloaded or ())
    ]
    if entries is None:
        entries = DEFAULT
    elif isinstance(entries, (str, os.PathLike, DelegateSpec)):
        entries = [entries]
    builtin_only = not entries  # [] means ["none"]
    for entry in entries:
        spec = _parse(entry)
        if spec.kind is DelegateKind.NONE:
            builtin_only = True
        elif spec not in specs:
            specs.append(spec)
    if not builtin_only and all(s.kind is not DelegateKind.XNNPACK for s in specs):
        # The CPU end of the list is the backend's default CPU path, as the backends do
        # after external delegates: a fallback never lands on the slower builtin kernels.
        specs.append(DelegateSpec(DelegateKind.XNNPACK))
    return tuple(specs)


def _parse(entry: Any) -> DelegateSpec:
    """One preference-list entry as a DelegateSpec, or ValueError."""
    if isinstance(entry, DelegateSpec):
        return entry
    options: Mapping[str, Any] = {}
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping):
        entry, options = entry
    if isinstance(entry, os.PathLike):
        entry = os.fspath(entry)
    if not isinstance(entry, str):
        raise ValueError(
            f"Delegate entries are names, library paths or (name_or_path, options) tuples; got {entry!r}."
        )
    pairs = tuple((str(k), str(v)) for k, v in options.items())
    names = [k.value for k in DelegateKind if k is not DelegateKind.EXTERNAL]
    if entry in names:
        kind = DelegateKind(entry)
        if pairs and kind in (DelegateKind.XNNPACK, DelegateKind.NONE):
            raise ValueError(f"Delegate {entry!r} takes no options (its threads are the Interpreter's num_threads).")
        return DelegateSpec(kind, options=pairs)
    if os.sep in entry or "/" in entry or _LIBRARY_SUFFIX.search(entry):
        return DelegateSpec(DelegateKind.EXTERNAL, library=entry, options=pairs)
    raise ValueError(
        f"Unknown delegate {entry!r}. Available: {', '.join(repr(n) for n in names)}, "
        "or the path of a delegate library (optionally as (path, {options}))."
    )


def load_delegate(library: str, options: Mapping[str, Any] | None = None, *, backend: str | None = None) -> Any:
    """The backend's ``load_delegate``: a delegate object for ``experimental_delegates``.

    The drop-in for ``tflite_runtime.interpreter.load_delegate`` (PyCoral's
    ``make_interpreter`` shape): ``Interpreter(m, experimental_delegates=[load_delegate(lib)])``.
    New code can pass the library to ``delegates=[...]`` instead, which falls back.

    Args:
        library: The delegate library's path or name.
        options: Passed to the library's ``tflite_plugin_create_delegate``.
        backend: Whose loader to use (default: the automatic choice, as Interpreter's).

    Raises:
        ValueError: the library could not be loaded or create its delegate (as the backends).
        BackendNotFoundError: no backend.
    """
    loader = get_backend(backend)
    # Open the library first, with the dlopen the backends use: their Delegate, failing to
    # open it, is left half built and its __del__ prints a traceback. The error is theirs.
    ctypes.CDLL(library)
    return loader.load_delegate(library, dict(options or {}))


def _preloaded_name(obj: Any, index: int) -> str:
    """The library name of a delegate object from load_delegate, for messages."""
    library = getattr(obj, "_library", None)
    return str(getattr(library, "_name", None) or f"experimental_delegates[{index}]")


class _Skip(Exception):
    """A delegate cannot be used here; the message is the reason."""


def _find_library(spec: DelegateSpec) -> str:
    """The library to load for ``spec``: given, found in search_dirs(), or by the system loader."""
    if spec.library is not None:
        return spec.library
    names = library_names(spec.kind)
    dirs = search_dirs()
    for directory in dirs:
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                return path
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    where = ", ".join(dirs) + (" or " if dirs else "") + "the system library path"
    raise _Skip(
        f"{' or '.join(names)} was not found in {where}. {_HINTS[spec.kind]}, "
        f"add its directory to ${ENV_VAR}, or pass its path: delegates=[(PATH, options)]"
    )


def _load(backend: Backend, spec: DelegateSpec) -> Any:
    """The backend's delegate object for ``spec``; _Skip with the reason if it cannot load."""
    if spec.loaded is not None:
        return spec.loaded
    library = _find_library(spec)
    # Open it ourselves first: the backends' loader, failing on a missing file, leaves a
    # half-built Delegate whose __del__ prints a traceback; and this way a library that
    # is not an external delegate gets a message saying so.
    try:
        handle = ctypes.CDLL(library)
    except OSError as exc:
        raise _Skip(f"{library} could not be loaded: {exc}") from exc
    missing = [s for s in _PLUGIN_SYMBOLS if not hasattr(handle, s)]
    if missing:
        raise _Skip(f"{library} is not a TFLite external delegate library: it does not export {', '.join(missing)}")
    try:
        return backend.load_delegate(library, dict(spec.options))
    except (ValueError, RuntimeError, OSError) as exc:
        # The backends put the library's own error report after their first line.
        lines = str(exc).strip().splitlines()
        detail = " ".join(lines[1:]).strip() or (lines[0] if lines else type(exc).__name__)
        raise _Skip(f"{library} failed to create the delegate: {detail}") from exc


def fall_back(spec: DelegateSpec, reason: str, remaining: Sequence[DelegateSpec], *, strict: bool, stacklevel: int) -> None:
    """Report that ``spec`` is dropped: a warning naming it and why, or DelegateError if ``strict``."""
    if strict:
        raise DelegateError(
            f"Delegate {spec.label!r} cannot be used: {reason}. "
            "Pass strict=False to fall back to the next delegate (and the CPU) instead."
        )
    rest = ", ".join(repr(s.label) for s in remaining if s.kind is not DelegateKind.XNNPACK)  # XNNPACK is the CPU
    then = f"{rest}, then the CPU" if rest else "the CPU"
    warnings.warn(
        f"Delegate {spec.label!r} skipped: {reason}. Falling back to {then}.",
        DelegateFallbackWarning,
        stacklevel=stacklevel + 1,
    )
