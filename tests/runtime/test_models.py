"""Every shared test model through tfedge.Interpreter, against the raw backend.

Where the raw backend runs a model, tfedge's ``run()`` and its drop-in methods give
bit-identical outputs on the same seeded random inputs; where the raw backend
rejects a model, tfedge raises a TfedgeError subclass and never the raw exception.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pytest
from support import MODELS

import tfedge
from tfedge.delegates import DelegateFallbackWarning
from tfedge.quant import QuantParams, dequantize

#: Loops forever on any input (a WHILE whose condition never turns false): the
#: isolation probe covers it; here it would hang the test run.
HANGS = {"nested_while.tflite"}



@pytest.fixture(autouse=True)
def no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """No crash probe: this file compares values with the raw backend, which runs every model here
    in this process anyway; the probe would rerun each (the huge im2col ones take seconds) in a
    child. tests/runtime/test_nocrash.py and test_isolate.py test the default probe."""
    monkeypatch.setenv("TFEDGE_PROBE", "0")


ALL_MODELS = sorted(p.name for p in MODELS.glob("*.tflite")) if MODELS.is_dir() else []


def _random_inputs(details: list[dict[str, Any]], seed: int = 0) -> list[np.ndarray]:
    """Seeded random inputs for the given tensor details (free dimensions set to 1)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for d in details:
        shape = tuple(int(x) if x >= 0 else 1 for x in d["shape_signature"])
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind in "iu":
            arrays.append(rng.integers(0, 4, shape).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 2, shape).astype(bool))
        else:
            arrays.append(np.array([b"abc"] * int(np.prod(shape)), dtype=object).reshape(shape))
    return arrays


def _raw_run(backend: str, path: str, no_default_delegates: bool = False) -> tuple[str, Any]:
    """What the raw backend does with ``path``: ("ok", (inputs, outputs)) or ("error", exc)."""
    module = importlib.import_module(f"{backend}.interpreter")
    resolver = module.OpResolverType
    kind = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES if no_default_delegates else resolver.AUTO
    try:
        raw = module.Interpreter(model_path=path, experimental_op_resolver_type=kind)
        raw.allocate_tensors()
        ins = raw.get_input_details()
        arrays = _random_inputs(ins)
        for d, a in zip(ins, arrays):
            if tuple(a.shape) != tuple(d["shape"]):
                raw.resize_tensor_input(d["index"], a.shape)
        raw.allocate_tensors()
        for d, a in zip(ins, arrays):
            raw.set_tensor(d["index"], a)
        raw.invoke()
        outs = {d["index"]: raw.get_tensor(d["index"]) for d in raw.get_output_details()}
    except Exception as exc:  # noqa: BLE001 - recording whatever the backend raises
        return "error", exc
    return "ok", ({d["index"]: a for d, a in zip(ins, arrays)}, outs)


def _assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Bit-identical arrays (same dtype, shape and bytes; NaN equal to NaN)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        if g.dtype == object:
            assert g.tolist() == w.tolist()
        else:
            assert g.tobytes() == w.tobytes()


@pytest.mark.parametrize("name", [m for m in ALL_MODELS if m not in HANGS])
def test_model_matches_raw_backend(backend: str, name: str) -> None:
    path = str(MODELS / name)
    verdict, result = _raw_run(backend, path)
    if verdict == "error":
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                interp = tfedge.Interpreter(path, backend=backend)
                got = interp.run([a for a in _random_inputs(interp.get_input_details())], raw=True)
        except tfedge.TfedgeError as exc:
            assert str(exc), "a TfedgeError must say what went wrong"
            return
        # tfedge ran what the raw backend could not: only by dropping a failing delegate,
        # and then exactly as the raw backend runs without its default delegate.
        assert any(issubclass(w.category, DelegateFallbackWarning) for w in caught), name
        verdict, result = _raw_run(backend, path, no_default_delegates=True)
        assert verdict == "ok", result
        _, want_by_index = result
        _assert_same(list(got.values()), [want_by_index[s.index] for s in interp.output_specs()])
        return
    by_index, want_by_index = result  # raw inputs and outputs keyed by tensor index
    interp = tfedge.Interpreter(path, backend=backend)
    # run() takes inputs in input_specs() order (a signature's order may differ from
    # get_input_details()'s) and returns outputs keyed by name in output_specs() order.
    arrays = [by_index[s.index] for s in interp.input_specs()]
    want = [want_by_index[s.index] for s in interp.output_specs()]
    outputs = interp.run(arrays, raw=True)
    assert list(outputs) == [s.name for s in interp.output_specs()]
    _assert_same(list(outputs.values()), want)

    # Default (not raw) run: the same, with quantized outputs dequantized. Each check
    # gets a fresh Interpreter: some models keep state between calls (variables).
    fresh = tfedge.Interpreter(path, backend=backend)
    dequantized = fresh.run(arrays)
    for spec, value, w in zip(fresh.output_specs(), dequantized.values(), want):
        expected = dequantize(w, spec.quantization) if spec.dtype.kind in "iu" and spec.quantization else w
        _assert_same([value], [expected])

    # The drop-in methods, as a tflite_runtime app calls them, on a fresh Interpreter.
    drop_in = tfedge.Interpreter(model_path=path, backend=backend)
    drop_in.allocate_tensors()
    for d in drop_in.get_input_details():
        if tuple(by_index[d["index"]].shape) != tuple(d["shape"]):
            drop_in.resize_tensor_input(d["index"], by_index[d["index"]].shape)
    drop_in.allocate_tensors()
    for d in drop_in.get_input_details():
        drop_in.set_tensor(d["index"], by_index[d["index"]])
    drop_in.invoke()
    details = drop_in.get_output_details()
    _assert_same([drop_in.get_tensor(d["index"]) for d in details], [want_by_index[d["index"]] for d in details])


def test_quantized_io_matches_manual_quantization(backend: str) -> None:
    path = str(MODELS / "add_quantized_int8.tflite")
    interp = tfedge.Interpreter(path, backend=backend)
    (spec,) = interp.input_specs()
    (out_spec,) = interp.output_specs()
    assert spec.dtype == np.int8 and spec.quantization is not None
    x = np.random.default_rng(0).uniform(-0.6, 0.6, spec.shape).astype(np.float32)

    # By hand: quantize (round half to even, clip), run integers, dequantize.
    scale, zero = spec.quantization.scales[0], spec.quantization.zero_points[0]
    q = np.clip(np.rint(x.astype(np.float64) / scale) + zero, -128, 127).astype(np.int8)
    raw = importlib.import_module(f"{backend}.interpreter").Interpreter(model_path=path)
    raw.allocate_tensors()
    raw.set_tensor(raw.get_input_details()[0]["index"], q)
    raw.invoke()
    q_out = raw.get_tensor(raw.get_output_details()[0]["index"])
    o_scale, o_zero = out_spec.quantization.scales[0], out_spec.quantization.zero_points[0]
    want = ((q_out.astype(np.int64) - o_zero) * o_scale).astype(np.float32)

    got = interp.run(x)[out_spec.name]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    # raw=True passes the integers through untouched.
    np.testing.assert_array_equal(interp.run(q, raw=True)[out_spec.name], q_out)
    # Integers of the model's type given without raw=True are taken as already quantized.
    np.testing.assert_array_equal(interp.run(q)[out_spec.name], want)


def test_quant_round_half_to_even_and_clip() -> None:
    params = QuantParams(scales=(0.5,), zero_points=(-1,))
    x = np.array([0.25, 0.75, -0.25, 100.0, -100.0], np.float32)
    # 0.25/0.5 = 0.5 -> 0; 1.5 -> 2; -0.5 -> -0; then + zero point, clipped to int8.
    np.testing.assert_array_equal(tfedge.quantize(x, params, np.int8), [-1, 1, -1, 127, -128])
    np.testing.assert_array_equal(
        tfedge.dequantize(np.array([-1, 1, 127], np.int8), params), np.array([0.0, 1.0, 64.0], np.float32)
    )


def test_per_channel_dequantize() -> None:
    params = QuantParams(scales=(1.0, 0.5), zero_points=(0, 2), axis=1)
    q = np.array([[4, 4], [2, 6]], np.int8)
    np.testing.assert_array_equal(tfedge.dequantize(q, params), [[4.0, 1.0], [2.0, 2.0]])
