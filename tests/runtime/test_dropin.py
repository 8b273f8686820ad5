"""tfedge.Interpreter as a drop-in: side by side with each backend's own Interpreter.

Every call a drop-in user makes (the public API, and the private helpers code copies:
``_get_ops_details``, ``_get_tensor_details``, ``_native_handle``, ...) is made on the
backend's raw ``Interpreter`` and on ``tfedge.Interpreter`` over the same model, and the
answers compared. What may differ is listed in :data:`ALLOWED`, with the reason; a test
that meets another difference fails.
"""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfedge
from support import MODELS

#: Every difference from the backends' own Interpreter this suite allows, and why.
ALLOWED = {
    "allocated at load": "tfedge allocates tensors when it loads the model, so invoke() before "
    "allocate_tensors() runs instead of raising; the backends need the call first.",
    "clearer messages": "errors keep the backends' exception class (ValueError, RuntimeError) but "
    "are tfedge's subclasses with a message naming the fix; the text differs.",
    "num_threads default": "tfedge's default is the cores this process may use, the backends' 1: "
    "the suite passes num_threads=1 to both.",
    "extra methods": "tfedge adds run(), input_specs() and the rest; num_subgraphs() exists on "
    "tflite_runtime's tfedge Interpreter too (the raw one lacks it).",
    "get_tensor on an unallocated tensor": "not compared: tfedge never has one (allocated at load).",
}

#: The LiteRT test models the suite runs (tests/data/litert-testdata), with what each covers.
KEPT = (
    "add.tflite",  # one input, two ops
    "add_quantized_int8.tflite",  # quantization parameters in the details
    "multi_add.tflite",  # four inputs, two outputs
    "multi_signatures.tflite",  # signature runners on two subgraphs
    "string_input_model.tflite",  # string tensors
)


def _raw(backend: str, path: Path) -> Any:
    module = importlib.import_module(f"{backend}.interpreter")
    return module.Interpreter(model_path=str(path), num_threads=1)


def _pair(backend: str, name: str) -> tuple[Any, tfedge.Interpreter]:
    path = MODELS / name
    raw = _raw(backend, path)
    raw.allocate_tensors()
    return raw, tfedge.Interpreter(path, backend=backend, num_threads=1)


def _same(a: Any, b: Any) -> None:
    """Equal, looking inside dicts, lists and arrays."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (a, b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b, (a, b)


def _inputs(details: list[dict[str, Any]]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for d in details:
        dtype = np.dtype(d["dtype"])
        if dtype.kind in "SO":
            arrays.append(np.array([b"ab"] * int(np.prod(d["shape"])), dtype=object).reshape(d["shape"]))
        elif dtype.kind == "f":
            arrays.append(rng.standard_normal(d["shape"]).astype(dtype))
        else:
            info = np.iinfo(dtype)
            arrays.append(rng.integers(max(info.min, -100), min(info.max, 100), d["shape"]).astype(dtype))
    return arrays


@pytest.mark.parametrize("name", KEPT)
def test_details_match(backend: str, name: str) -> None:
    raw, ours = _pair(backend, name)
    _same(raw.get_input_details(), ours.get_input_details())
    _same(raw.get_output_details(), ours.get_output_details())
    _same(raw.get_tensor_details(), ours.get_tensor_details())
    _same(raw.get_signature_list(), ours.get_signature_list())
    _same(raw._get_ops_details(), ours._get_ops_details())
    for op in range(len(raw._get_ops_details())):
        _same(raw._get_op_details(op), ours._get_op_details(op))
    for tensor in range(len(raw.get_tensor_details())):
        _same(raw._get_tensor_details(tensor, 0), ours._get_tensor_details(tensor, 0))
    if hasattr(raw, "num_subgraphs"):
        assert raw.num_subgraphs() == ours.num_subgraphs()


@pytest.mark.parametrize("name", KEPT)
def test_set_invoke_get_match(backend: str, name: str) -> None:
    raw, ours = _pair(backend, name)
    details = raw.get_input_details()
    for interp in (raw, ours):
        for d, x in zip(details, _inputs(details)):
            interp.set_tensor(d["index"], x)
        interp.invoke()
    for d in raw.get_output_details():
        _same(raw.get_tensor(d["index"]), ours.get_tensor(d["index"]))


@pytest.mark.parametrize("name", ["multi_signatures.tflite", "add.tflite"])
def test_signature_runners_match(backend: str, name: str) -> None:
    raw, ours = _pair(backend, name)
    for key in raw.get_signature_list():
        raw_runner, our_runner = raw.get_signature_runner(key), ours.get_signature_runner(key)
        _same(raw_runner.get_input_details(), our_runner.get_input_details())
        _same(raw_runner.get_output_details(), our_runner.get_output_details())
        named = raw_runner.get_input_details()
        feed = dict(zip(named, _inputs(list(named.values()))))
        _same(raw_runner(**feed), our_runner(**feed))


def test_resize_allocate_and_tensor_views(backend: str) -> None:
    raw, ours = _pair(backend, "add.tflite")
    index = raw.get_input_details()[0]["index"]
    for interp in (raw, ours):
        interp.resize_tensor_input(index, [2, 8, 8, 3])
        interp.allocate_tensors()
        interp.set_tensor(index, np.ones((2, 8, 8, 3), np.float32))
        interp.invoke()
    out = raw.get_output_details()[0]["index"]
    _same(raw.get_tensor(out), ours.get_tensor(out))
    # A view from tensor() makes the interpreter unsafe to run, on both.
    raw_view, our_view = raw.tensor(out)(), ours.tensor(out)()
    _same(raw_view, our_view)
    assert raw._safe_to_run() is False and ours._safe_to_run() is False
    with pytest.raises(RuntimeError):
        raw.invoke()
    with pytest.raises(RuntimeError):  # ALLOWED["clearer messages"]
        ours.invoke()
    del raw_view, our_view
    assert raw._safe_to_run() is True and ours._safe_to_run() is True


def test_native_handle_is_the_cpp_interpreter(backend: str) -> None:
    raw, ours = _pair(backend, "add.tflite")
    for interp in (raw, ours):
        handle = interp._native_handle()
        assert isinstance(handle, int) and handle != 0
    assert ours._native_handle() == ours._native_handle()  # stable while no fallback rebuilds it


@pytest.mark.parametrize("kwargs", [{}, {"model_path": None}, {"model_path": None, "model_content": None}])
def test_no_model_is_a_value_error_on_both(backend: str, kwargs: dict[str, Any]) -> None:
    module = importlib.import_module(f"{backend}.interpreter")
    with pytest.raises(ValueError):
        module.Interpreter(**kwargs)
    with pytest.raises(ValueError, match=r"^Pass exactly one model: a path or bytes \(model, model_path or "
                       r"model_content\); got none\.$"):
        tfedge.Interpreter(**kwargs)


def test_two_models_is_a_value_error(backend: str) -> None:
    path = MODELS / "add.tflite"
    module = importlib.import_module(f"{backend}.interpreter")
    with pytest.raises(ValueError):
        module.Interpreter(model_path=str(path), model_content=path.read_bytes())
    with pytest.raises(ValueError, match="got 2"):
        tfedge.Interpreter(model_path=str(path), model_content=path.read_bytes(), backend=backend)


def test_unknown_signature_is_a_value_error_on_both(backend: str) -> None:
    raw, ours = _pair(backend, "multi_signatures.tflite")
    with pytest.raises(ValueError):
        raw.get_signature_runner("nope")
    with pytest.raises(ValueError) as info:
        ours.get_signature_runner("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, tfedge.SignatureError)
    assert str(info.value) == "Unknown signature 'nope'. Available: 'add', 'sub'."


def test_wrong_input_is_a_value_error_on_both(backend: str) -> None:
    raw, ours = _pair(backend, "add.tflite")
    index = raw.get_input_details()[0]["index"]
    bad = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError):
        raw.set_tensor(index, bad)
    with pytest.raises(ValueError):  # ALLOWED["clearer messages"]: an InputError
        ours.set_tensor(index, bad)


def test_invoke_before_allocate(backend: str) -> None:
    module = importlib.import_module(f"{backend}.interpreter")
    raw = module.Interpreter(model_path=str(MODELS / "add.tflite"))
    with pytest.raises(RuntimeError):
        raw.invoke()
    ours = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    ours.invoke()  # ALLOWED["allocated at load"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # upstream's own
def test_load_delegate_is_exported_and_feeds_experimental_delegates(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tfedge import Interpreter, load_delegate  # noqa: F401 - the import is the test

    module = importlib.import_module(f"{backend}.interpreter")
    with pytest.raises(Exception) as raw:
        module.load_delegate("libnothere.so")
    expected = type(raw.value), str(raw.value)
    del raw  # upstream's half-built Delegate complains as it goes (the warning filtered above)
    gc.collect()
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(Exception) as ours:
        load_delegate("libnothere.so", backend=backend)
    assert (type(ours.value), str(ours.value)) == expected
    del ours  # its traceback holds whatever the call left half built
    gc.collect()
    # Upstream's half-built Delegate prints "Exception ignored in ... __del__" (both backends); ours leaves none.
    assert unraisable == []


def test_compress_quantization_zero_points(backend: str) -> None:
    ours = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    assert ours.experimental_compress_quantization_zero_points is False
    module = importlib.import_module(f"{backend}.interpreter")
    if hasattr(module.Interpreter, "experimental_compress_quantization_zero_points"):
        raw = module.Interpreter(model_path=str(MODELS / "add.tflite"),
                                 experimental_compress_quantization_zero_points=True)
        on = tfedge.Interpreter(MODELS / "add.tflite", backend=backend,
                                experimental_compress_quantization_zero_points=True)
        assert raw.experimental_compress_quantization_zero_points is True
        assert on.experimental_compress_quantization_zero_points is True


def test_allowed_differences_have_reasons() -> None:
    assert all(reason.strip().endswith(".") for reason in ALLOWED.values())


def test_custom_op_registerers_reach_the_backend(backend: str) -> None:
    # By function: called with the address of the backend's op resolver, as upstream.
    seen: list[Any] = []
    with pytest.raises(tfedge.ModelError, match=r"uses custom op\(s\) Sinh that .* Register them: Interpreter\(model, "
                       r"custom_op_registerers=\[SYMBOL_NAME or function\]\)"):
        tfedge.Interpreter(MODELS / "custom_sinh.tflite", backend=backend, custom_op_registerers=[seen.append])
    assert len(seen) == 1 and isinstance(seen[0], int) and seen[0] != 0
    # By symbol name: the backend looks it up.
    with pytest.raises(tfedge.ModelError, match="Looking up symbol 'NoSuchRegisterer' failed"):
        tfedge.Interpreter(MODELS / "custom_sinh.tflite", backend=backend, custom_op_registerers=["NoSuchRegisterer"])
