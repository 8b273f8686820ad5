"""KServe's Open Inference Protocol v2 (REST) with Triton's binary tensor data extension.

Pure functions from bytes to values and back: no sockets, no models. Every problem in a
request raises :class:`RequestError` carrying the HTTP status and one line saying what was
wrong and how to fix it; nothing else may escape a parser (the fuzz tests check it).

An infer request is a JSON object::

    {"id": "7", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
     "outputs": [{"name": "y", "parameters": {"binary_data": true}}]}

With the binary extension the JSON header is followed by the raw little-endian bytes of
the inputs that give ``parameters.binary_data_size``, in input order, and the header's
length is sent as ``Inference-Header-Content-Length``. Responses do the same for the
outputs asked for in binary (``binary_data`` per output, or ``binary_data_output`` for all).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import TfedgeError

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "InferRequest",
    "RequestError",
    "datatype_of",
    "encode_infer_response",
    "parse_header_length",
    "parse_infer_request",
]

#: The request and response header that gives the JSON part's length in binary bodies.
HEADER_LENGTH = "Inference-Header-Content-Length"

#: v2 datatype names and their little-endian numpy types (BYTES, strings, is not served).
DATATYPES: Dict[str, np.dtype] = {
    name: np.dtype(code).newbyteorder("<")
    for name, code in (
        ("BOOL", "?"), ("UINT8", "u1"), ("UINT16", "u2"), ("UINT32", "u4"), ("UINT64", "u8"),
        ("INT8", "i1"), ("INT16", "i2"), ("INT32", "i4"), ("INT64", "i8"),
        ("FP16", "f2"), ("FP32", "f4"), ("FP64", "f8"),
    )
}
_NAMES = {dtype.newbyteorder("="): name for name, dtype in DATATYPES.items()}
_MAX_RANK = 32  # numpy's limit
_LITTLE = sys.byteorder == "little"


class RequestError(TfedgeError, ValueError):
    """A request the server refuses: ``status`` is the HTTP status, the message one line."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InferRequest:
    """A parsed infer request: inputs by name, and how each output is wanted.

    Attributes:
        inputs: ``{name: array}`` in request order, shaped and typed as sent.
        outputs: The outputs asked for, ``(name, binary)``; empty: all of them.
        binary_output: The default for outputs not listed (``binary_data_output``).
        id: The request's ``id``, echoed in the response.
    """

    inputs: Dict[str, np.ndarray]
    outputs: Tuple[Tuple[str, Optional[bool]], ...]
    binary_output: bool
    id: Optional[str]


def datatype_of(dtype: np.dtype) -> str:
    """The v2 name of a numpy dtype (``FP32``); a RequestError (500) for one v2 has no name for."""
    name = _NAMES.get(np.dtype(dtype).newbyteorder("="))
    if name is None:
        raise RequestError(f"Tensors of dtype {np.dtype(dtype).name} cannot be sent over v2 (no datatype for it).",
                           500)
    return name


def parse_header_length(value: Optional[str], body_size: int) -> Optional[int]:
    """The ``Inference-Header-Content-Length`` header as a byte count within the body, or None."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 12 or int(text) > body_size:
        raise RequestError(f"{HEADER_LENGTH} must be the JSON header's size in bytes, at most the body's "
                           f"{body_size}, got {value[:40]!r}.")
    return int(text)


def _json_object(data: bytes, what: str) -> Dict[str, Any]:
    """``data`` decoded as one JSON object."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise RequestError(f"The {what} nests too deeply to be read.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise RequestError(f"The {what} is not valid JSON ({str(exc).splitlines()[0][:120]}).") from None
    if not isinstance(doc, dict):
        raise RequestError(f"The {what} must be a JSON object, got {type(doc).__name__}.")
    return doc


def _parameters(item: Dict[str, Any], where: str) -> Dict[str, Any]:
    """An object's optional ``parameters`` object."""
    params = item.get("parameters", {})
    if not isinstance(params, dict):
        raise RequestError(f"{where}: 'parameters' must be a JSON object.")
    return params


def _flag(params: Dict[str, Any], key: str, where: str) -> Optional[bool]:
    """An optional boolean parameter."""
    value = params.get(key)
    if value is not None and not isinstance(value, bool):
        raise RequestError(f"{where}: parameter {key!r} must be true or false, got {json.dumps(value)[:40]}.")
    return value


def _shape(value: Any, where: str) -> Tuple[int, ...]:
    """A list of dimensions >= 0."""
    if not isinstance(value, list) or len(value) > _MAX_RANK or not all(
            type(d) is int and 0 <= d < 2 ** 40 for d in value) or _size(tuple(max(d, 1) for d in value)) > 2 ** 40:
        raise RequestError(f"{where}: 'shape' must be a list of at most {_MAX_RANK} whole numbers >= 0 "
                           f"(at most 2**40 elements), got {json.dumps(value)[:60]}.")
    return tuple(value)


def _size(shape: Tuple[int, ...]) -> int:
    """The element count of a shape (a Python int: no overflow)."""
    n = 1
    for d in shape:
        n *= d
    return n


def _from_json(data: Any, datatype: str, shape: Tuple[int, ...], where: str) -> np.ndarray:
    """The ``data`` list of an input as an array of ``datatype`` and ``shape``."""
    if not isinstance(data, list):
        raise RequestError(f"{where}: 'data' must be a list of {datatype} values (flat or nested), "
                           f"got {type(data).__name__}.")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged or too deep
        array = np.asarray([None], dtype=object)
    kind = array.dtype.kind
    wanted = "b" if datatype == "BOOL" else "iu" if datatype[0] in "IU" else "iuf"
    if kind not in wanted and not (array.size == 0 and kind == "f"):
        content = {"b": "true/false", "iu": "whole numbers", "iuf": "numbers"}[wanted]
        raise RequestError(f"{where}: 'data' must hold {content} for datatype {datatype} in a list of the "
                           "shape's size (flat, or nested with equal lengths).")
    dtype = DATATYPES[datatype]
    if kind in "iu" and array.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if int(array.min()) < info.min or int(array.max()) > info.max:
            raise RequestError(f"{where}: 'data' holds values outside {datatype}'s range {info.min}..{info.max}.")
    if array.size != _size(shape):
        raise RequestError(f"{where}: shape {list(shape)} needs {_size(shape)} values, 'data' has {array.size}.")
    return array.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def parse_infer_request(body: bytes, header_length: Optional[int] = None) -> InferRequest:
    """Parse an infer request: JSON, or a JSON header of ``header_length`` bytes and binary tensors.

    Raises:
        RequestError: (400) the body breaks the protocol; the message says where and how.
    """
    if header_length is None:
        header_length = len(body)
    doc = _json_object(body[:header_length], "request's JSON" if header_length == len(body) else
                       f"JSON header (the first {header_length} bytes)")
    binary = memoryview(body)[header_length:]
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise RequestError("The request's 'id' must be a string.")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise RequestError("The request needs 'inputs': a list of {\"name\", \"shape\", \"datatype\", \"data\"} "
                           "objects.")
    inputs: Dict[str, np.ndarray] = {}
    offset = 0
    for i, item in enumerate(raw_inputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RequestError(f"inputs[{i}] must be an object with a string 'name'.")
        name = item["name"]
        where = f"Input {name[:80]!r}"
        if name in inputs:
            raise RequestError(f"{where} is given twice.")
        shape = _shape(item.get("shape"), where)
        datatype = item.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise RequestError(f"{where}: datatype {json.dumps(datatype)[:40]} is not served. "
                               f"Use one of: {', '.join(DATATYPES)}.")
        size = _parameters(item, where).get("binary_data_size")
        if size is None:
            inputs[name] = _from_json(item.get("data"), datatype, shape, where)
            continue
        if type(size) is not int or size < 0:
            raise RequestError(f"{where}: 'binary_data_size' must be a whole number of bytes.")
        dtype = DATATYPES[datatype]
        if size != _size(shape) * dtype.itemsize:
            raise RequestError(f"{where}: shape {list(shape)} of {datatype} is {_size(shape) * dtype.itemsize} "
                               f"bytes, 'binary_data_size' says {size}.")
        if offset + size > len(binary):
            raise RequestError(f"{where}: its {size} bytes of binary data run past the body's end "
                               f"({len(binary) - offset} left).")
        array = np.frombuffer(binary[offset:offset + size], dtype=dtype).reshape(shape)
        inputs[name] = array if _LITTLE else array.astype(dtype.newbyteorder("="))
        offset += size
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} bytes follow the JSON header that no input's "
                           "'binary_data_size' accounts for.")
    raw_outputs = doc.get("outputs", [])
    if not isinstance(raw_outputs, list):
        raise RequestError("The request's 'outputs' must be a list of {\"name\"} objects.")
    outputs: List[Tuple[str, Optional[bool]]] = []
    for i, item in enumerate(raw_outputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RequestError(f"outputs[{i}] must be an object with a string 'name'.")
        where = f"Output {item['name'][:80]!r}"
        outputs.append((item["name"], _flag(_parameters(item, where), "binary_data", where)))
    binary_output = _flag(_parameters(doc, "The request"), "binary_data_output", "The request")
    return InferRequest(inputs, tuple(outputs), bool(binary_output), rid)


def encode_infer_response(model: str, outputs: Dict[str, np.ndarray], request: InferRequest
                          ) -> Tuple[bytes, Optional[int]]:
    """The response body for ``outputs``, and the JSON header's length when binary data follows.

    Raises:
        RequestError: (400) an output asked for that the model lacks.
    """
    wanted = request.outputs or tuple((name, None) for name in outputs)
    entries: List[Dict[str, Any]] = []
    chunks: List[bytes] = []
    for name, binary in wanted:
        array = outputs.get(name)
        if array is None:
            raise RequestError(f"Unknown output {name!r}. Available: {', '.join(map(repr, outputs))}.", 400)
        entry: Dict[str, Any] = {"name": name, "datatype": datatype_of(array.dtype), "shape": list(array.shape)}
        if request.binary_output if binary is None else binary:
            data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            entry["data"] = array.reshape(-1).tolist()
        entries.append(entry)
    doc: Dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": entries}
    if request.id is not None:
        doc["id"] = request.id
    header = json.dumps(doc, separators=(",", ":")).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)
