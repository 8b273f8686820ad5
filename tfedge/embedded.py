"""Models embedded in a native ``tfedge`` binary (see ``build_native.py --model``).

``build_native.py`` copies each model next to this module, into ``_embedded/``, with a
``manifest.json`` holding its SHA-256. An app finds them by name::

    import tfedge

    interp = tfedge.Interpreter(tfedge.embedded_model("mobilenet"))

Every model is checked against its SHA-256 when it is read, so a binary whose payload
was damaged fails with a clear ModelError instead of handing the backend a broken file.
Under plain Python (no ``_embedded/`` folder) there are no embedded models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ModelError

__all__ = ["EMBEDDED_PREFIX", "EmbeddedModel", "embedded_model", "embedded_models", "resolve_model"]

#: ``tfedge run embedded:NAME`` names an embedded model where a path is expected.
EMBEDDED_PREFIX = "embedded:"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class EmbeddedModel:
    """One entry of the manifest: the model's name, file name, size and SHA-256."""

    name: str
    file: str
    size: int
    sha256: str


def _embedded_dir() -> Path:
    """Where build_native.py puts the models (beside this module, inside the binary)."""
    return Path(__file__).resolve().parent / "_embedded"


@lru_cache(maxsize=1)
def _manifest() -> dict[str, EmbeddedModel]:
    """The manifest read once; empty when nothing is embedded."""
    path = _embedded_dir() / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise ModelError(f"The embedded model manifest {str(path)!r} is unreadable ({exc}). Rebuild the binary.") from exc
    format_ = data.get("format") if isinstance(data, dict) else None
    if format_ != MANIFEST_FORMAT:
        raise ModelError(
            f"The embedded model manifest has format {format_!r}, expected {MANIFEST_FORMAT}. "
            "Rebuild the binary with this tfedge."
        )
    models = data.get("models")
    if not isinstance(models, dict):
        given = "missing" if models is None else f"a {type(models).__name__}"
        raise _damaged(f"'models' is {given}, expected an object of models by name")
    return {name: _entry(name, entry) for name, entry in models.items()}


def _entry(name: str, entry: object) -> EmbeddedModel:
    """One model's manifest entry, checked: a plain file name beside the manifest, a size, a SHA-256."""
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise _damaged(f"model {name!r} has {keys}, expected the keys {sorted(_ENTRY_KEYS)}")
    file, size, sha256 = entry["file"], entry["size"], entry["sha256"]
    if not (isinstance(file, str) and file and file == Path(file).name and file not in (".", "..")):
        raise _damaged(f"model {name!r} has file {file!r}, expected a file name beside the manifest")
    if type(size) is not int or not isinstance(sha256, str):
        raise _damaged(f"model {name!r} has size {size!r} and sha256 {sha256!r}, expected an integer and a string")
    return EmbeddedModel(name=name, file=file, size=size, sha256=sha256)


_ENTRY_KEYS = frozenset(("file", "size", "sha256"))


def _damaged(problem: str) -> ModelError:
    return ModelError(f"The embedded model manifest is damaged: {problem}. Rebuild the binary.")


def embedded_models() -> tuple[str, ...]:
    """Names of the models embedded in this binary, sorted (empty under plain Python)."""
    return tuple(sorted(_manifest()))


def embedded_model(name: str) -> bytes:
    """The bytes of the embedded model ``name``, checked against its SHA-256.

    Args:
        name: The model's name: its file name without ``.tflite`` unless
            ``--model NAME=FILE`` gave another.

    Returns:
        The model's bytes, ready for ``tfedge.Interpreter(...)``.

    Raises:
        ModelError: no such model, or its bytes do not match the manifest.
    """
    models = _manifest()
    if name not in models:
        available = ", ".join(repr(n) for n in sorted(models)) or "none (this is not a binary built with --model)"
        raise ModelError(f"No embedded model {name!r}. Available: {available}.")
    entry = models[name]
    path = _embedded_dir() / entry.file
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"Embedded model {name!r} is missing from the binary ({exc}). Rebuild the binary.") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != entry.sha256 or len(content) != entry.size:
        raise ModelError(
            f"Embedded model {name!r} is damaged: SHA-256 {digest[:16]}..., expected {entry.sha256[:16]}... "
            "Delete the binary's cache folder (~/.cache/tfedge/native-*) or rebuild the binary."
        )
    return content


def resolve_model(arg: str | None) -> tuple[str | bytes, str]:
    """What a command-line model argument means: a path, or an embedded model's bytes.

    ``None`` picks the only embedded model; ``embedded:NAME`` picks one by name; any
    other text is a path.

    Returns:
        ``(source, label)``: a path or bytes for ``Interpreter``, and how to name it.

    Raises:
        ModelError: no argument and not exactly one embedded model, or an unknown name.
    """
    if arg is None:
        names = embedded_models()
        if len(names) != 1:
            choices = ", ".join(EMBEDDED_PREFIX + n for n in names)
            raise ModelError(
                "No model given. Pass a .tflite path"
                + (f" or one of: {choices}." if names else ".")
            )
        arg = EMBEDDED_PREFIX + names[0]
    if arg.startswith(EMBEDDED_PREFIX):
        return embedded_model(arg[len(EMBEDDED_PREFIX):]), arg
    return arg, arg
