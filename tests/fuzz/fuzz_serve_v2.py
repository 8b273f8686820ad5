"""Fuzz target: the v2 infer request parser (JSON tensors, the binary header) and the response encoder.

The first byte picks the mode: odd: a binary body whose JSON header length is the next two
bytes (modulo the body's size, as ``Inference-Header-Content-Length``); even: plain JSON.
"""

from __future__ import annotations

import json
from typing import List, Tuple, Type

import numpy as np

from tfedge.serve.protocol import RequestError, encode_infer_response, parse_header_length, parse_infer_request

ALLOWED: Tuple[Type[BaseException], ...] = (RequestError,)


def _binary(header: dict, *arrays: np.ndarray) -> bytes:
    head = json.dumps(header).encode()
    n = len(head)
    return b"\x01" + n.to_bytes(2, "big") + head + b"".join(a.tobytes() for a in arrays)


def seeds() -> List[bytes]:
    """The requests tests/serve sends: JSON and binary tensors, outputs by name, bad ones."""
    x = np.arange(12, dtype=np.float32)
    tensor = {"name": "a", "shape": [1, 3, 4], "datatype": "FP32"}
    return [
        b"\x00" + json.dumps({"inputs": [dict(tensor, data=x.tolist())]}).encode(),
        b"\x00" + json.dumps({"id": "r1", "inputs": [dict(tensor, data=x.reshape(3, 4).tolist())],
                              "outputs": [{"name": "a", "parameters": {"binary_data": False}}]}).encode(),
        b"\x00" + json.dumps({"inputs": [{"name": "b", "shape": [2], "datatype": "UINT8", "data": [1, 300]}]}).encode(),
        b"\x00" + json.dumps({"inputs": [{"name": "c", "shape": [2], "datatype": "BOOL", "data": [True, False]}],
                              "parameters": {"binary_data_output": True}}).encode(),
        _binary({"inputs": [dict(tensor, parameters={"binary_data_size": 48})]}, x),
        _binary({"inputs": [dict(tensor, parameters={"binary_data_size": 48}),
                            {"name": "d", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}}],
                 "outputs": [{"name": "d"}]}, x, np.array([1, 2], np.int64)),
        b"\x00{nope", b"\x00" + b"[" * 2000,
    ]


def one_input(data: bytes) -> None:
    """Parse one request and, when it parses, encode its inputs back as outputs."""
    if not data:
        return
    body = data[3:] if data[0] & 1 else data[1:]
    length = None
    if data[0] & 1:
        length = parse_header_length(str(int.from_bytes(data[1:3], "big") % (len(body) + 1)), len(body))
    request = parse_infer_request(body, length)
    encoded, header = encode_infer_response("m", request.inputs, request)
    assert header is None or 0 < header <= len(encoded)

