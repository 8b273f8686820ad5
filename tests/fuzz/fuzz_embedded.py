"""The embedded-model manifest of a native binary (``tfedge/_embedded/manifest.json``).

The input is the manifest's bytes, beside one embedded model file (``add.tflite``); the target
lists the models, reads each one (checked against its size and SHA-256) and resolves the
command line's default model, as ``tfedge run`` in a binary does. Only ModelError may come out.
"""

from __future__ import annotations

import hashlib
import json

from _harness import model_seeds, scratch_dir

from tfedge import embedded
from tfedge.errors import ModelError

ALLOWED: tuple[type[BaseException], ...] = (ModelError,)

_MODEL = model_seeds("litert-testdata/add.tflite")[0]
_FOLDER = scratch_dir("fuzz-embedded-")
(_FOLDER / "add.tflite").write_bytes(_MODEL)


def _manifest(models: dict[str, object], format_: object = embedded.MANIFEST_FORMAT) -> bytes:
    return json.dumps({"format": format_, "models": models}, indent=1).encode()


def seeds() -> list[bytes]:
    """Manifests as build_native.py writes them: one model, two models, a damaged one, none."""
    good = {"file": "add.tflite", "size": len(_MODEL), "sha256": hashlib.sha256(_MODEL).hexdigest()}
    return [
        _manifest({"add": good}),
        _manifest({"add": good, "adder": dict(good, size=1)}),
        _manifest({"add": dict(good, sha256="0" * 64)}),
        _manifest({}),
        _manifest({"add": good}, format_=2),
    ]


def one_input(data: bytes) -> None:
    """List, read and resolve the embedded models of a binary whose manifest is ``data``."""
    (_FOLDER / embedded.MANIFEST_NAME).write_bytes(data)
    # The binary's folder, pointed here for this input only, as tests/native/test_embedded.py
    # does: the replay runs in pytest's process, where later tests must see no embedded models.
    real = embedded._embedded_dir
    embedded._embedded_dir = lambda: _FOLDER
    embedded._manifest.cache_clear()
    try:
        for name in embedded.embedded_models():
            embedded.embedded_model(name)
        embedded.resolve_model(None)
    finally:
        embedded._embedded_dir = real
        embedded._manifest.cache_clear()
