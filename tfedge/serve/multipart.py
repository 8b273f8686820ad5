"""``multipart/form-data`` bodies (RFC 7578) and DeepStack's detection form.

The standard library's parser for these (``cgi``) is deprecated and gone in Python 3.13, and
the ``email`` package is lenient where a server should not be: this is a strict parser of
what browsers, ``requests`` and ``curl -F`` send. Problems raise :class:`RequestError` (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional

from .protocol import RequestError

__all__ = ["DetectionForm", "Part", "parse_detection_form", "parse_multipart"]

_MAX_PARTS = 64
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([A-Za-z*]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))')


@dataclass(frozen=True)
class Part:
    """One field of a form: its content, and the file name when it is a file."""

    data: bytes
    filename: Optional[str] = None


@dataclass(frozen=True)
class DetectionForm:
    """DeepStack's ``/v1/vision/detection`` form: the image file, ``min_confidence``, ``api_key``."""

    image: bytes
    min_confidence: float
    api_key: Optional[str]


def boundary_of(content_type: Optional[str]) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type."""
    if not content_type or not content_type.lower().lstrip().startswith("multipart/form-data"):
        raise RequestError(f"The body must be multipart/form-data (a form with the image file in 'image'), "
                           f"got Content-Type {(content_type or '(none)')[:60]!r}.")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise RequestError("The multipart/form-data Content-Type has no boundary=... parameter.")
    return (match.group(1) or match.group(2)).encode("latin-1")


def _disposition(headers: bytes, index: int) -> tuple[str, Optional[str]]:
    """The ``name`` and ``filename`` of a part's Content-Disposition header."""
    for line in headers.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == b"content-disposition":
            text = value.decode("utf-8", "replace").strip()
            if not text.lower().startswith("form-data"):
                break
            params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                      for m in _PARAM.finditer(text)}
            if "name" not in params:
                break
            return params["name"], params.get("filename")
    raise RequestError(f"Part {index} of the form has no 'Content-Disposition: form-data; name=...' header.")


def parse_multipart(body: bytes, content_type: Optional[str]) -> Dict[str, Part]:
    """The fields of a ``multipart/form-data`` body by name (the first of repeated names)."""
    delimiter = b"--" + boundary_of(content_type)
    start = body.find(delimiter)
    if start < 0 or (start and body[start - 2:start] != b"\r\n"):
        raise RequestError("The form body does not contain its boundary: it is not the multipart body its "
                           "Content-Type announces.")
    fields: Dict[str, Part] = {}
    pos = start + len(delimiter)
    for index in range(_MAX_PARTS + 1):
        if body[pos:pos + 2] == b"--":
            return fields
        if index == _MAX_PARTS:
            break
        if body[pos:pos + 2] != b"\r\n":
            raise RequestError(f"Part {index} of the form: the boundary line is not followed by CRLF.")
        end = body.find(b"\r\n" + delimiter, pos + 2)
        if end < 0:
            raise RequestError(f"Part {index} of the form has no closing boundary: the body is truncated.")
        head_end = body.find(b"\r\n\r\n", pos)
        if head_end < 0 or head_end > end:
            raise RequestError(f"Part {index} of the form has no blank line between its headers and data.")
        name, filename = _disposition(body[pos + 2:head_end], index)
        fields.setdefault(name, Part(body[head_end + 4:end], filename))
        pos = end + 2 + len(delimiter)
    raise RequestError(f"The form has more than {_MAX_PARTS} parts.")


def parse_detection_form(body: bytes, content_type: Optional[str]) -> DetectionForm:
    """DeepStack's detection form: ``image`` (a file), optional ``min_confidence`` (0..1) and ``api_key``."""
    fields = parse_multipart(body, content_type)
    image = fields.get("image")
    if image is None or not image.data:
        raise RequestError("The form has no 'image' field: send the picture as a file, "
                           "e.g. curl -F image=@photo.jpg.")
    confidence = 0.4  # DeepStack's default
    if "min_confidence" in fields:
        text = fields["min_confidence"].data.decode("latin-1").strip()
        try:
            confidence = float(text)
        except ValueError:
            confidence = -1.0
        if not 0.0 <= confidence <= 1.0:
            raise RequestError(f"min_confidence must be a number from 0 to 1, got {text[:40]!r}.")
    key = fields.get("api_key")
    return DetectionForm(image.data, confidence, None if key is None else key.data.decode("utf-8", "replace"))
