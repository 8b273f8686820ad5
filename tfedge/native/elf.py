"""Reading the one thing the build needs from an ELF file's program headers: can the loader map it?"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["loadable_segments"]

_PT_LOAD = 1


def loadable_segments(path: Path) -> bool:
    """Whether every LOAD segment of the ELF file ``path`` is aligned as the loader demands.

    glibc refuses to map a library whose segment's address and file offset differ by other
    than a multiple of its alignment ("ELF load command address/offset not page-aligned").
    ``strip`` writes such files from libraries patchelf has edited, as auditwheel's bundled
    libraries of the PyPI wheels are. A file that is not ELF, or too short to hold its
    headers, is reported as not loadable.
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 52 or data[5] not in (1, 2):
        return False
    order = "<" if data[5] == 1 else ">"
    wide = data[4] == 2
    if wide:
        if len(data) < 64:
            return False
        (phoff,) = struct.unpack_from(order + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
        header = order + "IIQQQQQQ"  # type, flags, offset, vaddr, paddr, filesz, memsz, align
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
        header = order + "IIIIIIII"  # type, offset, vaddr, paddr, filesz, memsz, flags, align
    if phoff + phnum * phentsize > len(data) or (phnum and phentsize < struct.calcsize(header)):
        return False
    for index in range(phnum):
        fields = struct.unpack_from(header, data, phoff + index * phentsize)
        kind, offset, vaddr, align = (fields[0], fields[2], fields[3], fields[7]) if wide else fields[:3] + fields[7:]
        if kind == _PT_LOAD and align > 1 and (vaddr - offset) % align:
            return False
    return True
