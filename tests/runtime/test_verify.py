"""Tests of tfedge.verify: real models pass, corrupt ones fail with a clear ModelError."""

from __future__ import annotations

import importlib
import struct
from pathlib import Path
from typing import Any

import pytest

from support import BACKENDS
from support import MODELS as MODELS_DIR

from tfedge.errors import ModelError
from tfedge.verify import ModelSummary, verify_model

MODELS = sorted(MODELS_DIR.glob("*.tflite"))
HINT = "The file is corrupt or truncated; download or copy it again."
# The deliberately broken files that the verifier rejects (the backends reject them too).
REJECTED = {"0_subgraphs.tflite", "no_subgraphs.tflite", "test_model_broken.tflite"}


def _backends() -> list[tuple[str, Any]]:
    """(name, Interpreter class) of each backend that works here."""
    return [(name, importlib.import_module(f"{name}.interpreter").Interpreter) for name in BACKENDS]


def _read(name: str) -> bytearray:
    """A test model's bytes, ready to patch."""
    return bytearray((MODELS_DIR / name).read_bytes())


def _field(data: bytearray, table: int, slot: int) -> int:
    """Position of field `slot` of the table at `table`; 0 if the field is absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    if 4 + 2 * slot >= struct.unpack_from("<H", data, vtable)[0]:
        return 0
    offset = struct.unpack_from("<H", data, vtable + 4 + 2 * slot)[0]
    return table + offset if offset else 0


def _deref(data: bytearray, pos: int) -> int:
    """Where the uoffset at `pos` points."""
    return pos + struct.unpack_from("<I", data, pos)[0]


def _item(data: bytearray, table: int, slot: int, index: int) -> int:
    """Position of table `index` in the vector-of-tables field `slot`."""
    return _deref(data, _deref(data, _field(data, table, slot)) + 4 + 4 * index)


def _tensor(data: bytearray, subgraph: int, index: int) -> int:
    """Position of a tensor table."""
    return _item(data, _item(data, _deref(data, 0), 2, subgraph), 0, index)


def _error(data: bytes | bytearray) -> str:
    """The message verify_model raises for `data`."""
    with pytest.raises(ModelError) as info:
        verify_model(data)
    return str(info.value)


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_testdata_passes_unless_broken(path: Path) -> None:
    data = path.read_bytes()
    if path.name in REJECTED:
        _error(data)
    else:
        assert isinstance(verify_model(data), ModelSummary)


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b[0])
def test_no_model_a_backend_loads_is_rejected(path: Path, backend: tuple[str, Any]) -> None:
    data = path.read_bytes()
    try:
        backend[1](model_content=data)
    except (ValueError, RuntimeError):
        loaded = False
    else:
        loaded = True
    assert loaded == (path.name not in REJECTED)




def test_accepts_bytearray_and_memoryview() -> None:
    data = _read("add.tflite")
    assert verify_model(data) == verify_model(memoryview(bytes(data)))


def test_summary_of_add() -> None:
    summary = verify_model(_read("add.tflite"))
    assert summary.version == 3
    assert summary.operator_counts == {"ADD": 2}
    assert summary.op_versions == {"ADD": 1}
    assert summary.signature_keys == ("serving_default",)
    assert (summary.num_subgraphs, summary.num_tensors, summary.num_buffers) == (1, 3, 1)
    assert summary.custom_ops == summary.flex_ops == ()


def test_summary_names_flex_and_custom_ops() -> None:
    flex = verify_model(_read("softplus_flex.tflite"))
    assert flex.flex_ops == ("Softplus",)
    assert flex.custom_ops == ()
    assert flex.operator_counts == {"CUSTOM:FlexSoftplus": 1}
    custom = verify_model(_read("custom_sinh.tflite"))
    assert custom.custom_ops == ("Sinh",)
    assert custom.flex_ops == ()
    assert custom.operator_counts == {"CUSTOM:Sinh": 1}


def test_summary_of_signatures_metadata_and_subgraphs() -> None:
    summary = verify_model(_read("multi_signatures.tflite"))
    assert summary.signature_keys == ("add", "sub")
    assert summary.metadata_names == ("min_runtime_version",)
    assert verify_model(_read("multi_subgraphs_while.tflite")).num_subgraphs == 3


@pytest.mark.parametrize("size", [0, 4, 7])
def test_shorter_than_a_header(size: int) -> None:
    message = _error(_read("add.tflite")[:size])
    assert message == f"a TFLite model has at least 8 bytes, this one has {size}. {HINT}"


def test_every_truncation_is_rejected() -> None:
    for name in ("add.tflite", "pc_conv.tflite", "multi_subgraphs_while.tflite"):
        data = _read(name)
        for size in range(len(data)):
            _error(data[:size])


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (12, "the model would start at byte 36, past the end of the 12-byte file."),
        (100, "the buffers field of the model points at byte 180, past the end of the "
              "100-byte file."),
        (543, "operator code 0 would start at byte 540, past the end of the 543-byte file."),
    ],
)
def test_truncation_messages(size: int, expected: str) -> None:
    assert _error(_read("add.tflite")[:size]) == f"{expected} {HINT}"


def test_bad_identifier() -> None:
    data = _read("add.tflite")
    data[4:8] = b"TFL2"
    assert _error(data) == (
        "not a TFLite model: expected the identifier 'TFL3' at byte 4, found b'TFL2'. "
        "Pass a .tflite file (convert other formats with tfedge-convert)."
    )


def test_schema_version() -> None:
    data = _read("add.tflite")
    struct.pack_into("<I", data, _field(data, _deref(data, 0), 0), 2)
    assert _error(data) == (
        "the model has schema version 2; TFLite runtimes read version 3. "
        "Convert the model again with a current TensorFlow."
    )


def test_buffer_index_out_of_range() -> None:
    data = _read("pc_conv.tflite")
    struct.pack_into("<I", data, _field(data, _tensor(data, 0, 1), 2), 90)
    assert _error(data) == (
        f"tensor 1 in subgraph 0 points at buffer 90; the model has 6 buffers. {HINT}"
    )


def test_huge_vector_length() -> None:
    data = _read("add.tflite")
    subgraph = _item(data, _deref(data, 0), 2, 0)
    struct.pack_into("<I", data, _deref(data, _field(data, subgraph, 0)), 0x7FFFFFFF)
    assert _error(data) == (
        "the tensors field of subgraph 0 points at a vector of 2147483647 elements at byte "
        f"372, more than the 544-byte file holds. {HINT}"
    )


def test_misaligned_root() -> None:
    data = _read("add.tflite")
    struct.pack_into("<I", data, 0, 90)
    assert _error(data) == f"the model starts at byte 90, which is not a multiple of 4. {HINT}"


def test_operator_input_out_of_range() -> None:
    data = _read("add.tflite")
    op = _item(data, _item(data, _deref(data, 0), 2, 0), 3, 0)
    struct.pack_into("<i", data, _deref(data, _field(data, op, 1)) + 4, 7)
    assert _error(data) == (
        "an input of operator 0 in subgraph 0 (ADD) points at tensor 7; the model has 3 "
        f"tensors there. {HINT}"
    )


def test_constant_buffer_size_must_match_shape() -> None:
    data = _read("pc_conv.tflite")
    shape = _deref(data, _field(data, _tensor(data, 0, 1), 0))
    struct.pack_into("<i", data, shape + 16, 64)  # (1, 3, 3, 128) -> (1, 3, 3, 64)
    assert _error(data) == (
        "tensor 1 in subgraph 0 has the shape [1, 3, 3, 64] and 1-byte elements, so its "
        f"buffer 2 should hold 576 bytes, but it holds 1152. {HINT}"
    )


def test_negative_dimension() -> None:
    data = _read("pc_conv.tflite")
    shape = _deref(data, _field(data, _tensor(data, 0, 4), 0))
    struct.pack_into("<i", data, shape + 8, -1)
    assert _error(data) == (
        f"tensor 4 in subgraph 0 has the shape [1, -1, 128, 1], with a negative dimension. {HINT}"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (7, "the options of operator 0 in subgraph 0 (WHILE) points at subgraph 7; the model "
            "has 3 subgraphs there."),
        (0, "subgraph 0 calls subgraph 0, which is already running: control flow that never "
            "ends."),
    ],
)
def test_while_body_subgraph(body: int, expected: str) -> None:
    data = _read("multi_subgraphs_while.tflite")
    op = _item(data, _item(data, _deref(data, 0), 2, 0), 3, 0)
    struct.pack_into("<i", data, _field(data, _deref(data, _field(data, op, 4)), 1), body)
    assert _error(data) == f"{expected} {HINT}"


def test_file_size_below_data_size_is_a_usage_error() -> None:
    data = _read("add.tflite")
    assert verify_model(data, file_size=len(data) + 100) == verify_model(data)
    with pytest.raises(ValueError) as info:
        verify_model(data, file_size=len(data) - 1)
    assert type(info.value) is ValueError


def test_element_count_must_fit_32_bits() -> None:
    data = _read("add.tflite")
    shape = _deref(data, _field(data, _tensor(data, 0, 1), 0))
    struct.pack_into("<i", data, shape + 12, 268435464)
    assert _error(data) == (
        "tensor 1 in subgraph 0 has the shape [1, 8, 268435464, 3], 6442451136 elements; "
        f"TFLite counts elements in 32-bit integers, so at most 2147483647 can run. {HINT}"
    )


def test_names_must_be_utf8() -> None:
    data = _read("add.tflite")
    name = _deref(data, _field(data, _tensor(data, 0, 0), 3))
    data[name + 4] = 0xFF
    assert _error(data) == (
        f"the name field of tensor 0 in subgraph 0 is not valid UTF-8 text. {HINT}"
    )


def test_rank_is_bounded() -> None:
    data = _read("add.tflite")
    struct.pack_into("<I", data, _deref(data, _field(data, _tensor(data, 0, 2), 0)), 17)
    assert _error(data) == (
        f"tensor 2 in subgraph 0 has a shape of rank 17; more than 16 is not a real model. {HINT}"
    )


QUANT_HINT = ("The backend would crash the process on it. The file is damaged or its quantization was written "
              "wrong; quantize the model again or download it again.")


def _scales(data: bytearray, tensor: int) -> int:
    """Position of the scale vector (its count) of a tensor of subgraph 0."""
    quant = _deref(data, _field(data, _tensor(data, 0, tensor), 4))
    return _deref(data, _field(data, quant, 2))


def test_zero_points_without_scales_are_not_compared() -> None:
    # Without scales a tensor is not quantized: its zero points are never read (a string ADD
    # does not requantize, so nothing needs its scale).
    data = _read("tensor_string_data_type.tflite")
    scales = _scales(data, 0)
    assert struct.unpack_from("<I", data, scales)[0] == 1
    struct.pack_into("<I", data, scales, 0)
    assert verify_model(data).num_tensors == 3


def test_a_quantized_add_writing_a_tensor_without_a_scale_is_refused() -> None:
    # The fuzzer's finding (tests/fuzz/regressions/load/crash-c2652cc0...): an int8 ADD writes a
    # tensor declared float32 whose scale vector is empty. The backend makes the output int8
    # and divides by its missing scale: both backends abort (SIGABRT) in allocate_tensors().
    data = _read("add_quantized_int8.tflite")
    struct.pack_into("<I", data, _scales(data, 0), 0)
    assert _error(data) == (
        "operator 0 in subgraph 0 (ADD) is quantized, but its output tensor 0 in subgraph 0 has no "
        f"quantization scale; its kernel needs exactly one. {QUANT_HINT}"
    )
    data = _read("add_quantized_int8.tflite")  # the same for an input, and for a missing table
    struct.pack_into("<I", data, _scales(data, 1), 0)
    assert _error(data).startswith("operator 0 in subgraph 0 (ADD) is quantized, but its input tensor 1 in "
                                   "subgraph 0 has no quantization scale;")


@pytest.mark.parametrize("scale", [0.0, -0.0, -0.5, float("inf"), float("nan")])
def test_a_quantized_activation_scale_is_a_positive_finite_number(scale: float) -> None:
    data = _read("add_quantized_int8.tflite")
    struct.pack_into("<f", data, _scales(data, 2) + 4, scale)
    assert _error(data) == (
        f"operator 1 in subgraph 0 (ADD) is quantized, but its output tensor 2 in subgraph 0 has the scale "
        f"{scale}; its kernel divides by it, so it must be a positive finite number. {QUANT_HINT}"
    )


def test_the_crash_class_is_refused_by_both_backends_too() -> None:
    """LiteRT's own blockwise_quantized.tflite is one of the class: an int8 ADD with no scales."""
    data = (MODELS_DIR.parent / "runtime-cases" / "blockwise_quantized.tflite").read_bytes()
    assert _error(data).startswith("operator 0 in subgraph 0 (ADD) is quantized, but its input tensor 3 in "
                                   "subgraph 0 has no quantization scale;")


def test_tensor_bytes_is_what_the_tensors_without_data_declare() -> None:
    assert verify_model(_read("add.tflite")).tensor_bytes == 3 * 8 * 8 * 3 * 4  # three float32 (1, 8, 8, 3)
    data = _read("add.tflite")  # a declared shape of gigabytes is the model's demand, known before loading
    struct.pack_into("<i", data, _deref(data, _field(data, _tensor(data, 0, 1), 0)) + 4, 8388609)
    assert verify_model(data).tensor_bytes == (2 + 8388609) * 8 * 8 * 3 * 4


@pytest.mark.parametrize(("zero_point", "shown"), [(-4224, "-4224"), (128, "128"), (2**40, str(2**40))])
def test_a_zero_point_outside_the_tensor_type_is_refused(zero_point: int, shown: str) -> None:
    # The load target's second finding (tests/fuzz/regressions/load/crash-14e7102c...): an int8 zero
    # point of -4224 on a QUANTIZE output made ai_edge_litert's XNNPACK delegate crash (SIGSEGV).
    data = _read("pc_conv.tflite")
    quant = _deref(data, _field(data, _tensor(data, 0, 2), 4))
    struct.pack_into("<q", data, _deref(data, _field(data, quant, 3)) + 4, zero_point)
    assert _error(data) == (
        f"the quantization of tensor 2 in subgraph 0 has the zero point {shown}, outside the INT8 range "
        f"[-128, 127]. {QUANT_HINT}"
    )


def test_an_op_missing_an_input_its_kernel_needs_is_refused() -> None:
    # The load target's third finding (tests/fuzz/regressions/load/crash-8b00eddd...): an ADD whose
    # first input is -1 (the mark of an optional input) made ai_edge_litert crash (SIGSEGV) in
    # allocate_tensors(); tflite_runtime refused it. An ADD reads both inputs in every version.
    data = (Path(__file__).resolve().parents[1] / "fuzz" / "regressions" / "load" /
            "crash-8b00eddd6a5e02be334dc1b00c0d2a7a90156983").read_bytes()
    assert _error(data) == (
        "operator 0 in subgraph 0 (ADD) lacks one of the 2 inputs its kernel needs (inputs [-1, 1]; -1 marks an "
        "optional input). The backend would crash the process on it. The file is damaged or was written wrong; "
        "convert the model again or download it again."
    )


def _add_with_scale(tensor: int, scale: float) -> bytearray:
    """add_quantized_int8.tflite (two int8 ADDs, every scale 0.003922) with one tensor's scale set."""
    data = _read("add_quantized_int8.tflite")
    struct.pack_into("<f", data, _scales(data, tensor) + 4, scale)
    return data


def _with_opcode(data: bytearray, opcode: int) -> bytes:
    """The model rewritten with its one operator code made `opcode` (its table has no field to patch)."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    flatbuffers = pytest.importorskip("flatbuffers")
    model = schema.ModelT.InitFromPackedBuf(bytes(data), 0)
    model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = opcode
    for op in model.subgraphs[0].operators:  # AddOptions would be read as another op's options
        op.builtinOptionsType, op.builtinOptions = 0, None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _aborts(data: bytes | bytearray, backend: str, tmp_path: Path) -> bool:
    """Whether loading `data` with `backend` in a child process kills it with SIGABRT."""
    import signal
    import subprocess
    import sys

    path = tmp_path / f"{backend}.tflite"
    path.write_bytes(data)
    code = (f"from {backend}.interpreter import Interpreter\n"
            f"Interpreter(model_path={str(path)!r}).allocate_tensors()")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert child.returncode in (0, -signal.SIGABRT), child.stderr
    return child.returncode == -signal.SIGABRT


@pytest.mark.parametrize(("opcode", "scale", "refused"), [
    (0, 7.49e-9, False), (0, 7.47e-9, True),  # ADD: 2 x 0.003922 / (2^20 x scale) below 1 or not
    (41, 7.480621455613345e-09, True), (41, 1e-12, False),  # SUB: exactly 1 aborts; above 1 runs
    (99, 3.76e-9, False), (99, 3.75e-9, True),  # SQUARED_DIFFERENCE: (2 x 0.003922)^2 / (2^14 x scale)
], ids=["add-above", "add-below", "sub-one", "sub-above-one", "sqd-above", "sqd-below"])
def test_a_quantized_add_sub_or_squared_difference_needs_its_multiplier_in_range(
        opcode: int, scale: float, refused: bool, tmp_path: Path) -> None:
    """The load target's findings (tests/fuzz/regressions/load/crash-3074a06..., -7a0ad6b..., -8e58e19...).

    Each scale valid, the ratio not: the kernel's output multiplier must be below 1
    (QuantizeMultiplierSmallerThanOneExp aborts the process otherwise). Checked against the backends.
    """
    data = _add_with_scale(2, scale)
    if opcode:
        data = bytearray(_with_opcode(data, opcode))
    if refused:
        name = {0: "ADD", 41: "SUB", 99: "SQUARED_DIFFERENCE"}[opcode]
        assert _error(data).startswith(f"operator 1 in subgraph 0 ({name}) is quantized, but its output tensor 2 in "
                                       "subgraph 0 has the scale ")
    else:
        verify_model(data)
    for backend in BACKENDS:  # tflite_runtime 2.14's SUB also aborts on a multiplier above 1; ai_edge_litert's runs
        expected = refused or (backend == "tflite_runtime" and opcode == 41)
        assert _aborts(data, backend, tmp_path) == expected, backend


def test_the_kernels_float32_arithmetic_on_scales_may_not_overflow() -> None:
    assert _error(_add_with_scale(1, 2e38)) == (
        "operator 0 in subgraph 0 (ADD) is quantized, but its input tensor 1 in subgraph 0 has the scale 2e+38; its "
        f"kernel doubles the larger input scale in float32, so it must be at most 1.701e+38. {QUANT_HINT}")
    assert _error(_add_with_scale(2, 3.3e32)) == (
        "operator 1 in subgraph 0 (ADD) is quantized, but its output tensor 2 in subgraph 0 has the scale 3.3e+32; its "
        f"kernel multiplies the output scale by 2^20 in float32, so it must be at most 3.245e+32. {QUANT_HINT}")
    assert _error(_add_with_scale(2, 5e-9)).endswith(  # the full message of a multiplier of 1 or more
        "has the scale 5e-09, too small for its inputs' scales (0.003922, 0.003922): its kernel requantizes the "
        "result by 2 x the larger input scale / (2^20 x the output scale) = 1.496, which must be below 1, so the "
        f"output scale must be above 7.481e-09. {QUANT_HINT}")
