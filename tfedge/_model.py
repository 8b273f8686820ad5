"""The one load pipeline: read a model, verify it, choose the backend, probe it.

``Interpreter``, ``InterpreterPool`` and ``tfedge check`` all start here; building the
backend interpreter with its delegates (and falling back) is :class:`tfedge._session.Session`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Union

from . import backends
from .errors import ModelError
from .verify import ModelSummary, verify_model

__all__ = ["Model", "ModelSource", "load_model", "open_model", "read_model"]


@dataclass(frozen=True)
class Model:
    """A model's bytes, read once, with how messages name it and what verification found.

    Interpreters of one ``Model`` (a pool's) share its bytes and its check.

    Attributes:
        content: The whole file.
        source: How messages name it: ``Model file 'm.tflite'`` or ``The model``.
        summary: What :func:`tfedge.verify.verify_model` found; None when not verified.
    """

    content: bytes
    source: str
    summary: ModelSummary | None

    def __repr__(self) -> str:
        return f"<tfedge model {self.source}, {len(self.content):,} bytes>"


ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Model]


def read_model(model: str | os.PathLike[str] | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    """The model's bytes and how to name it in messages; ModelError if unreadable."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, source = bytes(model), "The model"
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        source = f"Model file {path!r}"
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise ModelError(f"{source} does not exist. Check the path.") from exc
        except IsADirectoryError as exc:
            raise ModelError(
                f"{source} is a directory, not a .tflite file. A SavedModel must be converted "
                "first: tfedge-convert DIR -o model.tflite."
            ) from exc
        except OSError as exc:
            raise ModelError(f"{source} cannot be read: {exc.strerror or exc}.") from exc
    else:
        raise TypeError(f"model must be a path or bytes, got {type(model).__name__}.")
    if not data:
        raise ModelError(f"{source} is empty (0 bytes): the download or copy did not finish. Copy it again.")
    return data, source


def load_model(model: ModelSource, *, verify: bool = True) -> Model:
    """Read ``model`` (a path or bytes) and, unless ``verify`` is False, check its structure.

    A :class:`Model` is returned as it is (verified now if it was not and ``verify``).

    Raises:
        ModelError: the file is missing, empty, not TFLite, corrupt or truncated.
    """
    if isinstance(model, Model):
        if verify and model.summary is None:
            return Model(model.content, model.source, _verify(model.content, model.source))
        return model
    content, source = read_model(model)
    return Model(content, source, _verify(content, source) if verify else None)


def _verify(content: bytes, source: str) -> ModelSummary:
    """verify_model with the file named in the message."""
    try:
        return verify_model(content)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from exc


#: ``TFEDGE_PROBE=0`` turns the default probe off (for a process that only loads models
#: it has checked, such as a fuzzer's); ``probe=True`` still probes.
PROBE_ENV_VAR = "TFEDGE_PROBE"


def probe_by_default() -> bool:
    """Whether ``probe=None`` probes: yes, unless ``$TFEDGE_PROBE`` is ``0``."""
    return os.environ.get(PROBE_ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def open_model(
    model: ModelSource, *, backend: str | None = None, verify: bool = True, probe: bool | None = None,
    probe_timeout: float | None = None,
) -> tuple[Model, backends.Backend]:
    """Load and verify ``model``, choose the backend that can run it, and probe it.

    Args:
        model: A path, bytes, or a :class:`Model`.
        backend: A backend name, or None for ``$TFEDGE_BACKEND`` or the best one that
            implements what the model uses.
        verify: Check the structure first (see :func:`load_model`).
        probe: Load and run it once in a child process first (see :mod:`tfedge.isolate`),
            so a model that aborts the backend raises ModelError instead of killing this
            process. The verdict is cached by the file's identity and its SHA-256: a
            second load of an unchanged file costs a ``stat()``, of the same bytes a hash. None
            (the default) probes unless ``$TFEDGE_PROBE=0``, and refuses only a crash or a
            hang (an error the model raises is raised by the load itself); True refuses any
            failure of the test run.
        probe_timeout: Seconds the probe may take (default :data:`tfedge.isolate.DEFAULT_TIMEOUT`).

    Raises:
        ModelError: the model cannot be read or run; BackendNotFoundError: no backend.
    """
    from .isolate import DEFAULT_TIMEOUT, file_identity, probe_model

    # Before the read: a file changed meanwhile has a new identity at the next load.
    identity = file_identity(model) if isinstance(model, (str, os.PathLike)) else None
    loaded = load_model(model, verify=verify)
    timeout = DEFAULT_TIMEOUT if probe_timeout is None else probe_timeout

    def vet(candidate: backends.Backend) -> str | None:
        verdict = probe_model(loaded.content, backend=candidate.name, backend_version=candidate.version,
                              timeout=timeout)
        return None if verdict.ok else verdict.reason()

    chosen = backends.choose(backend, loaded.summary, loaded.source, vet=vet)
    if probe if probe is not None else probe_by_default():
        verdict = probe_model(loaded.content, backend=chosen.name, backend_version=chosen.version,
                              timeout=timeout, identity=identity)
        # By default only what would kill or hang this process is refused here: a model that
        # merely raised in the child raises the same, safely, when this process loads it.
        if not verdict.ok and (probe or verdict.outcome != "error"):
            raise verdict.error(loaded.source)
    return loaded, chosen
