"""Writing files so that a crash, a full disk or Ctrl-C never leaves half of one behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Union

__all__ = ["cache_dir", "write_atomically"]


def cache_dir() -> Path:
    """tfedge's cache folder: $TFEDGE_CACHE_DIR, else $XDG_CACHE_HOME/tfedge, else ~/.cache/tfedge."""
    base = os.environ.get("TFEDGE_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfedge"


def _umask() -> int:
    """The process's umask (reading it means setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Union[str, "os.PathLike[str]"], content: Union[bytes, Callable[[BinaryIO], None]]) -> None:
    """Write ``path`` through a temporary file in its directory and a rename.

    ``content`` is the bytes to write, or a function that writes to the open file. The
    file gets the permissions a plain ``open(path, "wb")`` would give it (0666 less the
    umask), not the 0600 of a temporary file; it is flushed to disk before the rename.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
