"""Fuzz target: ``multipart/form-data`` bodies and DeepStack's detection form.

The Content-Type comes first, up to the first newline; the body follows.
"""

from __future__ import annotations

from typing import List, Tuple, Type

from tfedge.serve.multipart import parse_detection_form, parse_multipart
from tfedge.serve.protocol import RequestError

ALLOWED: Tuple[Type[BaseException], ...] = (RequestError,)

_BOUNDARY = "b7c1d2"


def _form(fields: List[Tuple[str, bytes, str]]) -> bytes:
    parts = []
    for name, data, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{_BOUNDARY}--\r\n".encode()


def seeds() -> List[bytes]:
    """Forms as requests (Frigate) and curl -F send them, and broken ones."""
    ctype = f"multipart/form-data; boundary={_BOUNDARY}\n".encode()
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"
    return [
        ctype + _form([("api_key", b"", ""), ("image", jpeg, "image")]),
        ctype + _form([("image", jpeg, "photo.jpg"), ("min_confidence", b"0.6", "")]),
        ctype + _form([("min_confidence", b"high", ""), ("image", jpeg, "x")]),
        f'multipart/form-data; boundary="{_BOUNDARY}"\n'.encode() + _form([("image", b"x", "")])[:-8],
        b"text/plain\nnot a form",
    ]


def one_input(data: bytes) -> None:
    """Parse one form both ways: any fields, then DeepStack's."""
    head, _, body = data.partition(b"\n")
    ctype = head.decode("latin-1")
    parse_multipart(body, ctype)
    form = parse_detection_form(body, ctype)
    assert form.image and 0.0 <= form.min_confidence <= 1.0

