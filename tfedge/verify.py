"""Structural checks on a .tflite file before native code sees it.

The TFLite runtimes trust the flatbuffer they are given: a corrupt offset or length makes
them read outside the file, which kills the process (SIGSEGV) or hangs it. `verify_model`
walks every table reachable from the root ``Model`` with bounds checks of its own, then
checks the indices the runtime follows blindly (tensors, buffers, operator codes,
subgraphs), so a damaged file raises :class:`~tfedge.errors.ModelError` instead.

It reads the flatbuffer itself (no ``flatbuffers`` package) and never touches the bytes of
constant buffers, so it costs far less than loading the model.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass
from typing import NoReturn

from tfedge._opnames import BUILTIN_OPERATOR_NAMES
from tfedge.errors import ModelError

__all__ = ["ModelSummary", "verify_model"]

_HINT = "The file is corrupt or truncated; download or copy it again."
_SCHEMA_VERSION = 3
_CUSTOM = 32  # BuiltinOperator.CUSTOM
_MAX_RANK = 16
# Kernels count elements in a C int (RuntimeShape::FlatSize), so more cannot run.
_MAX_ELEMENTS = (1 << 31) - 1

# TensorType code -> bytes per element; None where the size is not fixed (strings,
# resources, variants) or below a byte (INT4, INT2, UINT4 are stored packed).
_ITEMSIZE: tuple[int | None, ...] = (
    4, 2, 4, 1, 8, None, 1, 2, 8, 1, 8, 16, 8, None, None, 4, 2, None, 2, None, None, 1, 1
)
_STRING = 5

# Union member counts (schema.fbs): larger type codes come from a newer schema.
_NUM_BUILTIN_OPTIONS = 127
_NUM_BUILTIN_OPTIONS_2 = 24

# Option tables whose fields the runtime follows as offsets: type -> ((slot, kind), ...)
# where kind is the element size of a vector, or "s" for a string.
_OPTION_OFFSETS: dict[int, tuple[tuple[int, int | str], ...]] = {
    3: ((1, 4), (2, 4)),  # ConcatEmbeddingsOptions
    8: ((5, 1),),  # FullyConnectedOptions
    17: ((0, 4),),  # ReshapeOptions.new_shape
    30: ((0, 4),),  # SqueezeOptions.squeeze_dims
    111: ((0, "s"), (1, "s")),  # VarHandleOptions
    115: ((0, 4),),  # BucketizeOptions.boundaries
}
_OPTION_2_OFFSETS: dict[int, tuple[tuple[int, int | str], ...]] = {
    2: ((0, 8),),  # StablehloBroadcastInDimOptions
    3: ((0, 8), (1, 8), (2, 8)),  # StablehloSliceOptions
    4: ((0, 8), (1, 8), (2, 8), (3, 8), (4, 1), (7, 8), (10, 8), (13, 8), (16, 4)),
    5: ((0, "s"), (2, "s"), (4, 4), (5, 1)),  # StablehloCustomCallOptions
    6: ((0, 8),),  # StablehloReduceOptions
    7: ((1, 8), (2, 8), (3, 8)),  # StablehloScatterOptions
    9: ((0, 8),),  # StablehloDynamicSliceOptions
    10: ((0, 8), (1, 8), (2, 8)),  # StablehloPadOptions
    12: ((0, 8), (1, 8), (2, 8), (3, 8), (4, 4)),  # StablehloDotGeneralOptions
    13: ((0, 8), (1, 8), (2, 8), (3, 8), (4, 8)),  # StablehloReduceWindowOptions
    16: ((0, 8), (1, 8), (2, 8), (4, 8)),  # StablehloGatherOptions
    17: ((0, 8),),  # StablehloTransposeOptions
    21: ((0, "s"), (2, 1)),  # StableHLOCompositeOptions
    23: ((0, 4),),  # StablehloCaseOptions
}
# Option fields holding a subgraph index: type -> slots (int32; CallOptions is uint32).
_SUBGRAPH_SLOTS: dict[int, tuple[int, ...]] = {16: (0,), 92: (0, 1), 93: (0, 1), 103: (0,)}
_SUBGRAPH_SLOTS_2: dict[int, tuple[int, ...]] = {
    6: (1,), 7: (6,), 13: (5,), 14: (2,), 15: (0, 1), 21: (1,)
}
_CASE_BRANCHES = 23  # StablehloCaseOptions: a vector of subgraph indices

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_HEADER = struct.Struct("<HH")


@dataclass(frozen=True)
class ModelSummary:
    """What `verify_model` learned about a model on the way.

    Attributes:
        version: Schema version of the file (3 for every current model).
        description: The converter's description string, "" if absent.
        num_subgraphs: Number of subgraphs, including control-flow bodies.
        operator_counts: Operator name -> number of uses across all subgraphs; builtin ops
            by enum name ("CONV_2D"), custom ops as "CUSTOM:<custom_code>".
        custom_ops: Custom codes that are not Select-TF ops, sorted.
        flex_ops: TensorFlow op names of Select-TF ops (custom code "FlexSoftplus" gives
            "Softplus"), sorted.
        op_versions: Builtin op name -> highest version the model asks for.
        signature_keys: Signature keys in file order.
        metadata_names: Names of the metadata entries in file order.
        num_buffers: Number of buffers.
        num_tensors: Number of tensors across all subgraphs.
    """

    version: int
    description: str
    num_subgraphs: int
    operator_counts: dict[str, int]
    custom_ops: tuple[str, ...]
    flex_ops: tuple[str, ...]
    op_versions: dict[str, int]
    signature_keys: tuple[str, ...]
    metadata_names: tuple[str, ...]
    num_buffers: int
    num_tensors: int


def _fail(message: str) -> NoReturn:
    """Raise the ModelError for a damaged file."""
    raise ModelError(f"{message} {_HINT}")


class _Reader:
    """Bounds-checked reads of flatbuffer tables, vectors and strings."""

    __slots__ = ("buf", "size", "budget")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.size = len(buf)
        # A valid file holds each table once in at least 4 bytes; offsets corrupted to
        # point back at the same tables could otherwise make the walk quadratic.
        self.budget = self.size // 4

    def table(self, pos: int, where: str, nfields: int) -> _Table:
        """Check the table at `pos` and its vtable; read the first `nfields` field offsets."""
        buf, size = self.buf, self.size
        if pos + 4 > size:
            _fail(f"{where} would start at byte {pos}, past the end of the {size}-byte file.")
        if pos & 3:
            _fail(f"{where} starts at byte {pos}, which is not a multiple of 4.")
        self.budget -= 1
        if self.budget < 0:
            _fail(f"{where} is one table too many: offsets in the file point back at tables "
                  "already read.")
        vt = pos - _I32.unpack_from(buf, pos)[0]
        if vt < 0 or vt + 4 > size or vt & 1:
            _fail(f"{where} has its vtable at byte {vt}, outside the {size}-byte file or "
                  "misaligned.")
        vt_size, obj_size = _HEADER.unpack_from(buf, vt)
        if vt_size < 4 or vt_size & 1 or vt + vt_size > size:
            _fail(f"{where} has a vtable of {vt_size} bytes at byte {vt}, which does not fit.")
        if obj_size < 4 or pos + obj_size > size:
            _fail(f"{where} claims {obj_size} bytes at byte {pos}, past the end of the file.")
        n = min((vt_size - 4) >> 1, nfields)
        offsets = struct.unpack_from(f"<{n}H", buf, vt + 4)
        for slot, off in enumerate(offsets):
            if off and not 4 <= off < obj_size:
                _fail(f"field {slot} of {where} is at offset {off}, outside the table's "
                      f"{obj_size} bytes.")
        return _Table(self, pos, offsets, obj_size, where)


class _Table:
    """One checked table; field accessors check that each field fits and is aligned."""

    __slots__ = ("r", "pos", "offsets", "obj_size", "where")

    def __init__(
        self, r: _Reader, pos: int, offsets: tuple[int, ...], obj_size: int, where: str
    ) -> None:
        self.r, self.pos, self.offsets, self.obj_size, self.where = (
            r, pos, offsets, obj_size, where
        )

    def _field(self, slot: int, width: int) -> int:
        """Absolute position of a field of `width` bytes, 0 when absent."""
        if slot >= len(self.offsets) or not (off := self.offsets[slot]):
            return 0
        if off + width > self.obj_size or (self.pos + off) % width:
            _fail(f"field {slot} of {self.where} does not fit its table or is misaligned.")
        return self.pos + off

    def scalar(self, slot: int, fmt: struct.Struct, default: int) -> int:
        """A scalar field, or `default` when absent."""
        pos = self._field(slot, fmt.size)
        return fmt.unpack_from(self.r.buf, pos)[0] if pos else default

    def target(self, slot: int, name: str) -> int:
        """Where an offset field points, 0 when absent."""
        pos = self._field(slot, 4)
        if not pos:
            return 0
        offset = _U32.unpack_from(self.r.buf, pos)[0]
        if not 0 < offset < 1 << 31:  # as the flatbuffers verifier: no self or wrapped offsets
            _fail(f"the {name} field of {self.where} holds the offset {offset}, which no "
                  "flatbuffer writer produces.")
        dest = pos + offset
        if dest + 4 > self.r.size:
            _fail(f"the {name} field of {self.where} points at byte {dest}, past the end of "
                  f"the {self.r.size}-byte file.")
        return dest

    def vector(self, slot: int, width: int, name: str) -> tuple[int, int]:
        """(start of elements, count) of a vector field; (0, 0) when absent."""
        pos = self.target(slot, name)
        if not pos:
            return 0, 0
        n = _U32.unpack_from(self.r.buf, pos)[0]
        if n > (self.r.size - pos - 4) // width:
            _fail(f"the {name} field of {self.where} points at a vector of {n} elements at "
                  f"byte {pos}, more than the {self.r.size}-byte file holds.")
        if pos & 3:
            _fail(f"the {name} field of {self.where} points at a vector at byte {pos}, which "
                  "is not a multiple of 4.")
        return pos + 4, n

    def ints(self, slot: int, code: str, name: str) -> tuple[int, ...] | None:
        """A vector of little-endian integers of struct `code`; None when absent."""
        if slot >= len(self.offsets) or not self.offsets[slot]:
            return None
        start, n = self.vector(slot, struct.calcsize(code), name)
        return struct.unpack_from(f"<{n}{code}", self.r.buf, start)

    def string(self, slot: int, name: str) -> str | None:
        """A string field; None when absent."""
        start, n = self.vector(slot, 1, name)
        if not start:
            return None
        # The runtime reads names as C strings: without the terminator it reads on.
        if start + n >= self.r.size or self.r.buf[start + n]:
            _fail(f"the {name} field of {self.where} is not a terminated string.")
        try:  # flatbuffer strings are UTF-8; the Python wrappers decode names strictly
            return str(self.r.buf[start:start + n], "utf-8")
        except UnicodeDecodeError:
            _fail(f"the {name} field of {self.where} is not valid UTF-8 text.")

    def tables(self, slot: int, name: str, item: str, nfields: int) -> list[_Table]:
        """The tables of a vector-of-tables field; `item` names element i via format()."""
        start, n = self.vector(slot, 4, name)
        buf, table = self.r.buf, self.r.table
        return [
            table(p + _U32.unpack_from(buf, p)[0], item.format(i), nfields)
            for i, p in enumerate(range(start, start + 4 * n, 4))
        ]

    def table(self, slot: int, name: str, nfields: int) -> _Table | None:
        """A sub-table field; None when absent."""
        pos = self.target(slot, name)
        return self.r.table(pos, f"the {name} of {self.where}", nfields) if pos else None


def _check_indices(
    values: tuple[int, ...] | None, limit: int, what: str, noun: str, optional: bool = False
) -> None:
    """Fail unless every index is in [0, limit) (or -1 when `optional`)."""
    if not values:
        return
    low = -1 if optional else 0
    if min(values) < low or max(values) >= limit:
        bad = next(v for v in values if v < low or v >= limit)
        _fail(f"{what} points at {noun} {bad}; the model has {limit} {noun}s there.")


def verify_model(
    data: bytes | bytearray | memoryview, *, file_size: int | None = None
) -> ModelSummary:
    """Check that a .tflite file is structurally sound before a runtime loads it.

    Every offset, vector and string reachable from the root table must lie inside `data`,
    every index (tensors, buffers, operator codes, subgraphs) must be in range, shapes must
    be sane and constant buffers must hold exactly the bytes their tensor's shape needs.

    Args:
        data: The whole flatbuffer (usually the whole file).
        file_size: Size of the file when `data` holds only its flatbuffer part; buffers
            stored outside the flatbuffer (models over 2 GB) must end within it. Defaults
            to ``len(data)``.

    Returns:
        A summary of the model: operators, custom and Select-TF ops, signatures.

    Raises:
        ValueError: `file_size` is less than ``len(data)``.
        ModelError: The file is not a TFLite model, or it is corrupt or truncated; the
            message says what is wrong and where.
    """
    buf = memoryview(data).cast("B")
    size = len(buf)
    total = size if file_size is None else file_size
    if total < size:
        raise ValueError(f"file_size is {file_size}, less than the {size} bytes of data given.")
    if size < 8:
        _fail(f"a TFLite model has at least 8 bytes, this one has {size}.")
    if bytes(buf[4:8]) != b"TFL3":
        raise ModelError(
            f"not a TFLite model: expected the identifier 'TFL3' at byte 4, found "
            f"{bytes(buf[4:8])!r}. Pass a .tflite file (convert other formats with "
            "tfedge-convert)."
        )
    r = _Reader(buf)
    model = r.table(_U32.unpack_from(buf, 0)[0], "the model", 8)
    version = model.scalar(0, _U32, 0)
    if version != _SCHEMA_VERSION:
        raise ModelError(
            f"the model has schema version {version}; TFLite runtimes read version "
            f"{_SCHEMA_VERSION}. Convert the model again with a current TensorFlow."
        )
    description = model.string(3, "description") or ""

    buffer_sizes = [_buffer_size(b, total) for b in model.tables(4, "buffers", "buffer {}", 3)]
    num_buffers = len(buffer_sizes)

    opcodes = [_opcode(c) for c in model.tables(1, "operator codes", "operator code {}", 4)]
    subgraph_tables = model.tables(2, "subgraphs", "subgraph {}", 5)
    if not subgraph_tables:
        raise ModelError("the model has no subgraphs, so there is nothing to run. " + _HINT)
    num_subgraphs = len(subgraph_tables)
    counts: Counter[str] = Counter()
    calls: list[set[int]] = []
    tensor_counts = []
    for i, sg in enumerate(subgraph_tables):
        num_tensors, callees = _subgraph(
            sg, i, opcodes, buffer_sizes, num_subgraphs, total, counts
        )
        tensor_counts.append(num_tensors)
        calls.append(callees)
    _check_no_recursion(calls)

    model.ints(5, "i", "metadata buffer list")  # checked for bounds only: runtimes ignore it
    metadata_names = []
    for entry in model.tables(6, "metadata", "metadata {}", 2):
        metadata_names.append(entry.string(0, "name") or "")
        _check_indices((entry.scalar(1, _U32, 0),), num_buffers, entry.where, "buffer")

    signature_keys = []
    for sig in model.tables(7, "signature defs", "signature {}", 5):
        signature_keys.append(sig.string(2, "key") or "")
        index = sig.scalar(4, _U32, 0)
        _check_indices((index,), num_subgraphs, sig.where, "subgraph")
        for slot, kind in ((0, "input"), (1, "output")):
            for tmap in sig.tables(slot, f"{kind}s", f"{kind} {{}} of {sig.where}", 2):
                tmap.string(0, "name")
                tensor = tmap.scalar(1, _U32, 0)
                _check_indices((tensor,), tensor_counts[index], tmap.where, "tensor")

    custom_codes = {code for _, code, _ in opcodes if code is not None}
    op_versions: dict[str, int] = {}
    for name, code, opversion in opcodes:
        if code is None:
            op_versions[name] = max(op_versions.get(name, 0), opversion)
    return ModelSummary(
        version=version,
        description=description,
        num_subgraphs=num_subgraphs,
        operator_counts=dict(counts),
        custom_ops=tuple(sorted(c for c in custom_codes if not c.startswith("Flex"))),
        flex_ops=tuple(sorted(c[4:] for c in custom_codes if c.startswith("Flex"))),
        op_versions=op_versions,
        signature_keys=tuple(signature_keys),
        metadata_names=tuple(metadata_names),
        num_buffers=num_buffers,
        num_tensors=sum(tensor_counts),
    )


def _buffer_size(buffer: _Table, total: int) -> int | None:
    """Bytes of constant data in a Buffer table, inside or after the flatbuffer; None if none."""
    start, n = buffer.vector(0, 1, "data")
    offset = buffer.scalar(1, _U64, 0)
    if offset > 1:  # 0 and 1 mean "no external data" (schema.fbs)
        length = buffer.scalar(2, _U64, 0)
        if offset + length > total:
            _fail(f"{buffer.where} holds {length} bytes at byte {offset} of the file, past "
                  f"its end at byte {total}.")
        return length
    return n if start else None


def _opcode(code: _Table) -> tuple[str, str | None, int]:
    """(op name, custom code or None for builtins, version) of an OperatorCode table."""
    # Codes above 127 live in builtin_code; older files only have the int8 field.
    builtin = max(code.scalar(0, _I8, 0), code.scalar(3, _I32, 0))
    version = code.scalar(2, _I32, 1)
    custom = code.string(1, "custom code")
    if builtin == _CUSTOM:
        if custom is None:
            _fail(f"{code.where} is a custom op without a custom code.")
        return f"CUSTOM:{custom}", custom, version
    if builtin < 0:
        _fail(f"{code.where} has the builtin code {builtin}; codes are never negative.")
    if builtin < len(BUILTIN_OPERATOR_NAMES):
        return BUILTIN_OPERATOR_NAMES[builtin], None, version
    # A newer schema than ours: the runtime decides whether it knows the op.
    return f"BUILTIN_{builtin}", None, version


def _subgraph(
    sg: _Table,
    index: int,
    opcodes: list[tuple[str, str | None, int]],
    buffer_sizes: list[int | None],
    num_subgraphs: int,
    total: int,
    counts: Counter[str],
) -> tuple[int, set[int]]:
    """Check one subgraph; count its ops; return its tensor count and the subgraphs it calls."""
    tensors = sg.tables(0, "tensors", f"tensor {{}} in subgraph {index}", 10)
    for tensor in tensors:
        _tensor(tensor, buffer_sizes)
    num_tensors = len(tensors)
    _check_indices(sg.ints(1, "i", "inputs"), num_tensors, f"an input of {sg.where}", "tensor")
    _check_indices(
        sg.ints(2, "i", "outputs"), num_tensors, f"an output of {sg.where}", "tensor"
    )
    sg.string(4, "name")
    callees: set[int] = set()
    ops = sg.tables(3, "operators", f"operator {{}} in subgraph {index}", 13)
    for op in ops:
        opcode = op.scalar(0, _U32, 0)
        _check_indices((opcode,), len(opcodes), op.where, "operator code")
        name = opcodes[opcode][0]
        counts[name] += 1
        what = f"{op.where} ({name})"
        _check_indices(
            op.ints(1, "i", "inputs"), num_tensors, f"an input of {what}", "tensor", True
        )
        _check_indices(op.ints(2, "i", "outputs"), num_tensors, f"an output of {what}", "tensor")
        _check_indices(
            op.ints(8, "i", "intermediates"), num_tensors, f"an intermediate of {what}", "tensor"
        )
        op.vector(5, 1, "custom options")
        op.vector(7, 1, "mutating variable inputs")
        offset, length = op.scalar(9, _U64, 0), op.scalar(10, _U64, 0)
        if offset + length > total:
            _fail(f"the custom options of {what} are {length} bytes at byte {offset} of the "
                  f"file, past its end at byte {total}.")
        for type_slot, known, offsets, subgraph_slots in (
            (3, _NUM_BUILTIN_OPTIONS, _OPTION_OFFSETS, _SUBGRAPH_SLOTS),
            (11, _NUM_BUILTIN_OPTIONS_2, _OPTION_2_OFFSETS, _SUBGRAPH_SLOTS_2),
        ):
            kind = op.scalar(type_slot, _U8, 0)
            options = op.table(type_slot + 1, "options", 32) if kind else None
            if options is None or kind >= known:
                continue
            for slot, width in offsets.get(kind, ()):
                if width == "s":
                    options.string(slot, f"#{slot}")
                else:
                    options.vector(slot, width, f"#{slot}")
            called = [options.scalar(slot, _I32, 0) for slot in subgraph_slots.get(kind, ())]
            if type_slot == 11 and kind == _CASE_BRANCHES:
                called += options.ints(0, "i", "branch subgraphs") or ()
            _check_indices(tuple(called), num_subgraphs, f"the options of {what}", "subgraph")
            callees.update(called)
    return num_tensors, callees


def _tensor(tensor: _Table, buffer_sizes: list[int | None]) -> None:
    """Check a tensor's shape, type, buffer, quantization and sparsity."""
    where = tensor.where
    shape = _dims(tensor, 0, "shape")
    if shape and min(shape) < 0:
        _fail(f"{where} has the shape {list(shape)}, with a negative dimension.")
    signature = _dims(tensor, 7, "shape signature")
    if signature and min(signature) < -1:  # -1 marks a dynamic dimension
        _fail(f"{where} has the shape signature {list(signature)}, with a dimension below -1.")
    elements = math.prod(shape)
    if elements > _MAX_ELEMENTS:
        _fail(f"{where} has the shape {list(shape)}, {elements} elements; TFLite counts "
              f"elements in 32-bit integers, so at most {_MAX_ELEMENTS} can run.")
    dtype = tensor.scalar(1, _I8, 0)
    if dtype < 0:
        _fail(f"{where} has the element type {dtype}; types are never negative.")
    buffer = tensor.scalar(2, _U32, 0)
    if buffer >= len(buffer_sizes) and (buffer or buffer_sizes):
        _fail(f"{where} points at buffer {buffer}; the model has {len(buffer_sizes)} buffers.")
    tensor.string(3, "name")
    sparsity = tensor.table(6, "sparsity", 3)
    if sparsity is not None:
        _sparsity(sparsity)
    # Buffer 0 is the empty sentinel; any other buffer with a data vector, even an empty
    # one, makes the tensor constant, and the runtimes refuse constant data of the wrong
    # size (sparse data is compressed, so it has its own size).
    nbytes = buffer_sizes[buffer] if buffer else None
    itemsize = _ITEMSIZE[dtype] if dtype < len(_ITEMSIZE) else None
    if nbytes is not None and itemsize and sparsity is None and nbytes != elements * itemsize:
        _fail(f"{where} has the shape {list(shape)} and {itemsize}-byte elements, so its "
              f"buffer {buffer} should hold {elements * itemsize} bytes, but it holds {nbytes}.")
    quant = tensor.table(4, "quantization", 7)
    if quant is not None:
        _quantization(quant, shape)
    for variant in tensor.tables(9, "variant tensors", f"variant {{}} of {where}", 3):
        variant.ints(0, "i", "shape")


def _dims(tensor: _Table, slot: int, name: str) -> tuple[int, ...]:
    """A shape vector, its rank checked before it is read."""
    start, rank = tensor.vector(slot, 4, name)
    if rank > _MAX_RANK:
        _fail(f"{tensor.where} has a {name} of rank {rank}; more than {_MAX_RANK} is not a "
              "real model.")
    return struct.unpack_from(f"<{rank}i", tensor.r.buf, start)


def _quantization(quant: _Table, shape: tuple[int, ...]) -> None:
    """Check the vectors of QuantizationParameters and the per-channel dimension."""
    quant.vector(0, 4, "min")
    quant.vector(1, 4, "max")
    _, scales = quant.vector(2, 4, "scale")
    _, zero_points = quant.vector(3, 8, "zero point")
    if quant.scalar(4, _U8, 0):
        details = quant.table(5, "details", 8)
        if details is not None and quant.scalar(4, _U8, 0) == 1:  # CustomQuantization
            details.vector(0, 1, "custom data")
    if not scales:
        return
    if zero_points != scales:
        _fail(f"{quant.where} has {scales} scales but {zero_points} zero points; they must "
              "match.")
    dim = quant.scalar(6, _I32, 0)
    if scales > 1 and shape and (not 0 <= dim < len(shape) or shape[dim] != scales):
        _fail(f"{quant.where} has {scales} per-channel scales along dimension {dim}, which "
              f"does not fit the shape {list(shape)}.")


def _sparsity(sparsity: _Table) -> None:
    """Check the vectors and dimension metadata of SparsityParameters."""
    sparsity.ints(0, "i", "traversal order")
    sparsity.ints(1, "i", "block map")
    widths = {1: 4, 2: 2, 3: 1}  # SparseIndexVector: Int32Vector, Uint16Vector, Uint8Vector
    for dim in sparsity.tables(2, "dimension metadata", f"dimension {{}} of {sparsity.where}", 6):
        for type_slot in (2, 4):
            kind = dim.scalar(type_slot, _U8, 0)
            vector = dim.table(type_slot + 1, "index vector", 1) if kind else None
            if vector is not None and kind in widths:
                vector.vector(0, widths[kind], "values")


def _check_no_recursion(calls: list[set[int]]) -> None:
    """Fail if control-flow ops make a subgraph call itself, which recurses without end."""
    state = [0] * len(calls)  # 0 unseen, 1 on the current path, 2 done
    for root in range(len(calls)):
        if state[root]:
            continue
        stack = [(root, iter(calls[root]))]
        state[root] = 1
        while stack:
            node, callees = stack[-1]
            callee = next(callees, None)
            if callee is None:
                state[node] = 2
                stack.pop()
            elif state[callee] == 1:
                _fail(f"subgraph {node} calls subgraph {callee}, which is already running: "
                      "control flow that never ends.")
            elif not state[callee]:
                state[callee] = 1
                stack.append((callee, iter(calls[callee])))
