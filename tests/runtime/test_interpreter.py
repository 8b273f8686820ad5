"""tfedge.Interpreter: shapes, batching, input errors, messages, import hygiene."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from support import MODELS, model_path

import tfedge
from tfedge import InputError, ModelError, SignatureError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def add(backend: str) -> tfedge.Interpreter:
    """add.tflite: one input 'a' (1, 8, 8, 3) float32, output 'x' = 3 * a."""
    return tfedge.Interpreter(model_path("add.tflite"), backend=backend)


def test_run_forms_agree(add: tfedge.Interpreter) -> None:
    x = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    want = add.run(x)["x"]
    np.testing.assert_array_equal(want, x * 3)
    for form in ([x], (x,), {"a": x}, {"input": x}):
        np.testing.assert_array_equal(add.run(form)["x"], want)
    np.testing.assert_array_equal(add(x)["x"], want)
    np.testing.assert_array_equal(add.run(x, signature="serving_default")["x"], want)


def test_outputs_are_owned_copies(add: tfedge.Interpreter) -> None:
    x = np.ones((1, 8, 8, 3), np.float32)
    first = add.run(x)["x"]
    add.run(x * 2)
    np.testing.assert_array_equal(first, 3 * x)
    assert first.flags.owndata or first.base is None or not isinstance(first.base, type(first))


def test_float64_and_lists_are_cast(add: tfedge.Interpreter) -> None:
    x = np.full((1, 8, 8, 3), 0.5)
    np.testing.assert_array_equal(add.run(x)["x"], np.full((1, 8, 8, 3), 1.5, np.float32))
    # A list is a sequence of inputs; nested lists inside it become arrays.
    np.testing.assert_array_equal(add.run([x.tolist()])["x"], np.full((1, 8, 8, 3), 1.5, np.float32))


def test_dynamic_shape_resizes(backend: str) -> None:
    interp = tfedge.Interpreter(model_path("multi_signatures.tflite"), backend=backend)
    (spec,) = interp.input_specs("add")
    assert spec.shape_signature == (-1,)
    for n in (5, 2, 7):
        x = np.arange(n, dtype=np.float32)
        add = interp.run({"x": x}, signature="add")["output_0"]
        sub = interp.run(x, signature="sub")["output_0"]
        assert add.shape == sub.shape == (n,)
        np.testing.assert_array_equal(add, x + 2)
        np.testing.assert_array_equal(sub, x - 3)


def test_batch_on_a_batch_one_model(add: tfedge.Interpreter) -> None:
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    out = add.run(x)["x"]
    assert out.shape == (4, 8, 8, 3)
    for i in range(4):
        np.testing.assert_array_equal(out[i : i + 1], add.run(x[i : i + 1])["x"])


def test_batch_on_a_quantized_model(backend: str) -> None:
    interp = tfedge.Interpreter(model_path("add_quantized_int8.tflite"), backend=backend)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (3, 8, 8, 3)).astype(np.float32)
    out = interp.run(x)["x"]
    assert out.shape == (3, 8, 8, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1:2], interp.run(x[1:2])["x"])


def test_multi_input_batch_sizes_must_agree(backend: str) -> None:
    interp = tfedge.Interpreter(model_path("multi_add.tflite"), backend=backend)
    names = [s.name for s in interp.input_specs()]
    shape = interp.input_specs()[0].shape
    arrays = {n: np.ones((2 + i,) + shape[1:], np.float32) for i, n in enumerate(names)}
    with pytest.raises(InputError, match="different batch sizes"):
        interp.run(arrays)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            np.zeros((8, 8, 3), np.float32),
            "Input 'a' expects shape (1, 8, 8, 3) float32, got (8, 8, 3) float32.",
        ),
        (
            np.zeros((1, 8, 8, 4), np.float32),
            "Input 'a' expects shape (1, 8, 8, 3) float32, got (1, 8, 8, 4) float32.",
        ),
        (
            np.array([["x"] * 3] * 8 * 8).reshape(1, 8, 8, 3),
            "Input 'a' expects shape (1, 8, 8, 3) float32, got (1, 8, 8, 3) str32.",
        ),
        (  # the dtype given, not the one it was cast to
            np.zeros((8, 8, 3), np.float64),
            "Input 'a' expects shape (1, 8, 8, 3) float32, got (8, 8, 3) float64.",
        ),
    ],
)
def test_input_errors_word_for_word(add: tfedge.Interpreter, value: np.ndarray, message: str) -> None:
    with pytest.raises(InputError) as info:
        add.run(value)
    assert str(info.value) == message


def test_input_name_errors(backend: str) -> None:
    interp = tfedge.Interpreter(model_path("multi_add.tflite"), backend=backend)
    names = [s.name for s in interp.input_specs()]
    x = np.zeros(interp.input_specs()[0].shape, np.float32)
    listed = ", ".join(repr(n) for n in names)
    with pytest.raises(InputError) as info:
        interp.run({"nope": x})
    assert str(info.value) == f"Unknown input 'nope'. Available: {listed}."
    with pytest.raises(InputError) as info:
        interp.run({names[0]: x})
    assert str(info.value) == "Missing input(s): " + ", ".join(repr(n) for n in names[1:]) + "."
    with pytest.raises(InputError) as info:
        interp.run(x)
    assert str(info.value) == (
        f"The model takes 4 inputs ({listed}); got one array. Pass a sequence in that order or a mapping by name."
    )
    with pytest.raises(InputError) as info:
        interp.run([x, x])
    assert str(info.value) == (
        f"The model takes 4 input(s) ({listed}); got a sequence of 2. "
        "Pass one array per input, in order, or a mapping by name."
    )


def test_integer_range_and_nan_errors(backend: str) -> None:
    interp = tfedge.Interpreter(model_path("add_quantized_int8.tflite"), backend=backend)
    with pytest.raises(InputError) as info:
        interp.run(np.full((1, 8, 8, 3), 300, np.int32))
    assert str(info.value) == "Input 'a' expects int8 values in [-128, 127], got values in [300, 300]."
    x = np.zeros((1, 8, 8, 3), np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError) as info:
        interp.run(x)
    assert str(info.value) == "Input 'a' contains NaN, which cannot be quantized."


def test_unknown_signature(add: tfedge.Interpreter) -> None:
    with pytest.raises(SignatureError) as info:
        add.run(np.zeros((1, 8, 8, 3), np.float32), signature="serve")
    assert str(info.value) == "Unknown signature 'serve'. Available: 'serving_default'."
    assert isinstance(info.value, KeyError)
    with pytest.raises(SignatureError):
        add.get_signature_runner("serve")


def test_signature_runner_errors_are_mapped(add: tfedge.Interpreter) -> None:
    runner = add.get_signature_runner()
    out = runner(a=np.ones((1, 8, 8, 3), np.float32))
    np.testing.assert_array_equal(out["x"], np.full((1, 8, 8, 3), 3, np.float32))
    with pytest.raises(InputError):
        runner(b=np.ones((1, 8, 8, 3), np.float32))


TOKENS = MODELS.parent / "runtime-cases" / "token_lookup.tflite"


def test_an_index_input_beyond_the_table_names_the_op_and_what_to_check(backend: str) -> None:
    """Both backends glue GATHER's message to "Node number 0 (GATHER) failed to invoke."; tfedge separates them."""
    interp = tfedge.Interpreter(TOKENS, backend=backend)
    np.testing.assert_array_equal(interp.run(np.array([[0, 1, 2, 9]], np.int32))["Identity"], [[6.0, 7.0]])
    hint = ("An input holds an index outside the table the model looks it up in (a token or class id at or above "
            "the vocabulary's size, or a negative one): check the values of the model's integer inputs.")
    with pytest.raises(tfedge.InvokeError) as caught:
        interp.run(np.array([[0, 1, 2, 10]], np.int32))
    assert str(caught.value) == f"The model failed while running: gather index out of bounds (node 0, GATHER). {hint}"
    interp.set_tensor(interp.get_input_details()[0]["index"], np.array([[10, 0, 0, 0]], np.int32))
    with pytest.raises(tfedge.InvokeError) as caught:  # the drop-in's invoke(), the same
        interp.invoke()
    assert str(caught.value) == f"The model failed while running: gather index out of bounds (node 0, GATHER). {hint}"
    np.testing.assert_array_equal(interp.run(np.array([[9, 9, 9, 9]], np.int32))["Identity"], [[18.0, 19.0]])


@pytest.mark.parametrize(("raw", "readable"), [
    ("gather index out of boundsNode number 3 (GATHER) failed to invoke.", "gather index out of bounds (node 3, GATHER)"),
    ("tensorflow/lite/kernels/reshape.cc:92 num_input_elements != num_output_elements (1 != 6)Node number 0 "
     "(RESHAPE) failed to prepare.", "num_input_elements != num_output_elements (1 != 6) (node 0, RESHAPE)"),
    ("Node number 5 (CONV_2D) failed to invoke.", "node 5 (CONV_2D) failed to invoke"),
    ("Invoke called on model that is not ready.", "Invoke called on model that is not ready."),
    ("first line\nNode number 1 (ADD) failed to invoke.", "first line"),
    # XNNPACK's messages glued one to the next (a fuzzed model's, in the fallback warning).
    ("unsupported zero-point value (16128) in channel 116 of INT32 tensor 0 in XNNPACK delegateunsupported "
     "datatype (INT32) of tensor 0 in XNNPACK delegatefailed to create XNNPACK Value for tensor 0Node number 3 "
     "(TfLiteXNNPackDelegate) failed to prepare.",
     "unsupported zero-point value (16128) in channel 116 of INT32 tensor 0 in XNNPACK delegate; unsupported "
     "datatype (INT32) of tensor 0 in XNNPACK delegate; failed to create XNNPACK Value for tensor 0 "
     "(node 3, TfLiteXNNPackDelegate)"),
])
def test_backend_messages_are_made_readable(raw: str, readable: str) -> None:
    from tfedge.backends import kernel_message

    assert kernel_message(RuntimeError(raw)) == readable


def test_model_file_errors(tmp_path: Path, backend: str) -> None:
    missing = tmp_path / "missing.tflite"
    with pytest.raises(ModelError) as info:
        tfedge.Interpreter(missing, backend=backend)
    assert str(info.value) == f"Model file '{missing}' does not exist. Check the path."

    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelError) as info:
        tfedge.Interpreter(empty, backend=backend)
    assert str(info.value) == (
        f"Model file '{empty}' is empty (0 bytes): the download or copy did not finish. Copy it again."
    )

    text = tmp_path / "notes.tflite"
    text.write_bytes(b"hello, this is not a model")
    with pytest.raises(ModelError) as info:
        tfedge.Interpreter(text, backend=backend)
    assert str(info.value) == (
        f"Model file '{text}': not a TFLite model: expected the identifier 'TFL3' at byte 4, "
        "found b'o, t'. Pass a .tflite file (convert other formats with tfedge-convert)."
    )

    with pytest.raises(ModelError) as info:
        tfedge.Interpreter(tmp_path, backend=backend)
    assert "is a directory, not a .tflite file" in str(info.value)
    assert isinstance(info.value, ValueError)  # drop-in: `except ValueError` still catches it


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("custom_sinh.tflite", "uses custom op(s) Sinh that"),
        ("softplus_flex.tflite", "uses Select TensorFlow (flex) ops (Softplus), which"),
        ("softplus_flex.tflite", "or run it with a TFLite runtime built with the Flex delegate."),
        ("double_flex.tflite", "uses Select TensorFlow (flex) ops"),
    ],
)
def test_unsupported_ops_name_the_fix(backend: str, name: str, words: str) -> None:
    with pytest.raises(ModelError) as info:
        tfedge.Interpreter(model_path(name), backend=backend)
    assert words in str(info.value)
    assert info.value.__cause__ is not None  # the backend's own error stays chained


def test_model_from_bytes(backend: str) -> None:
    data = model_path("add.tflite").read_bytes()
    interp = tfedge.Interpreter(data, backend=backend)
    np.testing.assert_array_equal(interp.run(np.ones((1, 8, 8, 3), np.float32))["x"], 3)
    with pytest.raises(ModelError, match="The model is empty"):
        tfedge.Interpreter(b"", backend=backend)


def test_num_threads(add: tfedge.Interpreter, backend: str) -> None:
    import os

    assert add.num_threads == len(os.sched_getaffinity(0))
    assert tfedge.Interpreter(model_path("add.tflite"), backend=backend, num_threads=1).num_threads == 1
    with pytest.raises(ValueError, match="num_threads must be a whole number >= 1, got 0"):
        tfedge.Interpreter(model_path("add.tflite"), backend=backend, num_threads=0)


def test_an_unknown_keyword_is_a_type_error_naming_it(backend: str) -> None:
    # Was a ModelError saying the model file could not be loaded (the backend's TypeError, mapped).
    with pytest.raises(TypeError) as info:
        tfedge.Interpreter(model_path("add.tflite"), backend=backend, num_thread=2)
    message = str(info.value)
    assert message.startswith("tfedge.Interpreter got an unknown keyword argument 'num_thread'. It takes ")
    assert "num_threads" in message and "experimental_op_resolver_type" in message
    # The backend's own options still pass through.
    interp = tfedge.Interpreter(model_path("add.tflite"), backend=backend, experimental_preserve_all_tensors=True)
    np.testing.assert_array_equal(interp.run(np.ones((1, 8, 8, 3), np.float32))["x"], 3)


def test_unknown_backend_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(tfedge.BackendNotFoundError) as info:
        tfedge.Interpreter(model_path("add.tflite"), backend="onnx")
    assert str(info.value) == (
        "Unknown backend 'onnx'. Available: 'ai_edge_litert', 'tflite_runtime', 'tensorflow'."
    )
    assert isinstance(info.value, ImportError)
    from support import BACKENDS

    monkeypatch.setenv("TFEDGE_BACKEND", BACKENDS[-1])
    assert tfedge.Interpreter(model_path("add.tflite")).backend == BACKENDS[-1]


def test_threads_share_one_interpreter(add: tfedge.Interpreter) -> None:
    rng = np.random.default_rng(0)
    xs = [rng.random((1, 8, 8, 3), dtype=np.float32) for _ in range(8)]
    errors: list[BaseException] = []

    def work(x: np.ndarray) -> None:
        try:
            for _ in range(100):
                np.testing.assert_array_equal(add.run(x)["x"], x * 3)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the installed tfedge)."""
    import os

    environ = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=environ, timeout=120
    )


def test_runtime_never_imports_tensorflow_or_converters() -> None:
    result = _run_python(
        f"""
        import sys
        import numpy as np
        import tfedge
        assert not [m for m in sys.modules if m.startswith(("ai_edge_litert", "tflite_runtime"))], "import is lazy"
        interp = tfedge.Interpreter({str(MODELS / "add.tflite")!r})
        # What only probe=True and InterpreterPool.map need stays out of every app's start-up.
        heavy = sorted(m for m in ("multiprocessing", "concurrent.futures") if m in sys.modules)
        assert not heavy, heavy
        interp.run(np.zeros((1, 8, 8, 3), np.float32))
        import tfedge.cli
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras") or m.startswith("tfedge.converters"))
        print(bad)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_surface() -> None:
    assert tfedge.__all__ == sorted(tfedge.__all__)
    for name in tfedge.__all__:
        assert getattr(tfedge, name) is not None
    for cls in (ModelError, InputError):
        assert issubclass(cls, ValueError) and issubclass(cls, tfedge.TfedgeError)
    assert issubclass(SignatureError, KeyError)
    assert issubclass(tfedge.InvokeError, RuntimeError) and issubclass(tfedge.DelegateError, RuntimeError)
    assert issubclass(tfedge.BackendNotFoundError, ImportError)
