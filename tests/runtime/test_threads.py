"""One Interpreter shared by many threads, and InterpreterPool."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np
import pytest

from support import MODELS

import tfedge
from tfedge import InputError, InvokeError, _backend

BACKENDS = [b for b in ("ai_edge_litert", "tflite_runtime") if b in _backend.available_backends()]
THREADS, CALLS = 8, 200


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _hammer(worker: Callable[[int], None], threads: int = THREADS) -> None:
    """Run ``worker(i)`` in ``threads`` threads started together; re-raise the first error."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            worker(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


def _inputs(interp: tfedge.Interpreter, n: int, seed: int = 0) -> list[list[np.ndarray]]:
    """``n`` distinct input sets for ``interp``."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s.shape).astype(s.dtype) for s in interp.input_specs()] for _ in range(n)]


@pytest.mark.parametrize("model", ["add.tflite", "multi_add.tflite", "add_quantized_int8.tflite"])
def test_hammer_one_interpreter(backend: str, model: str) -> None:
    # add: the one-input hot path; multi_add: the general path (4 inputs, 2 outputs);
    # add_quantized_int8: quantize and dequantize on the way.
    interp = tfedge.Interpreter(MODELS / model, backend=backend, num_threads=1)
    feeds = _inputs(interp, THREADS * CALLS)
    feeds = [f[0] if len(f) == 1 else f for f in feeds]
    reference = [interp.run(f) for f in feeds]  # single-threaded
    results: list[dict[str, np.ndarray] | None] = [None] * len(feeds)

    def worker(i: int) -> None:
        for j in range(CALLS):
            k = i * CALLS + j
            results[k] = interp.run(feeds[k])

    _hammer(worker)
    for k, (got, want) in enumerate(zip(results, reference)):
        assert got is not None and got.keys() == want.keys(), k
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"call {k}, output {name}")


def test_reallocating_drop_ins_while_running(backend: str) -> None:
    # Half the threads run(), the others call the drop-in methods that may move tensor
    # memory; the backends' own check would refuse these whenever another thread holds
    # a reference to their wrapper ("There is at least 1 reference to internal data").
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, num_threads=1)
    runner = interp.get_signature_runner()  # holds a reference to the wrapper for good
    index = interp.get_input_details()[0]["index"]
    shape = interp.input_specs()[0].shape
    feeds = [f[0] for f in _inputs(interp, 400)]
    reference = [interp.run(x)["x"] for x in feeds]

    def worker(i: int) -> None:
        for j in range(100):
            k = (i * 100 + j) % len(feeds)
            if i % 2 == 0:
                np.testing.assert_array_equal(interp.run(feeds[k])["x"], reference[k])
            elif i == 1:
                interp.resize_tensor_input(index, shape)
                interp.allocate_tensors()
            elif i == 3:
                np.testing.assert_array_equal(runner(a=feeds[k])["x"], reference[k])
            else:
                interp.invoke()

    _hammer(worker)


def test_signature_runner_does_not_block_drop_in_invoke(backend: str) -> None:
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    runner = interp.get_signature_runner()
    x = np.ones(interp.input_specs()[0].shape, np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()  # the backend's own invoke() refuses here: the runner holds its wrapper
    np.testing.assert_array_equal(interp.get_tensor(interp.get_output_details()[0]["index"]), x * 3)
    np.testing.assert_array_equal(runner(a=x)["x"], x * 3)


def test_numpy_views_still_block_reallocation(backend: str) -> None:
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    view = interp.tensor(interp.get_input_details()[0]["index"])()
    with pytest.raises(InvokeError) as info:
        interp.allocate_tensors()
    assert str(info.value) == (
        "allocate_tensors() cannot run while 1 numpy array(s) from tensor() still point into the "
        "interpreter's memory, which it may move. Delete those arrays (keep the function tensor() "
        "returns and call it again afterwards), or use get_tensor(), which copies."
    )
    del view
    interp.allocate_tensors()


# -- InterpreterPool ----------------------------------------------------------------


def test_pool_map_in_order_identical_to_sequential(backend: str) -> None:
    model = MODELS / "multi_add.tflite"
    single = tfedge.Interpreter(model, backend=backend, num_threads=1)
    feeds = _inputs(single, 300)
    sequential = [single.run(f) for f in feeds]
    with tfedge.InterpreterPool(model, size=3, backend=backend) as pool:
        assert pool.size == 3 and len(pool.interpreters) == 3
        assert all(i.num_threads == 1 for i in pool.interpreters)
        results = list(pool.map(iter(feeds)))  # an iterator, read ahead lazily
    assert len(results) == len(sequential)
    for k, (got, want) in enumerate(zip(results, sequential)):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"item {k}")


def test_pool_run_from_many_threads(backend: str) -> None:
    model = MODELS / "add.tflite"
    pool = tfedge.InterpreterPool(model, size=2, backend=backend)
    feeds = [f[0] for f in _inputs(pool.interpreters[0], THREADS * 50)]
    reference = [x * 3 for x in feeds]  # add.tflite computes a + a + a

    def worker(i: int) -> None:
        for j in range(50):
            k = i * 50 + j
            np.testing.assert_array_equal(pool.run(feeds[k])["x"], reference[k])

    _hammer(worker)


def test_pool_defaults_and_errors() -> None:
    pool = tfedge.InterpreterPool(MODELS / "add.tflite")
    assert pool.size == len(os.sched_getaffinity(0))
    assert pool.interpreters[0].num_threads == 1
    bad = [np.zeros((1, 8, 8, 3), np.float32), np.zeros((2, 2), np.float32)]
    results = pool.map(bad)
    assert next(results)["x"].shape == (1, 8, 8, 3)
    with pytest.raises(InputError, match=r"^Input 'a' expects shape \(1, 8, 8, 3\) float32, got \(2, 2\) float32\.$"):
        next(results)
    pool.close()
    with pytest.raises(ValueError, match=r"^size must be a whole number >= 1, got 0\.$"):
        tfedge.InterpreterPool(MODELS / "add.tflite", size=0)
    with pytest.raises(TypeError, match=r"unknown keyword argument 'workers'.* InterpreterPool's own option is size"):
        tfedge.InterpreterPool(MODELS / "add.tflite", workers=2)


@pytest.mark.parametrize("name", ["lstm.tflite", "unidirectional_sequence_lstm.tflite"])
def test_a_pool_refuses_a_model_that_keeps_state_between_calls(name: str) -> None:
    # Each pooled interpreter has its own state: calls spread over them would mix streams.
    alone = tfedge.Interpreter(MODELS / name)
    assert alone.keeps_state and tfedge.Interpreter(MODELS / "add.tflite").keeps_state == ()
    x = [np.full(s.shape, 0.5, s.dtype) for s in alone.input_specs()]
    first, second = alone.run(x), alone.run(x)
    assert any(not np.array_equal(first[k], second[k]) for k in first)  # the same input, another answer
    with pytest.raises(tfedge.ModelError) as info:
        tfedge.InterpreterPool(MODELS / name, size=2)
    assert f"{name}' keeps state from one call to the next ({alone.keeps_state[0]}): a pool of 2 " in str(info.value)
    assert "Use size=1 for one stream" in str(info.value)
    assert tfedge.InterpreterPool(MODELS / name, size=1).size == 1
    with pytest.raises(tfedge.ModelError, match="does not exist"):
        tfedge.InterpreterPool(MODELS / "missing.tflite", size=2)


def test_pool_verifies_the_shared_bytes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import tfedge._model

    calls = []
    real = tfedge._model.verify_model
    monkeypatch.setattr(tfedge._model, "verify_model", lambda data: calls.append(1) or real(data))
    pool = tfedge.InterpreterPool(MODELS / "add.tflite", size=3)
    assert len(calls) == 1
    summaries = {id(interp.summary) for interp in pool.interpreters}
    assert len(summaries) == 1 and len(calls) == 1
    assert len({id(interp.model_content) for interp in pool.interpreters}) == 1  # one copy of the bytes
    assert pool.interpreters[2].summary.operator_counts == {"ADD": 2}
    pool.close()
    with pytest.raises(tfedge.ModelError, match="operator code"):  # the first still verifies
        tfedge.InterpreterPool((MODELS / "add.tflite").read_bytes()[:543], size=2)


def test_a_kept_error_does_not_block_reallocation(backend: str) -> None:
    # pytest.raises keeps the traceback, and with it tfedge's frames: they must not hold
    # the backend's wrapper, or every later allocate_tensors() would see a "view".
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    with pytest.raises(InputError):
        interp.run(np.zeros((2, 2), np.float32))
    with pytest.raises(InputError):
        interp.run({"a": np.zeros((3, 3), np.float32)})  # the general path
    interp.allocate_tensors()
    interp.invoke()
