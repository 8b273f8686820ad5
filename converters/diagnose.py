"""TensorFlow converter failures in the user's terms, and float ops left in quantized models.

``translate`` turns the converter's MLIR text into one line naming the layer or op, why
it failed and what to try (TensorFlow's own text stays on ``exc.converter_text``, which
``--verbose`` prints). ``float_ops`` reads a converted model and finds the ops that still
compute in float32 after int8/int16x8 quantization: ops with no integer kernel, and
branches the calibration data never reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from tfedge.errors import ConversionError

from .config import ConvertOptions, IOType, Quantize
from .recurrent import is_dynamic_tensor_list_error, layer_of_error

__all__ = ["FloatOp", "float_ops", "integer_only_error", "translate", "unreached_branch_warning"]

_NO_16X8 = re.compile(r"Quantization to 16x8-bit not yet supported for op: '?([\w.]+)'?")
_NO_INT8 = re.compile(r"Quantization not yet supported for op: '?([\w.]+)'?")
#: Ops that move data between float and integer or steer control flow: not "computing in float".
_NEUTRAL = {"QUANTIZE", "DEQUANTIZE", "IF", "WHILE", "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CAST", "SHAPE"}


def translate(text: str, opts: ConvertOptions, label: str, batch_note: Optional[str]) -> Optional[ConversionError]:
    """A ConversionError for a failure we know, or None."""
    mode = opts.quantize.value  # type: ignore[union-attr]
    if is_dynamic_tensor_list_error(text):
        layer = layer_of_error(text) or "a recurrent layer"
        tried = f" ({batch_note})" if batch_note else ""
        return ConversionError(
            f"Layer {layer!r} cannot be converted: its recurrent loop needs a static batch dimension "
            f"and still has a free one{tried}. Convert the .keras/.h5 file or the Keras model instead "
            "(tfedge traces it again with --batch 1), re-export with model.export(DIR, input_signature="
            "[tf.TensorSpec((1, ...), ...)]), or build the layer with unroll=True."
        )
    found = _NO_16X8.search(text)
    if found:
        op = found.group(1).upper()
        return ConversionError(
            f"--quantize {mode}: TFLite has no int16x8 kernel for {op}. Use --quantize int8 (which "
            f"keeps {op} in float32 with float inputs/outputs), dynamic or float16."
        )
    found = _NO_INT8.search(text)
    if found:
        op = found.group(1).upper()
        return ConversionError(
            f"--quantize {mode}: TFLite has no int8 kernel for {op}. Use --io-type float32 so {op} "
            "can stay in float32, or --quantize dynamic or float16."
        )
    return None


@dataclass(frozen=True)
class FloatOp:
    """An op of a quantized model that computes in float32."""

    name: str
    subgraph: str
    #: The name of its first output tensor (what TensorFlow called the value).
    tensor: str
    #: True when the op sits in an IF branch whose sibling branch is quantized.
    unreached_branch: bool


def float_ops(content: bytes) -> tuple[FloatOp, ...]:
    """Ops that take float32 inputs, other than (de)quantize and control flow."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if isinstance(v, int) and not k.startswith("_")}
    float32 = schema.TensorType.FLOAT32
    subgraphs = model.subgraphs or []

    def op_name(op: object) -> str:
        code = model.operatorCodes[op.opcodeIndex]  # type: ignore[attr-defined]
        return names.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), "CUSTOM")

    def computes_float(sg: object, op: object) -> bool:
        tensors = sg.tensors  # type: ignore[attr-defined]
        ins = [i for i in (op.inputs if op.inputs is not None else []) if i >= 0]  # type: ignore[attr-defined]
        return op_name(op) not in _NEUTRAL and any(
            tensors[i].type == float32 and _is_activation(model, tensors[i]) for i in ins
        )

    quantized_sub = []
    for sg in subgraphs:
        ops = sg.operators or []
        quantized_sub.append(any(not computes_float(sg, op) and op_name(op) not in _NEUTRAL for op in ops) or not ops)
    branches: dict[int, int] = {}  # branch subgraph -> its sibling
    for sg in subgraphs:
        for op in sg.operators or []:
            if op_name(op) == "IF" and op.builtinOptions is not None:
                a, b = op.builtinOptions.thenSubgraphIndex, op.builtinOptions.elseSubgraphIndex
                branches[a], branches[b] = b, a
    found = []
    for index, sg in enumerate(subgraphs):
        sg_name = sg.name.decode() if isinstance(sg.name, bytes) else str(sg.name or index)
        for op in sg.operators or []:
            if computes_float(sg, op):
                out = sg.tensors[op.outputs[0]].name
                unreached = index in branches and quantized_sub[branches[index]] and not quantized_sub[index]
                found.append(FloatOp(op_name(op), sg_name, out.decode() if isinstance(out, bytes) else str(out), unreached))
    return tuple(found)


def _is_activation(model: object, tensor: object) -> bool:
    """True when a tensor has no constant data (an activation, not a weight)."""
    buffers = model.buffers  # type: ignore[attr-defined]
    buf = buffers[tensor.buffer] if buffers and tensor.buffer < len(buffers) else None  # type: ignore[attr-defined]
    return buf is None or buf.data is None or len(buf.data) == 0


def _branches(ops: tuple[FloatOp, ...]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for op in ops:
        if op.unreached_branch:
            grouped.setdefault(op.subgraph, []).append(op.name)
    return grouped


def unreached_branch_warning(ops: tuple[FloatOp, ...]) -> Optional[str]:
    """A warning naming IF branches calibration never took (their ops stay float32)."""
    grouped = _branches(ops)
    if not grouped:
        return None
    parts = [f"{name!r} ({', '.join(sorted(set(o)))})" for name, o in grouped.items()]
    return (
        f"calibration never reached branch {', '.join(parts)}: with no activation ranges its ops stay "
        "float32; add calibration samples that take it"
    )


def integer_only_error(ops: tuple[FloatOp, ...], opts: ConvertOptions) -> Optional[ConversionError]:
    """ConversionError when an integer-only model (--io-type int8/uint8) still computes in float."""
    if opts.quantize is not Quantize.INT8 or opts.io_type not in (IOType.INT8, IOType.UINT8) or not ops:
        return None
    io = opts.io_type.value
    grouped = _branches(ops)
    if grouped:
        name, names = next(iter(grouped.items()))
        return ConversionError(
            f"--io-type {io}: calibration never reached branch {name!r}, so its ops "
            f"({', '.join(sorted(set(names)))}) have no activation ranges and stay float32 in an "
            "integer-only model. Add calibration samples that take that branch."
        )
    kinds = sorted({o.name for o in ops})
    return ConversionError(
        f"--io-type {io}: TFLite has no int8 kernel for {', '.join(kinds)}, so the integer-only model "
        f"would still compute {'it' if len(kinds) == 1 else 'them'} in float32 (tensor {ops[0].tensor!r}). "
        "Use --io-type float32 to accept the float fallback, or replace the op."
    )
