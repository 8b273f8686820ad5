"""Structural checks on a .tflite file before native code sees it.

The TFLite runtimes trust the flatbuffer they are given: a corrupt offset or length makes
them read outside the file, which kills the process (SIGSEGV) or hangs it. `verify_model`
walks every table reachable from the root ``Model`` with bounds checks of its own, then
checks the indices the runtime follows blindly (tensors, buffers, operator codes,
subgraphs), so a damaged file raises :class:`~tfedge.errors.ModelError` instead.

It reads the flatbuffer itself (no ``flatbuffers`` package) and never touches the bytes of
constant buffers. To cost far less than loading the model it works on batches: the tables of
one type (every tensor of every subgraph, every operator, ...) are read field by field into
lists checked with C-level builtins (``min``, ``max``, ``any``), and each vtable is checked
once however many tables share it. Python code runs per table only to word an error.
"""

from __future__ import annotations

import array
import math
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from bisect import bisect_right
from functools import partial, reduce
from itertools import accumulate, chain
from operator import add, or_
# typing's Callable/Sequence, not collections.abc's: the aliases below are evaluated at
# import time, and collections.abc types are not subscriptable on Python 3.8.
from typing import Any, Callable, Iterable, NoReturn, Optional, Sequence

from tfedge._opnames import BUILTIN_OPERATOR_NAMES
from tfedge.errors import ModelError

__all__ = ["TENSOR_TYPE_NAMES", "ModelSummary", "TensorInfo", "verify_model"]

#: TensorType names (schema.fbs), by code.
TENSOR_TYPE_NAMES = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16", "COMPLEX64",
    "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT", "UINT32", "UINT16",
    "INT4", "BFLOAT16", "INT2", "UINT4", "FLOAT8_E4M3FN", "FLOAT8_E5M2",
)

_HINT = "The file is corrupt or truncated; download or copy it again."
_QUANT_HINT = ("The backend would crash the process on it. The file is damaged or its quantization was "
               "written wrong; quantize the model again or download it again.")
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

# Quantized types: INT8, UINT8, INT16 (schema.fbs codes), and the zero points each can hold.
_ZERO_POINTS = {9: (-128, 127), 3: (0, 255), 7: (-32768, 32767)}
_QUANTIZED_TYPES = frozenset(_ZERO_POINTS)
# Float32 bit patterns: a positive finite scale is above +0.0 and below +inf (the sign bit,
# infinities and NaNs are all at or above it).
_INF_BITS = 0x7F800000
# Builtin ops whose integer kernels requantize: they divide by the scale of their activations
# (the ``params.scale`` TFLite keeps only for a single scale) when they prepare, and abort the
# process (a TFLITE_CHECK in QuantizeMultiplier) on a missing, zero or non-finite one. Name ->
# the indices of the activation inputs among the op's inputs (None: all of them); the other
# inputs are weights (per-channel scales allowed, not read), and every output is an activation.
_REQUANTIZING: dict[str, tuple[int, ...] | None] = {
    **dict.fromkeys(("ADD", "SUB", "MUL", "SQUARED_DIFFERENCE", "CONCATENATION")),
    **dict.fromkeys(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "AVERAGE_POOL_2D",
                     "SOFTMAX", "LOGISTIC", "TANH", "MEAN", "SUM", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6",
                     "PRELU", "QUANTIZE"), (0,)),
    "TRANSPOSE_CONV": (2,),
}
#: Ops whose first N inputs every kernel version reads: none of them may be missing or -1.
_REQUIRED_INPUTS: dict[str, int] = {
    **dict.fromkeys(("ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM"), 2),
    **dict.fromkeys(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"), 2),
}
#: Of those, the kernels that check each input's multiplier is positive (ADD/SUB/SQUARED_DIFFERENCE
#: requantize every input "smaller than one", SOFTMAX scales its input "greater than one"): an input
#: scale of 0 aborts them. The others multiply the input scale in, so a 0 there (TensorFlow writes
#: it for an input that was all zeros in calibration: an LSTM's first state) is only a 0 multiplier.
_ZERO_INPUT_SCALE_ABORTS = frozenset({"ADD", "SUB", "SQUARED_DIFFERENCE", "SOFTMAX"})
#: Ops whose quantized kernels bring both inputs to twice the larger input scale, shift them left
#: by L bits, and requantize the result to the output scale (add.cc, sub.cc, squared_difference.cc,
#: Prepare): name -> ({input type on that path: L}, the power of the input scale the result has).
#: INT16 takes that path only where a scale is not a power of two (else, with the op's
#: pot_scale_int16, a path of shifts that cannot abort). The scales are float32 and the kernel doubles the larger input scale and multiplies the
#: output scale by 2^L in float32, so either can overflow to inf; the output multiplier,
#: (2 x larger input scale)^power / (2^L x output scale), goes to QuantizeMultiplierSmallerThanOneExp,
#: which aborts unless it is in (0, 1). SUB takes one above 1 too (QuantizeMultiplierGreaterThanOne)
#: in ai_edge_litert (tflite_runtime 2.14 aborts on it; a real model may have one, so it passes here).
_RESCALING: dict[str, tuple[dict[int, int], int]] = {
    **dict.fromkeys(("ADD", "SUB"), ({9: 20, 3: 20, 7: 15}, 1)),  # INT8, UINT8, INT16
    "SQUARED_DIFFERENCE": ({9: 14}, 2),  # INT8 only; L = 7 for each of the two factors
}
_INT16 = 7
_FLOAT32_MAX = 3.4028234663852886e38


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
        tensor_types: The TensorType codes the model's tensors use (schema.fbs numbering).
        quantization_details: The QuantizationDetails union types used (1 custom,
            2 blockwise, 3 multi-axis); empty for plain scale/zero-point quantization.
        subgraph_inputs: The input tensor indices of each subgraph, in the subgraph's order.
        subgraph_outputs: The output tensor indices of each subgraph, in order.
        main_io: The main subgraph's inputs and outputs as the file declares them.
        tensor_bytes: Bytes the tensors without constant data declare (shape times element
            size; strings and packed types left out): what a backend that plans with the
            declared shapes, as XNNPACK does, may allocate before it reuses any.
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
    tensor_types: frozenset[int] = frozenset()
    quantization_details: frozenset[int] = frozenset()
    subgraph_inputs: tuple[tuple[int, ...], ...] = ()
    subgraph_outputs: tuple[tuple[int, ...], ...] = ()
    main_io: tuple[TensorInfo, ...] = ()
    tensor_bytes: int = 0


@dataclass(frozen=True)
class TensorInfo:
    """An input or output of the main subgraph, as the file declares it.

    Attributes:
        kind: ``"input"`` or ``"output"``.
        name: The tensor's name ("" if it has none).
        shape: Its shape signature (-1 for a free dimension), else its shape.
        type: Its TensorType name (``FLOAT32``), or ``type N`` for a newer one.
    """

    kind: str
    name: str
    shape: tuple[int, ...]
    type: str


def _fail(message: str, hint: str = _HINT) -> NoReturn:
    """Raise the ModelError for a damaged file."""
    raise ModelError(f"{message} {hint}")


def _first(flags: Iterable[object]) -> int:
    """Index of the first true item."""
    return next(i for i, flag in enumerate(flags) if flag)


def _an(kind: str, where: Callable[[int], str]) -> Callable[[int], str]:
    """Names item i as "an <kind> of <where(i)>"."""
    return lambda i: f"an {kind} of {where(i)}"


def _options_of(what: Callable[[int], str], rows: Sequence[int]) -> Callable[[int], str]:
    """Names item i as "the options of <what(rows[i])>"."""
    return lambda i: f"the options of {what(rows[i])}"


def _view(buf: memoryview, code: str) -> Sequence[int]:
    """Little-endian integers of struct type `code` covering `buf`, indexable by element."""
    itemsize = struct.calcsize(code)
    whole = buf[: len(buf) // itemsize * itemsize]
    if sys.byteorder == "little":
        return whole.cast(code)  # type: ignore[call-overload]  # typeshed wants a literal code
    swapped = array.array(code, whole)  # a copy, only on big-endian hosts
    swapped.byteswap()
    return swapped


Namer = Callable[[int], str]
Mask = Optional[Sequence[bool]]

# Field kinds: a scalar's type code, a vector of 1, 2, 4 or 8-byte elements, a string,
# a table, or a vector of tables.
_CODES = {"u8": "B", "i8": "b", "u16": "H", "i32": "i", "u32": "I", "u64": "Q", "i64": "q"}
_WIDTHS = {"u8": 1, "i8": 1, "u16": 2, "i32": 4, "u32": 4, "u64": 8, "i64": 8}
_VECTORS = {"v1": 1, "v2": 2, "v4": 4, "v8": 8, "s": 1, "tv": 4}


class _Schema:
    """The fields to read from a table type: slot -> (kind, name in messages).

    Fields are checked in the order given, so list them in the order a reader would meet
    them.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: dict[int, tuple[str, str]]) -> None:
        # (slot, kind, name, width of the field itself: offsets are 4 bytes)
        self.fields = [(slot, kind, name, _WIDTHS.get(kind, 4))
                       for slot, (kind, name) in fields.items()]


class _VTable:
    """One checked vtable: the table size, field offsets by slot, schemas already fitted."""

    __slots__ = ("obj_size", "offsets", "fitted")

    def __init__(self, obj_size: int, offsets: tuple[int, ...]) -> None:
        self.obj_size, self.offsets = obj_size, offsets
        self.fitted: set[int] = set()


_ABSENT = _VTable(0, (0,) * 64)  # stands for tables a read leaves out


class _File:
    """The file as integer views, its checked vtables, and the budget of tables left to read."""

    __slots__ = ("buf", "size", "budget", "views", "vtables")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.size = size = len(buf)
        # A valid file holds each table once in at least 4 bytes; offsets corrupted to
        # point back at the same tables could otherwise make the walk quadratic.
        self.budget = size // 4
        # code -> (view, log2 of the element size); a byte position >> shift indexes the view.
        self.views = {kind: (_view(buf, code), _WIDTHS[kind].bit_length() - 1)
                      for kind, code in _CODES.items()}
        # fields read -> vtable position -> checked vtable: tables of a type share a few.
        self.vtables: dict[int, dict[int, _VTable]] = {}

    def tables(
        self, pos: list[int], nfields: int, where: Namer, rows: list[int], schema: _Schema
    ) -> _Tables:
        """Check the tables at byte positions `pos` and their vtables, then read `schema`.

        `where(i)` names table i in messages; `rows[i]` is the row of its parent.
        """
        size = self.size
        if pos and (max(pos) > size - 4 or reduce(or_, pos) & 3):
            i = _first(p > size - 4 or p & 3 for p in pos)
            if pos[i] > size - 4:
                _fail(f"{where(i)} would start at byte {pos[i]}, past the end of the "
                      f"{size}-byte file.")
            _fail(f"{where(i)} starts at byte {pos[i]}, which is not a multiple of 4.")
        self.spend(len(pos), where)
        i32 = self.views["i32"][0]
        starts = [p - i32[p >> 2] for p in pos]
        known = self.vtables.setdefault(nfields, {})
        distinct = set(starts)
        for vt in distinct.difference(known):
            i = starts.index(vt)
            known[vt] = self._vtable(vt, nfields, partial(where, i), pos[i])
        vtables = list(map(known.__getitem__, starts))
        if len(distinct) == 1:
            fits = max(pos) + vtables[0].obj_size <= size
        else:
            fits = not pos or max(map(add, pos, [vt.obj_size for vt in vtables])) <= size
        if not fits:
            i = _first(p + vt.obj_size > size for p, vt in zip(pos, vtables))
            _fail(f"{where(i)} claims {vtables[i].obj_size} bytes at byte {pos[i]}, past the end "
                  "of the file.")
        return _Tables(self, pos, vtables, len(distinct) == 1, where, rows, schema)

    def spend(self, n: int, where: Namer) -> None:
        """Take `n` tables from the budget; `where(i)` names the i-th of them."""
        if self.budget < n:
            _fail(f"{where(self.budget)} is one table too many: offsets in the file point back "
                  "at tables already read.")
        self.budget -= n

    def _vtable(self, vt: int, nfields: int, name: Callable[[], str], pos: int) -> _VTable:
        """Check the vtable at byte `vt` of the table at `pos`, named by `name()`; keep
        `nfields` slots."""
        size = self.size
        if vt < 0 or vt > size - 4 or vt & 1:
            _fail(f"{name()} has its vtable at byte {vt}, outside the {size}-byte file or "
                  "misaligned.")
        u16 = self.views["u16"][0]
        vt_size, obj_size = u16[vt >> 1], u16[(vt >> 1) + 1]
        if vt_size < 4 or vt_size & 1 or vt + vt_size > size:
            _fail(f"{name()} has a vtable of {vt_size} bytes at byte {vt}, which does not fit.")
        if obj_size < 4:
            _fail(f"{name()} claims {obj_size} bytes at byte {pos}, past the end of the file.")
        first = (vt >> 1) + 2
        listed = u16[first:first + min((vt_size - 4) >> 1, nfields)]
        for slot, off in enumerate(listed):
            if off and not 4 <= off < obj_size:
                _fail(f"field {slot} of {name()} is at offset {off}, outside the table's "
                      f"{obj_size} bytes.")
        return _VTable(obj_size, tuple(listed) + (0,) * (nfields - len(listed)))


class _Tables:
    """A batch of checked tables of one type, with the fields of its schema read.

    ``fields[slot]`` has, by kind: a list of the scalar's values (0 where absent); two lists,
    starts of elements and counts, for a vector or string (0 and 0 where absent); a list of
    where a table field points (0 where absent).
    """

    __slots__ = ("f", "pos", "vtables", "single", "where", "rows", "n", "fields")

    def __init__(
        self, f: _File, pos: list[int], vtables: list[_VTable], single: bool, where: Namer,
        rows: list[int], schema: _Schema,
    ) -> None:
        self.f, self.pos, self.vtables, self.where, self.rows = f, pos, vtables, where, rows
        self.single = single  # all tables share one vtable
        self.n = len(pos)
        self.fields = self.read(schema)

    def read(self, schema: _Schema, only: Mask = None) -> dict[int, Any]:
        """Check and read the fields of `schema`; tables outside `only` read as absent."""
        pos, n, vtables = self.pos, self.n, self.vtables
        if not schema.fields:
            return {}
        if not n:
            return {slot: ([], []) if kind in _VECTORS else []
                    for slot, kind, _, _ in schema.fields}
        if only is not None:
            vtables = [vt if keep else _ABSENT for vt, keep in zip(vtables, only)]
        distinct = {vtables[0]} if self.single and only is None else set(vtables)
        self._fit(schema, distinct, vtables)
        # With one vtable, a field is at the same offset in every table.
        single = next(iter(distinct)).offsets if len(distinct) == 1 else None
        columns = None if single else list(zip(*[vt.offsets for vt in vtables]))
        fields: dict[int, Any] = {}
        for slot, kind, name, width in schema.fields:
            at, full = None, True  # positions (0: absent); whether no table lacks the field
            if single is not None:
                if off := single[slot]:
                    at = [p + off for p in pos]
            elif columns is not None and any(column := columns[slot]):
                full = all(column)
                at = (list(map(add, pos, column)) if full
                      else [p + off if off else 0 for p, off in zip(pos, column)])
            if at is None:  # absent from every table
                fields[slot] = ([0] * n, [0] * n) if kind in _VECTORS else [0] * n
            elif kind in _WIDTHS:
                fields[slot] = self._scalars(at, kind, slot, width)
            elif kind in _VECTORS:
                fields[slot] = vector = self._vectors(self._targets(at, name, full),
                                                      _VECTORS[kind], name, full)
                if kind == "s":
                    self._strings(*vector, name)
            else:
                fields[slot] = self._targets(at, name, full)
        return fields

    def _fit(self, schema: _Schema, distinct: set[_VTable], vtables: list[_VTable]) -> None:
        """Check once per vtable that the schema's fields fit the table and are aligned."""
        key = id(schema)
        for vt in distinct:
            if vt is _ABSENT or key in vt.fitted:
                continue
            for slot, _, _, width in schema.fields:
                off = vt.offsets[slot]
                # Tables start 4-aligned: 8-byte fields are checked per table when read.
                if off and (off + width > vt.obj_size or off % min(width, 4)):
                    _fail(f"field {slot} of {self.where(vtables.index(vt))} does not fit its "
                          "table or is misaligned.")
            vt.fitted.add(key)

    def _scalars(self, at: list[int], kind: str, slot: int, width: int) -> list[int]:
        """The values of a scalar field at positions `at` (0 where absent)."""
        if width == 8 and reduce(or_, at) & 7:
            _fail(f"field {slot} of {self.where(_first(a & 7 for a in at))} does not fit its "
                  "table or is misaligned.")
        view, shift = self.f.views[kind]
        return [view[a >> shift] if a else 0 for a in at]

    def _targets(self, at: list[int], name: str, full: bool) -> list[int]:
        """Where the offset fields at positions `at` (0 where absent) point; 0 where absent."""
        u32, size = self.f.views["u32"][0], self.f.size
        if full:
            offsets = [u32[a >> 2] for a in at]
            wild = 0 in offsets
        else:
            offsets = [u32[a >> 2] if a else 0 for a in at]
            wild = offsets.count(0) != at.count(0)
        # As the flatbuffers verifier: no self or wrapped offsets.
        if wild or max(offsets) >= 1 << 31:
            i = _first(a and not 0 < o < 1 << 31 for a, o in zip(at, offsets))
            _fail(f"the {name} field of {self.where(i)} holds the offset {offsets[i]}, which no "
                  "flatbuffer writer produces.")
        dest = list(map(add, at, offsets))
        if max(dest) > size - 4:
            i = _first(d > size - 4 for d in dest)
            _fail(f"the {name} field of {self.where(i)} points at byte {dest[i]}, past the end "
                  f"of the {size}-byte file.")
        return dest

    def _vectors(
        self, at: list[int], width: int, name: str, full: bool
    ) -> tuple[list[int], list[int]]:
        """Starts of elements and counts of the vectors at `at`; 0 and 0 where absent."""
        u32, size = self.f.views["u32"][0], self.f.size
        if reduce(or_, at) & 3:
            i = _first(a & 3 for a in at)
            _fail(f"the {name} field of {self.where(i)} points at a vector at byte {at[i]}, "
                  "which is not a multiple of 4.")
        if full:
            counts = [u32[a >> 2] for a in at]
            starts = [a + 4 for a in at]
        else:
            counts = [u32[a >> 2] if a else 0 for a in at]
            starts = [a + 4 if a else 0 for a in at]
        lengths = counts if width == 1 else [width * count for count in counts]
        if max(map(add, starts, lengths)) > size:
            i = _first(s + k > size for s, k in zip(starts, lengths))
            _fail(f"the {name} field of {self.where(i)} points at a vector of {counts[i]} "
                  f"elements at byte {at[i]}, more than the {size}-byte file holds.")
        return starts, counts

    def _strings(self, starts: list[int], counts: list[int], name: str) -> None:
        """Check that strings are terminated and UTF-8."""
        buf, size = self.f.buf, self.f.size
        ends = list(map(add, starts, counts))
        # The runtime reads names as C strings: without the terminator it reads on.
        if max(ends) >= size or any([buf[e] for s, e in zip(starts, ends) if s]):
            i = _first(s and (e >= size or buf[e]) for s, e in zip(starts, ends))
            _fail(f"the {name} field of {self.where(i)} is not a terminated string.")
        # Flatbuffer strings are UTF-8 and the Python wrappers decode names strictly;
        # ASCII is valid UTF-8, so only text with high bytes needs decoding here. (Corrupt
        # counts can make strings overlap: then they are not joined into one copy.)
        if sum(counts) > size or not b"".join([buf[s:e] for s, e in zip(starts, ends)]).isascii():
            for i, (s, e) in enumerate(zip(starts, ends)):
                try:
                    str(buf[s:e], "utf-8")
                except UnicodeDecodeError:
                    _fail(f"the {name} field of {self.where(i)} is not valid UTF-8 text.")

    def text(self, slot: int) -> list[str | None]:
        """The values of a string field, None where absent."""
        buf = self.f.buf
        return [str(buf[s:s + n], "utf-8") if s else None for s, n in zip(*self.fields[slot])]

    def ints(self, field: int | tuple[list[int], list[int]]) -> list[Sequence[int]]:
        """The values of an int32 vector field (a slot or what it read), one per table."""
        starts, counts = self.fields[field] if isinstance(field, int) else field
        i32 = self.f.views["i32"][0]
        return [i32[s >> 2:(s >> 2) + n] if n else () for s, n in zip(starts, counts)]

    def tables(self, slot: int, item: str, nfields: int, schema: _Schema) -> _Tables:
        """The tables of a vector-of-tables field, all tables' laid end to end.

        `item` names one: ``item.format(i=index in its vector, of=name of its parent)``.
        """
        starts, counts = self.fields[slot]
        if sum(counts) > self.f.budget:  # fail before listing a corrupt count of tables
            ends = list(accumulate(counts))
            row = bisect_right(ends, self.f.budget)
            self.f.spend(sum(counts), lambda _: item.format(
                i=self.f.budget - ends[row] + counts[row], of=self.where(row)))
        u32 = self.f.views["u32"][0]
        pos: list[int] = []
        owner: list[int] = []
        index: list[int] = []
        for row, (s, n) in enumerate(zip(starts, counts)):
            if n:
                pos += map(add, range(s, s + 4 * n, 4), u32[s >> 2:(s >> 2) + n])
                owner += [row] * n
                index += range(n)

        def where(i: int) -> str:
            return item.format(i=index[i], of=self.where(owner[i]))

        return self.f.tables(pos, nfields, where, owner, schema)

    def table(self, dest: list[int], name: str, nfields: int, schema: _Schema) -> _Tables:
        """The sub-tables where a table field points (`dest`, 0 where absent)."""
        rows = [row for row, d in enumerate(dest) if d]

        def where(i: int) -> str:
            return f"the {name} of {self.where(rows[i])}"

        return self.f.tables([dest[row] for row in rows], nfields, where, rows, schema)


def _check_indices(
    groups: Sequence[Sequence[int]], limits: Sequence[int], where: Namer, noun: str,
    low: int = 0,
) -> None:
    """Fail unless every index in ``groups[i]`` is in [low, ``limits[i]``).

    `where(i)` names the holder of group i.
    """
    values = list(chain.from_iterable(groups))
    if not values or (min(values) >= low and max(values) < min(limits)):
        return
    for i, (group, limit) in enumerate(zip(groups, limits)):
        if group and (min(group) < low or max(group) >= limit):
            bad = next(v for v in group if v < low or v >= limit)
            _fail(f"{where(i)} points at {noun} {bad}; the model has {limit} {noun}s there.")


# What each table type reads (schema.fbs), in the order the checks meet it.
_MODEL_VERSION = _Schema({0: ("u32", "version")})
_MODEL = _Schema({
    3: ("s", "description"), 4: ("tv", "buffers"), 1: ("tv", "operator codes"),
    2: ("tv", "subgraphs"), 5: ("v4", "metadata buffer list"), 6: ("tv", "metadata"),
    7: ("tv", "signature defs"),
})
_BUFFER = _Schema({0: ("v1", "data"), 1: ("u64", "offset")})
_BUFFER_SIZE = _Schema({2: ("u64", "size")})
_OPERATOR_CODE = _Schema({
    0: ("i8", "deprecated builtin code"), 1: ("s", "custom code"), 2: ("i32", "version"),
    3: ("i32", "builtin code"),
})
_SUBGRAPH = _Schema({
    0: ("tv", "tensors"), 1: ("v4", "inputs"), 2: ("v4", "outputs"), 4: ("s", "name"),
    3: ("tv", "operators"),
})
_TENSOR = _Schema({
    0: ("v4", "shape"), 7: ("v4", "shape signature"), 1: ("i8", "type"), 2: ("u32", "buffer"),
    3: ("s", "name"), 6: ("t", "sparsity"), 4: ("t", "quantization"),
    9: ("tv", "variant tensors"),
})
_QUANTIZATION = _Schema({
    0: ("v4", "min"), 1: ("v4", "max"), 2: ("v4", "scale"), 3: ("v8", "zero point"),
    4: ("u8", "details type"), 6: ("i32", "quantized dimension"),
})
_QUANTIZATION_DETAILS = _Schema({5: ("t", "details")})
_CUSTOM_QUANTIZATION = _Schema({0: ("v1", "custom data")})
_SPARSITY = _Schema({
    0: ("v4", "traversal order"), 1: ("v4", "block map"), 2: ("tv", "dimension metadata"),
})
_DIMENSION = _Schema({2: ("u8", "array segments type"), 4: ("u8", "array indices type")})
_INDEX_VECTOR = {slot: _Schema({slot: ("t", "index vector")}) for slot in (3, 5)}
# SparseIndexVector: Int32Vector, Uint16Vector, Uint8Vector
_INDEX_VALUES = {code: _Schema({0: (f"v{width}", "values")})
                 for code, width in ((1, 4), (2, 2), (3, 1))}
_VARIANT = _Schema({0: ("v4", "shape")})
_OPERATOR = _Schema({
    0: ("u32", "opcode index"), 1: ("v4", "inputs"), 2: ("v4", "outputs"),
    8: ("v4", "intermediates"), 5: ("v1", "custom options"),
    7: ("v1", "mutating variable inputs"), 9: ("u64", "large custom options offset"),
    10: ("u64", "large custom options size"), 3: ("u8", "builtin options type"),
    11: ("u8", "builtin options 2 type"),
})
_OPTIONS = {slot: _Schema({slot: ("t", "options")}) for slot in (4, 12)}
_NO_FIELDS = _Schema({})
_METADATA = _Schema({0: ("s", "name"), 1: ("u32", "buffer")})
_SIGNATURE = _Schema({
    2: ("s", "key"), 4: ("u32", "subgraph index"), 0: ("tv", "inputs"), 1: ("tv", "outputs"),
})
_TENSOR_MAP = _Schema({0: ("s", "name"), 1: ("u32", "tensor index")})


def _option_schema(
    offsets: tuple[tuple[int, int | str], ...], subgraphs: tuple[int, ...]
) -> _Schema:
    """The fields of one options table type that the runtime follows."""
    fields = {slot: ("s" if width == "s" else f"v{width}", f"#{slot}") for slot, width in offsets}
    fields.update((slot, ("i32", f"#{slot}")) for slot in subgraphs)
    return _Schema(fields)


# (options type slot of Operator, options type) -> fields to check
_OPTION_SCHEMAS = {
    (type_slot, kind): _option_schema(offsets.get(kind, ()), subgraphs.get(kind, ()))
    for type_slot, offsets, subgraphs in ((3, _OPTION_OFFSETS, _SUBGRAPH_SLOTS),
                                         (11, _OPTION_2_OFFSETS, _SUBGRAPH_SLOTS_2))
    for kind in {*offsets, *subgraphs}
}


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
    f = _File(buf)
    model = f.tables([f.views["u32"][0][0]], 8, lambda i: "the model", [0], _MODEL_VERSION)
    version = model.fields[0][0]
    if version != _SCHEMA_VERSION:
        raise ModelError(
            f"the model has schema version {version}; TFLite runtimes read version "
            f"{_SCHEMA_VERSION}. Convert the model again with a current TensorFlow."
        )
    model.fields = model.read(_MODEL)
    description = model.text(3)[0] or ""

    buffer_sizes = _buffer_sizes(model.tables(4, "buffer {i}", 3, _BUFFER), total)
    opcodes = _opcodes(model.tables(1, "operator code {i}", 4, _OPERATOR_CODE))
    subgraphs = model.tables(2, "subgraph {i}", 5, _SUBGRAPH)
    if not subgraphs.n:
        raise ModelError("the model has no subgraphs, so there is nothing to run. " + _HINT)
    facts, tensor_types, details, main_io = _tensors(subgraphs, buffer_sizes)
    tensor_counts = facts.counts
    counts, calls = _operators(subgraphs, opcodes, facts, total)
    _check_no_recursion(calls)

    metadata = model.tables(6, "metadata {i}", 2, _METADATA)
    metadata_names = [name or "" for name in metadata.text(0)]
    _check_indices([(b,) for b in metadata.fields[1]], [len(buffer_sizes)] * metadata.n,
                   metadata.where, "buffer")

    sigs = model.tables(7, "signature {i}", 5, _SIGNATURE)
    signature_keys = [key or "" for key in sigs.text(2)]
    sig_subgraph = sigs.fields[4]
    _check_indices([(s,) for s in sig_subgraph], [subgraphs.n] * sigs.n, sigs.where, "subgraph")
    for slot, kind in ((0, "input"), (1, "output")):
        tmaps = sigs.tables(slot, f"{kind} {{i}} of {{of}}", 2, _TENSOR_MAP)
        _check_indices([(t,) for t in tmaps.fields[1]],
                       [tensor_counts[sig_subgraph[row]] for row in tmaps.rows],
                       tmaps.where, "tensor")

    custom_codes = {code for _, code, _ in opcodes if code is not None}
    op_versions: dict[str, int] = {}
    for name, code, opversion in opcodes:
        if code is None:
            op_versions[name] = max(op_versions.get(name, 0), opversion)
    return ModelSummary(
        version=version,
        description=description,
        num_subgraphs=subgraphs.n,
        operator_counts=counts,
        custom_ops=tuple(sorted(c for c in custom_codes if not c.startswith("Flex"))),
        flex_ops=tuple(sorted(c[4:] for c in custom_codes if c.startswith("Flex"))),
        op_versions=op_versions,
        signature_keys=tuple(signature_keys),
        metadata_names=tuple(metadata_names),
        num_buffers=len(buffer_sizes),
        num_tensors=sum(tensor_counts),
        tensor_types=tensor_types,
        quantization_details=details,
        main_io=main_io,
        tensor_bytes=facts.tensor_bytes,
        subgraph_inputs=tuple(tuple(group) for group in subgraphs.ints(1)),
        subgraph_outputs=tuple(tuple(group) for group in subgraphs.ints(2)),
    )


def _buffer_sizes(buffers: _Tables, total: int) -> list[int]:
    """Bytes of constant data per Buffer table, inside or after the flatbuffer; -1 if none."""
    sizes = [n if start else -1 for start, n in zip(*buffers.fields[0])]
    offsets = buffers.fields[1]
    if max(offsets, default=0) <= 1:  # 0 and 1 mean "no external data" (schema.fbs)
        return sizes
    lengths = buffers.read(_BUFFER_SIZE, only=[offset > 1 for offset in offsets])[2]
    for i, (offset, length) in enumerate(zip(offsets, lengths)):
        if offset > 1:
            if offset + length > total:
                _fail(f"{buffers.where(i)} holds {length} bytes at byte {offset} of the file, "
                      f"past its end at byte {total}.")
            sizes[i] = length
    return sizes


def _opcodes(codes: _Tables) -> list[tuple[str, str | None, int]]:
    """(op name, custom code or None for builtins, version) of each OperatorCode table."""
    # Codes above 127 live in builtin_code; older files only have the int8 field.
    builtins = map(max, codes.fields[0], codes.fields[3])
    versions = [v if vt.offsets[2] else 1 for v, vt in zip(codes.fields[2], codes.vtables)]
    found: list[tuple[str, str | None, int]] = []
    for i, (builtin, version, custom) in enumerate(zip(builtins, versions, codes.text(1))):
        if builtin == _CUSTOM:
            if custom is None:
                _fail(f"{codes.where(i)} is a custom op without a custom code.")
            found.append((f"CUSTOM:{custom}", custom, version))
        elif builtin < 0:
            _fail(f"{codes.where(i)} has the builtin code {builtin}; codes are never negative.")
        elif builtin < len(BUILTIN_OPERATOR_NAMES):
            found.append((BUILTIN_OPERATOR_NAMES[builtin], None, version))
        else:  # a newer schema than ours: the runtime decides whether it knows the op
            found.append((f"BUILTIN_{builtin}", None, version))
    return found


@dataclass(frozen=True)
class _TensorFacts:
    """What the operator checks need to know of every tensor, by row (subgraphs in order)."""

    counts: list[int]  # tensors per subgraph
    types: list[int]  # TensorType code per tensor
    scales: list[int]  # number of quantization scales per tensor (0: not quantized)
    scale_at: list[int]  # byte where the first scale is (0: none)
    where: Namer  # names tensor row i
    tensor_bytes: int = 0  # declared bytes of the tensors without constant data


def _tensors(subgraphs: _Tables, buffer_sizes: list[int]
             ) -> tuple[_TensorFacts, frozenset[int], frozenset[int], tuple[TensorInfo, ...]]:
    """Check every tensor of every subgraph and the subgraphs' inputs and outputs.

    Returns:
        The types and scales of every tensor, the tensor types used, the
        quantization details types used, and the main subgraph's inputs and outputs.
    """
    tensors = subgraphs.tables(0, "tensor {i} in {of}", 10, _TENSOR)
    tensor_counts = subgraphs.fields[0][1]
    for slot, kind in ((1, "input"), (2, "output")):
        _check_indices(subgraphs.ints(slot), tensor_counts,
                       _an(kind, subgraphs.where), "tensor")
    if not tensors.n:
        return _TensorFacts(tensor_counts, [], [], [], tensors.where), frozenset(), frozenset(), ()

    where, fields = tensors.where, tensors.fields
    shapes = _dims(tensors, 0, "shape")
    if min(chain.from_iterable(shapes), default=0) < 0:
        i = _first(min(shape, default=0) < 0 for shape in shapes)
        _fail(f"{where(i)} has the shape {list(shapes[i])}, with a negative dimension.")
    signatures = _dims(tensors, 7, "shape signature")
    if min(chain.from_iterable(signatures), default=0) < -1:  # -1 marks a dynamic dimension
        i = _first(min(signature, default=0) < -1 for signature in signatures)
        _fail(f"{where(i)} has the shape signature {list(signatures[i])}, with a dimension "
              "below -1.")
    elements = list(map(math.prod, shapes))
    if max(elements) > _MAX_ELEMENTS:
        i = _first(n > _MAX_ELEMENTS for n in elements)
        _fail(f"{where(i)} has the shape {list(shapes[i])}, {elements[i]} elements; TFLite "
              f"counts elements in 32-bit integers, so at most {_MAX_ELEMENTS} can run.")
    dtypes = fields[1]
    if min(dtypes) < 0:
        i = _first(t < 0 for t in dtypes)
        _fail(f"{where(i)} has the element type {dtypes[i]}; types are never negative.")
    buffers = fields[2]
    num_buffers = len(buffer_sizes)
    if max(buffers) >= max(num_buffers, 1):
        i = _first(b >= num_buffers and (b or num_buffers) for b in buffers)
        _fail(f"{where(i)} points at buffer {buffers[i]}; the model has {num_buffers} buffers.")
    sparse = fields[6]
    if any(sparse):
        _sparsity(tensors.table(sparse, "sparsity", 3, _SPARSITY))
    # Buffer 0 is the empty sentinel; any other buffer with a data vector, even an empty
    # one, makes the tensor constant, and the runtimes refuse constant data of the wrong
    # size (sparse data is compressed, so it has its own size).
    nbytes = [buffer_sizes[b] if b else -1 for b in buffers]
    itemsizes = [_ITEMSIZE[t] if t < len(_ITEMSIZE) else None for t in dtypes]
    bad = [n >= 0 and size is not None and not s and n != e * size
           for n, size, s, e in zip(nbytes, itemsizes, sparse, elements)]
    if any(bad):
        i = bad.index(True)
        size = itemsizes[i]
        assert size is not None  # bad[i] says so
        _fail(f"{where(i)} has the shape {list(shapes[i])} and {size}-byte elements, so its "
              f"buffer {buffers[i]} should hold {elements[i] * size} bytes, but it holds "
              f"{nbytes[i]}.")
    details: frozenset[int] = frozenset()
    scales, scale_at = [0] * tensors.n, [0] * tensors.n
    if any(fields[4]):
        quant = tensors.table(fields[4], "quantization", 7, _QUANTIZATION)
        details = _quantization(quant, shapes)
        _zero_points(quant, dtypes)
        for row, at, count in zip(quant.rows, *quant.fields[2]):
            scales[row], scale_at[row] = count, at
    if any(fields[9][1]):
        tensors.tables(9, "variant {i} of {of}", 3, _VARIANT)
    # The main subgraph's tensors come first, so its tensor indices are rows.
    buf = tensors.f.buf
    main_io = tuple(
        TensorInfo(kind, str(buf[fields[3][0][t]:fields[3][0][t] + fields[3][1][t]], "utf-8"),
                   tuple(signatures[t] or shapes[t]),
                   TENSOR_TYPE_NAMES[dtypes[t]] if dtypes[t] < len(TENSOR_TYPE_NAMES) else f"type {dtypes[t]}")
        for kind, slot in (("input", 1), ("output", 2)) for t in subgraphs.ints(slot)[0]
    )
    declared = sum([e * size for e, size, n in zip(elements, itemsizes, nbytes) if n < 0 and size])
    facts = _TensorFacts(tensor_counts, list(dtypes), scales, scale_at, where, declared)
    return facts, frozenset(dtypes), details, main_io


def _dims(tensors: _Tables, slot: int, name: str) -> list[Sequence[int]]:
    """A shape vector field of every tensor, ranks checked before the values are read."""
    ranks = tensors.fields[slot][1]
    if max(ranks) > _MAX_RANK:
        i = _first(rank > _MAX_RANK for rank in ranks)
        _fail(f"{tensors.where(i)} has a {name} of rank {ranks[i]}; more than {_MAX_RANK} is "
              "not a real model.")
    return tensors.ints(slot)


def _quantization(quant: _Tables, shapes: list[Sequence[int]]) -> frozenset[int]:
    """Check the vectors of QuantizationParameters and the per-channel dimension.

    Returns:
        The QuantizationDetails types used (empty when none is).
    """
    scales, zero_points = quant.fields[2][1], quant.fields[3][1]
    details_type = quant.fields[4]
    used = frozenset(details_type) - {0}
    if any(details_type):
        dest = quant.read(_QUANTIZATION_DETAILS, only=details_type)[5]
        details = quant.table(dest, "details", 8, _NO_FIELDS)
        details.read(_CUSTOM_QUANTIZATION,  # CustomQuantization
                     only=[details_type[row] == 1 for row in details.rows])
    if scales != zero_points and any(bad := [s and z != s for s, z in zip(scales, zero_points)]):
        i = _first(bad)
        _fail(f"{quant.where(i)} has {scales[i]} scales but {zero_points[i]} zero points; they "
              "must match.")
    if max(scales) <= 1:
        return used
    for i, (scale, dim, row) in enumerate(zip(scales, quant.fields[6], quant.rows)):
        shape = shapes[row]
        if scale > 1 and len(shape) and (not 0 <= dim < len(shape) or shape[dim] != scale):
            _fail(f"{quant.where(i)} has {scale} per-channel scales along dimension {dim}, "
                  f"which does not fit the shape {list(shape)}.")
    return used


def _zero_points(quant: _Tables, dtypes: Sequence[int]) -> None:
    """Fail where an integer tensor has a zero point its type cannot hold (XNNPACK crashes on one)."""
    i64, buf = quant.f.views["i64"][0], quant.f.buf
    starts, counts = quant.fields[3]
    types = [dtypes[row] for row in quant.rows]
    for code, (low, high) in _ZERO_POINTS.items():
        mine = [i for i, (t, n) in enumerate(zip(types, counts)) if t == code and n]
        if not mine:
            continue
        if reduce(or_, [starts[i] for i in mine]) & 7:
            i = _first(starts[i] & 7 for i in mine)
            _fail(f"the zero point field of {quant.where(mine[i])} points at 64-bit numbers at byte "
                  f"{starts[mine[i]]}, which is not a multiple of 8.")
        # One number per tensor, or per channel: those are all 0 (one C-level pass over the bytes).
        values = [i64[starts[i] >> 3] if counts[i] == 1 else
                  (0 if not int.from_bytes(buf[starts[i]:starts[i] + 8 * counts[i]], "little")
                   else min(i64[starts[i] >> 3:(starts[i] >> 3) + counts[i]], key=lambda v: low <= v <= high))  # out of range first
                  for i in mine]
        if min(values) < low or max(values) > high:
            i = mine[_first(not low <= v <= high for v in values)]
            bad = next(v for v in i64[starts[i] >> 3:(starts[i] >> 3) + counts[i]] if not low <= v <= high)
            _fail(f"{quant.where(i)} has the zero point {bad}, outside the {TENSOR_TYPE_NAMES[code]} range "
                  f"[{low}, {high}].", _QUANT_HINT)


def _sparsity(sparsity: _Tables) -> None:
    """Check the dimension metadata of SparsityParameters (its schema checks the rest)."""
    dims = sparsity.tables(2, "dimension {i} of {of}", 6, _DIMENSION)
    for type_slot in (2, 4):
        kinds = dims.fields[type_slot]
        dest = dims.read(_INDEX_VECTOR[type_slot + 1], only=kinds)[type_slot + 1]
        vectors = dims.table(dest, "index vector", 1, _NO_FIELDS)
        for code, schema in _INDEX_VALUES.items():
            vectors.read(schema, only=[kinds[row] == code for row in vectors.rows])


def _operators(
    subgraphs: _Tables,
    opcodes: list[tuple[str, str | None, int]],
    facts: _TensorFacts,
    total: int,
) -> tuple[dict[str, int], list[set[int]]]:
    """Check every operator; return op name -> uses and the subgraphs each subgraph calls."""
    tensor_counts = facts.counts
    ops = subgraphs.tables(3, "operator {i} in {of}", 13, _OPERATOR)
    calls: list[set[int]] = [set() for _ in range(subgraphs.n)]
    if not ops.n:
        return {}, calls
    fields = ops.fields
    opcode = fields[0]
    _check_indices([(c,) for c in opcode], [len(opcodes)] * ops.n, ops.where, "operator code")
    names = [name for name, _, _ in opcodes]
    counts: dict[str, int] = {}
    for code, uses in Counter(opcode).items():  # in order of first use
        counts[names[code]] = counts.get(names[code], 0) + uses

    def what(i: int) -> str:
        return f"{ops.where(i)} ({names[opcode[i]]})"

    limits = [tensor_counts[row] for row in ops.rows]
    for slot, kind, low in ((1, "input", -1), (2, "output", 0), (8, "intermediate", 0)):
        # An optional input is -1.
        _check_indices(ops.ints(slot), limits, _an(kind, what), "tensor", low)
    _check_required_inputs(ops.ints(1), opcode, names, what)
    if _QUANTIZED_TYPES.intersection(facts.types):
        _check_requantizing(ops, opcode, opcodes, facts, what)
    if any(fields[9]) or any(fields[10]):
        for i, (offset, length) in enumerate(zip(fields[9], fields[10])):
            if offset + length > total:
                _fail(f"the custom options of {what(i)} are {length} bytes at byte {offset} of "
                      f"the file, past its end at byte {total}.")
    for type_slot, known in ((3, _NUM_BUILTIN_OPTIONS), (11, _NUM_BUILTIN_OPTIONS_2)):
        types = fields[type_slot]
        if not any(types):
            continue
        dest = ops.read(_OPTIONS[type_slot + 1], only=types)[type_slot + 1]
        options = ops.table(dest, "options", 32, _NO_FIELDS)
        kinds = [types[row] for row in options.rows]
        for kind in sorted(set(kinds)):
            schema = _OPTION_SCHEMAS.get((type_slot, kind)) if kind < known else None
            if schema is None:
                continue
            mine = [k == kind for k in kinds]
            values = options.read(schema, only=mine)
            rows = [row for row, keep in zip(options.rows, mine) if keep]
            called = [
                [values[slot][i] for slot, field_kind, _, _ in schema.fields
                 if field_kind == "i32"]
                for i, keep in enumerate(mine) if keep
            ]
            if type_slot == 11 and kind == _CASE_BRANCHES:
                branches = options.ints(values[0])
                called = [[*c, *branches[i]] for c, i in
                          zip(called, [i for i, keep in enumerate(mine) if keep])]
            _check_indices(called, [subgraphs.n] * len(rows),
                           _options_of(what, rows), "subgraph")
            for row, callees in zip(rows, called):
                calls[ops.rows[row]].update(callees)
    return counts, calls


def _check_required_inputs(inputs: list[Sequence[int]], opcode: list[int], names: list[str], what: Namer) -> None:
    """Fail where an op lacks an input its kernel reads without checking (-1 marks an optional one).

    ai_edge_litert dereferences the missing tensor (SIGSEGV; the load fuzz target's finding: an
    ADD whose first input was -1); only inputs no kernel version treats as optional are listed.
    """
    needs = [_REQUIRED_INPUTS.get(name, 0) for name in names]
    if not any(needs):
        return
    for i, code in enumerate(opcode):
        count = needs[code]
        if count and (len(inputs[i]) < count or min(inputs[i][:count]) < 0):
            _fail(f"{what(i)} lacks one of the {count} inputs its kernel needs (inputs {list(inputs[i])}; "
                  "-1 marks an optional input).", "The backend would crash the process on it. The file is "
                  "damaged or was written wrong; convert the model again or download it again.")


def _check_requantizing(ops: _Tables, opcode: list[int], opcodes: list[tuple[str, str | None, int]],
                        facts: _TensorFacts, what: Namer) -> None:
    """Fail where a quantized op that requantizes lacks a usable scale on an activation.

    The op is quantized when an activation input has an integer type (the backend gives an
    output the type of its input, whatever the file declares). Then its activations (inputs
    and outputs) need exactly one scale, a positive finite number (an input scale of 0 only
    where the kernel multiplies it in, not in ``_ZERO_INPUT_SCALE_ABORTS``); its weights may have
    one per channel. Scales elsewhere are not read: a string tensor with a scale of 0 is valid,
    and kernels that do not requantize ignore them.
    """
    known = [name in _REQUANTIZING and custom is None for name, custom, _ in opcodes]
    if not any(known):
        return
    types, scales, scale_at = facts.types, facts.scales, facts.scale_at
    bases = [0, *accumulate(facts.counts)]
    inputs, outputs = ops.ints(1), ops.ints(2)
    # (op, its activation inputs, its outputs, whether an input scale of +0.0 is fine, its name) of
    # every quantized op that requantizes, by tensor row
    quantized = []
    for i, code in enumerate(opcode):
        if not known[code]:
            continue
        name = opcodes[code][0]
        activations = _REQUANTIZING[name]
        base, ins = bases[ops.rows[i]], inputs[i]
        picked = ins if activations is None else [ins[k] for k in activations if k < len(ins)]
        acts = [base + t for t in picked if t >= 0]
        if any([types[t] in _QUANTIZED_TYPES for t in acts]):
            quantized.append((i, acts, [base + t for t in outputs[i]], name not in _ZERO_INPUT_SCALE_ABORTS, name))
    rows = list(chain.from_iterable(acts + outs for _, acts, outs, _, _ in quantized))
    if not rows:
        return
    u32 = ops.f.views["u32"][0]
    counts = [scales[t] for t in rows]
    if min(counts) == max(counts) == 1:
        bits = [u32[scale_at[t] >> 2] for t in rows]  # float32 bits: +0.0, the sign, inf and NaN fail
        if min(bits) > 0 and max(bits) < _INF_BITS:
            _check_rescaling(ops, quantized, facts, what)
            return
    for i, acts, outs, zero_in, _ in quantized:  # the first bad one, for the message
        for t, kind in [*((t, "input") for t in acts), *((t, "output") for t in outs)]:
            if scales[t] != 1:
                has = f"{scales[t]} quantization scales" if scales[t] else "no quantization scale"
                _fail(f"{what(i)} is quantized, but its {kind} {facts.where(t)} has {has}; its kernel "
                      "needs exactly one.", _QUANT_HINT)
            word = u32[scale_at[t] >> 2]
            if not (0 < word < _INF_BITS or (word == 0 and zero_in and kind == "input")):
                value = struct.unpack("<f", struct.pack("<I", word))[0]
                _fail(f"{what(i)} is quantized, but its {kind} {facts.where(t)} has the scale "
                      f"{value}; its kernel divides by it, so it must be a positive finite number.",
                      _QUANT_HINT)
    _check_rescaling(ops, quantized, facts, what)


def _check_rescaling(ops: _Tables, quantized: list[tuple[int, list[int], list[int], bool, str]],
                     facts: _TensorFacts, what: Namer) -> None:
    """Fail where the scales of a quantized ADD, SUB or SQUARED_DIFFERENCE put its kernel's multipliers out of range.

    Each scale alone is valid by now (one positive finite number); this mirrors what the kernel
    computes from them in ``_RESCALING`` (the load fuzz target's findings: an int8 ADD writing a
    tensor of scale 2.1e-22, or 7.3e-40, or reading one of 7.7e25, aborted both backends).
    """
    mine = [(i, acts, outs, name) for i, acts, outs, _, name in quantized
            if name in _RESCALING and len(acts) == 2 and len(outs) == 1]
    if not mine:
        return
    buf, types = ops.f.buf, facts.types
    for i, acts, (out,), name in mine:
        shifts, power = _RESCALING[name]
        # An input another quantized op writes has that op's type whatever the file declares
        # (a float32 one included), so the path is the integer type the inputs declare.
        path = {types[t] for t in acts}.intersection(shifts)
        if len(path) != 1:
            continue  # a float op, or two integer types: the kernel refuses (an error, not a crash)
        (kind,) = path
        s1, s2, s_out = (struct.unpack_from("<f", buf, facts.scale_at[t])[0] for t in (*acts, out))
        if kind == _INT16 and all(_maybe_power_of_two(x) for x in (s1, s2, s_out)):
            continue
        shift = shifts[kind]
        twice = 2 * max(s1, s2)
        if twice > _FLOAT32_MAX:
            t = acts[0] if s1 >= s2 else acts[1]
            _fail(f"{what(i)} is quantized, but its input {facts.where(t)} has the scale {max(s1, s2):.4g}; its "
                  f"kernel doubles the larger input scale in float32, so it must be at most {_FLOAT32_MAX / 2:.4g}.",
                  _QUANT_HINT)
        if s_out * (1 << shift) > _FLOAT32_MAX:
            _fail(f"{what(i)} is quantized, but its output {facts.where(out)} has the scale {s_out:.4g}; its kernel "
                  f"multiplies the output scale by 2^{shift} in float32, so it must be at most "
                  f"{_FLOAT32_MAX / (1 << shift):.4g}.", _QUANT_HINT)
        multiplier = twice ** power / (s_out * (1 << shift))
        if multiplier < 1 or (name == "SUB" and multiplier > 1):
            continue
        formula = ("2 x the larger input scale" if power == 1 else "(2 x the larger input scale)^2") + \
            f" / (2^{shift} x the output scale)"
        needs = "must not be 1" if name == "SUB" else \
            f"must be below 1, so the output scale must be above {twice ** power / (1 << shift):.4g}"
        _fail(f"{what(i)} is quantized, but its output {facts.where(out)} has the scale {s_out:.4g}, too small for "
              f"its inputs' scales ({s1:.4g}, {s2:.4g}): its kernel requantizes the result by {formula} = "
              f"{multiplier:.4g}, which {needs}.", _QUANT_HINT)


def _maybe_power_of_two(scale: float) -> bool:
    """Whether the kernels may take `scale` for a power of two (CheckedLog2 allows 1e-3 in log2; twice that here)."""
    exponent = math.log2(scale)
    return abs(exponent - round(exponent)) < 2e-3


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
