"""The server as Triton's own HTTP client sees it: metadata, readiness, binary and JSON tensors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tfedge
from serve_support import ADD, ADD_Q, MULTI, ServerProcess

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def client(server: ServerProcess):  # type: ignore[no-untyped-def]
    c = httpclient.InferenceServerClient(server.url[len("http://"):])
    yield c
    c.close()


def _input(name: str, array: np.ndarray, binary: bool = True):  # type: ignore[no-untyped-def]
    inp = httpclient.InferInput(name, list(array.shape), {np.float32: "FP32", np.uint8: "UINT8"}[array.dtype.type])
    inp.set_data_from_numpy(array, binary_data=binary)
    return inp


def test_health_and_server_metadata(client) -> None:  # type: ignore[no-untyped-def]
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "tfedge" and meta["version"] == tfedge.__version__
    assert "binary_tensor_data" in meta["extensions"]


def test_model_metadata_matches_the_interpreter(client) -> None:  # type: ignore[no-untyped-def]
    interp = tfedge.Interpreter(MULTI)
    meta = client.get_model_metadata("multi")
    assert meta["name"] == "multi"
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        (s.name, "FP32", list(s.shape_signature)) for s in interp.input_specs()]
    assert [t["name"] for t in meta["outputs"]] == [s.name for s in interp.output_specs()]
    assert client.is_model_ready("multi")
    # A quantized model takes its integer type; its outputs come back dequantized, as run() returns them.
    q = client.get_model_metadata("add_q")
    assert q["inputs"][0]["datatype"] == "UINT8" and q["outputs"][0]["datatype"] == "FP32"


def test_unknown_model_is_404_with_the_choices(client) -> None:  # type: ignore[no-untyped-def]
    assert not client.is_model_ready("nope")
    with pytest.raises(InferenceServerException, match=r"Unknown model 'nope'\. Served: 'add', 'add_q'"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_run(client, binary: bool) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal((1, 8, 8, 3), dtype=np.float32) for k in "abcd"}
    expected = tfedge.Interpreter(MULTI).run(arrays)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("y", "x")]
    result = client.infer("multi", [_input(k, v, binary) for k, v in arrays.items()], outputs=outputs)
    for name in ("x", "y"):
        np.testing.assert_array_equal(result.as_numpy(name), expected[name])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["y", "x"]


def test_infer_without_outputs_returns_all_in_binary(client) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 3), dtype=np.float32)
    result = client.infer("add", [_input("a", x)], request_id="r1")
    response = result.get_response()
    assert response["id"] == "r1" and response["model_name"] == "add"
    assert "binary_data_size" in response["outputs"][0]["parameters"]
    np.testing.assert_array_equal(result.as_numpy("x"), tfedge.Interpreter(ADD).run(x)["x"])


def test_infer_mixes_json_and_binary_outputs(client) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    arrays = {k: rng.standard_normal((1, 8, 8, 3), dtype=np.float32) for k in "abcd"}
    outputs = [httpclient.InferRequestedOutput("x", binary_data=False), httpclient.InferRequestedOutput("y")]
    result = client.infer("multi", [_input(k, v, k in "ac") for k, v in arrays.items()], outputs=outputs)
    expected = tfedge.Interpreter(MULTI).run(arrays)
    entries = {o["name"]: o for o in result.get_response()["outputs"]}
    assert "data" in entries["x"] and "binary_data_size" in entries["y"]["parameters"]
    np.testing.assert_array_equal(result.as_numpy("x"), expected["x"])
    np.testing.assert_array_equal(result.as_numpy("y"), expected["y"])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_quantized_model_takes_what_run_takes(client, dtype: type) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, (1, 8, 8, 3)).astype(dtype)
    if dtype is np.float32:
        x /= 255
    result = client.infer("add_q", [_input("input", x)])
    np.testing.assert_array_equal(result.as_numpy("output"), tfedge.Interpreter(ADD_Q).run(x)["output"])


def test_bad_tensors_get_the_librarys_message(client) -> None:  # type: ignore[no-untyped-def]
    interp = tfedge.Interpreter(ADD)
    for bad in (np.zeros((1, 8, 8, 4), np.float32), np.zeros((1, 8, 8, 3), np.uint8)):
        with pytest.raises(tfedge.InputError) as expected:
            interp.run({"a": bad})
        with pytest.raises(InferenceServerException) as got:
            client.infer("add", [_input("a", bad)])
        assert got.value.message() == str(expected.value)
        assert got.value.status() == "400"
    with pytest.raises(InferenceServerException, match="Unknown output 'z'. Available: 'x'."):
        client.infer("add", [_input("a", np.zeros((1, 8, 8, 3), np.float32))],
                     outputs=[httpclient.InferRequestedOutput("z")])
    assert client.is_server_live()


def test_load_has_no_errors_and_flat_memory(server: ServerProcess) -> None:
    """4 threads x 150 binary requests each; RSS after equals RSS after a warm-up, within 16 MiB."""
    x = np.random.default_rng(4).standard_normal((1, 8, 8, 3), dtype=np.float32)
    expected = tfedge.Interpreter(ADD).run(x)["x"]
    errors: list = []

    def work(n: int) -> None:
        c = httpclient.InferenceServerClient(server.url[len("http://"):])
        try:
            for _ in range(n):
                try:
                    out = c.infer("add", [_input("a", x)]).as_numpy("x")
                    if not np.array_equal(out, expected):
                        errors.append("wrong output")
                except Exception as exc:  # counted, reported below
                    errors.append(repr(exc))
        finally:
            c.close()

    def round_of(n: int) -> None:
        threads = [threading.Thread(target=work, args=(n,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    round_of(50)
    before = server.rss_kib()
    round_of(150)
    after = server.rss_kib()
    assert errors == []
    assert after - before < 16 * 1024, (before, after)
