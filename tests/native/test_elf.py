"""The ELF check the build uses to keep a library strip broke out of the binary (no compiling)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from tfedge.native.elf import loadable_segments

PT_LOAD, PT_DYNAMIC = 1, 2


def _elf(tmp_path: Path, segments: list[tuple[int, int, int, int]], *, wide: bool = True) -> Path:
    """A minimal little-endian ELF file with these (type, offset, vaddr, align) program headers."""
    if wide:
        header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 3, 183, 1, 0, 64, 0, 0, 64, 56,
                                                                   len(segments), 64, 0, 0)
        table = b"".join(struct.pack("<IIQQQQQQ", kind, 5, offset, vaddr, vaddr, 16, 16, align)
                         for kind, offset, vaddr, align in segments)
    else:
        header = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HHIIIIIHHHHHH", 3, 40, 1, 0, 52, 0, 0, 52, 32,
                                                                   len(segments), 40, 0, 0)
        table = b"".join(struct.pack("<IIIIIIII", kind, offset, vaddr, vaddr, 16, 16, 5, align)
                         for kind, offset, vaddr, align in segments)
    path = tmp_path / f"lib{len(segments)}{'64' if wide else '32'}.so"
    path.write_bytes(header + table)
    return path


@pytest.mark.parametrize("wide", [True, False], ids=["elf64", "elf32"])
def test_segments_the_loader_maps(tmp_path: Path, wide: bool) -> None:
    aligned = [(PT_LOAD, 0, 0, 0x1000), (PT_LOAD, 0x1234, 0x201234, 0x1000), (PT_LOAD, 0x3000, 0x10000, 0x1000)]
    assert loadable_segments(_elf(tmp_path, aligned, wide=wide))


@pytest.mark.parametrize("wide", [True, False], ids=["elf64", "elf32"])
def test_what_strip_writes_from_a_patchelf_edited_library_is_refused(tmp_path: Path, wide: bool) -> None:
    # numpy 2.4.6's libgfortran after strip --strip-unneeded: offset 0x27a9a0 mapped at 0x484000.
    misaligned = [(PT_LOAD, 0, 0, 0x200000), (PT_LOAD, 0x27A9A0, 0x484000, 0x1000)]
    assert not loadable_segments(_elf(tmp_path, misaligned, wide=wide))


def test_only_load_segments_count(tmp_path: Path) -> None:
    assert loadable_segments(_elf(tmp_path, [(PT_LOAD, 0, 0, 0x1000), (PT_DYNAMIC, 0x10, 0x2345, 8)]))


@pytest.mark.parametrize("content", [b"", b"#!/bin/sh\n", b"\x7fELF\x02\x01" + bytes(20)],
                         ids=["empty", "script", "truncated"])
def test_not_a_whole_elf_file_is_not_loadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.so"
    path.write_bytes(content)
    assert not loadable_segments(path)


def test_headers_past_the_end_are_not_loadable(tmp_path: Path) -> None:
    path = _elf(tmp_path, [(PT_LOAD, 0, 0, 0x1000)])
    path.write_bytes(path.read_bytes()[:-8])
    assert not loadable_segments(path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF: Linux")
def test_this_python_and_numpy_load() -> None:
    import numpy

    extensions = sorted(Path(numpy.__file__).parent.rglob("_multiarray_umath*.so"))
    assert extensions and all(loadable_segments(p) for p in [Path(sys.executable).resolve(), *extensions])
