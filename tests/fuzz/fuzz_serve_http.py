"""Fuzz target: the server's reader of HTTP/1.1 request lines and header fields (``read_head``).

The input is what a client sends on the connection: the request line, the header fields, a
blank line and whatever follows (left unread).
"""

from __future__ import annotations

import io
from typing import List, Tuple, Type

from tfedge.serve.server import BadHTTP, read_head

ALLOWED: Tuple[Type[BaseException], ...] = (BadHTTP,)


def seeds() -> List[bytes]:
    """The requests tests/serve sends (tritonclient, requests, curl, raw sockets), and broken ones."""
    body = b'{"inputs": []}'
    return [
        b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: python-requests/2.32\r\n"
        b"Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
        b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: 14\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 14\r\n\r\n" + body,
        b"POST /v1/vision/detection HTTP/1.1\r\ncontent-LENGTH: 3\r\nExpect: 100-continue\r\n"
        b"Content-Type: multipart/form-data; boundary=b7c1\r\n\r\nabc",
        b"GET /v2/health/live HTTP/1.0\r\nX-Note: a\r\n  folded\r\nConnection: keep-alive\r\n\r\n",
        b"GET //v2//models HTTP/1.1\r\nX: 1\r\nX: 2\r\n\r\n",
        b"GET /v2/health/live HTTP/2.0\r\n\r\n", b"GET /v2/health/live HTTP/1.x\r\n\r\n", b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", b"\r\n",
    ]


def one_input(data: bytes) -> None:
    """Read one request head as the server does; check what it returns."""
    rfile = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]
    head = read_head(rfile.readline(65537), rfile)
    if head is not None:
        assert head.command and head.path and head.version.startswith("HTTP/")
        assert all(name == name.lower() for name in head.fields)
