"""The request parsers, the metrics text, the systemd unit and the model arguments, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfedge.errors import ModelError
from tfedge.serve import RequestError, systemd_unit, write_unit
from tfedge.serve.cli import parse_models
from tfedge.serve.metrics import Metrics
from tfedge.serve.multipart import parse_detection_form, parse_multipart
from tfedge.serve.protocol import encode_infer_response, parse_infer_request



def _request(**tensor: object) -> bytes:
    return json.dumps({"inputs": [{"name": "a", "shape": [2, 2], "datatype": "INT16", **tensor}]}).encode()


def test_json_tensors_flat_or_nested() -> None:
    for data in ([1, 2, 3, 4], [[1, 2], [3, 4]]):
        got = parse_infer_request(_request(data=data)).inputs["a"]
        assert got.dtype == np.int16 and got.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("tensor, message", [
    ({"data": [1, 2, 3]}, "Input 'a': shape [2, 2] needs 4 values, 'data' has 3."),
    ({"data": [[1, 2], [3]]}, "Input 'a': 'data' must hold whole numbers for datatype INT16"),
    ({"data": [1.5, 2, 3, 4]}, "Input 'a': 'data' must hold whole numbers for datatype INT16"),
    ({"data": [1, 2, 3, 40000]}, "Input 'a': 'data' holds values outside INT16's range -32768..32767."),
    ({"data": "1234"}, "Input 'a': 'data' must be a list of INT16 values (flat or nested), got str."),
    ({"datatype": "BYTES", "data": ["x"]}, 'Input \'a\': datatype "BYTES" is not served. Use one of: BOOL,'),
    ({"shape": [-1, 2], "data": [1, 2]}, "Input 'a': 'shape' must be a list of at most 32 whole numbers >= 0"),
    ({"parameters": {"binary_data_size": 8}}, "Input 'a': its 8 bytes of binary data run past the body's end"),
    ({"parameters": {"binary_data_size": 6}}, "Input 'a': shape [2, 2] of INT16 is 8 bytes, 'binary_data_size' says 6."),
])
def test_bad_tensors(tensor: dict, message: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_infer_request(_request(**tensor))
    assert str(err.value).startswith(message) and err.value.status == 400


def test_binary_round_trip() -> None:
    x = np.arange(4, dtype=np.int16).reshape(2, 2)
    head = _request(parameters={"binary_data_size": 8})
    request = parse_infer_request(head + x.tobytes(), len(head))
    np.testing.assert_array_equal(request.inputs["a"], x)
    with pytest.raises(RequestError, match="2 bytes follow the JSON header that no input's"):
        parse_infer_request(head + x.tobytes() + b"zz", len(head))
    everything_binary = parse_infer_request(b'{"inputs":[{"name":"a","shape":[0],"datatype":"FP32","data":[]}],'
                                            b'"parameters":{"binary_data_output":true}}')
    body, header = encode_infer_response("m", {"y": x.astype(np.float32)}, everything_binary)
    assert header is not None
    doc = json.loads(body[:header])
    assert doc["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2, 2],
                               "parameters": {"binary_data_size": 16}}]
    np.testing.assert_array_equal(np.frombuffer(body[header:], np.float32), [0, 1, 2, 3])


def test_multipart_fields() -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--XyZ\r\n"
            b"Content-Disposition: form-data; name=\"min_confidence\"\r\n\r\n0.25\r\n--XyZ--\r\n")
    fields = parse_multipart(body, "multipart/form-data; boundary=XyZ")
    assert fields["image"].data == b"\xff\xd8" and fields["image"].filename == "a.jpg"
    form = parse_detection_form(body, 'multipart/form-data; boundary="XyZ"')
    assert (form.image, form.min_confidence, form.api_key) == (b"\xff\xd8", 0.25, None)
    with pytest.raises(RequestError, match="Part 1 of the form has no closing boundary: the body is truncated."):
        parse_multipart(body[:-30], "multipart/form-data; boundary=XyZ")
    with pytest.raises(RequestError, match="has no boundary=... parameter"):
        parse_multipart(body, "multipart/form-data")


def test_metrics_text() -> None:
    metrics = Metrics()
    metrics.watch_queue("m", lambda: 3)
    metrics.observe("m", "infer", 200, 0.004)
    metrics.observe("m", "infer", 400, 20.0)
    text = metrics.render()
    assert 'tfedge_requests_total{model="m",endpoint="infer",code="200"} 1\n' in text
    assert 'tfedge_errors_total{model="m",endpoint="infer"} 1\n' in text
    assert 'tfedge_request_duration_seconds_bucket{model="m",endpoint="infer",le="0.005"} 1\n' in text
    assert 'tfedge_request_duration_seconds_bucket{model="m",endpoint="infer",le="10"} 1\n' in text
    assert 'tfedge_request_duration_seconds_bucket{model="m",endpoint="infer",le="+Inf"} 2\n' in text
    assert 'tfedge_queue_depth{model="m"} 3\n' in text


def test_systemd_unit(tmp_path: Path) -> None:
    unit = systemd_unit("/opt/tfedge/tfedge", ["--detect", "faces"], port=8123, host="0.0.0.0")
    assert "ExecStart=/opt/tfedge/tfedge serve --detect faces --host 0.0.0.0 --port 8123\n" in unit
    assert "Restart=on-failure\n" in unit and "User=tfedge\n" in unit and "WantedBy=multi-user.target" in unit
    with pytest.raises(ValueError, match="exec_path must be an absolute path"):
        systemd_unit("tfedge")
    path = write_unit(tmp_path / "tfedge", port=9000)
    assert path.name == "tfedge.service" and "ExecStart=/usr/local/bin/tfedge serve --host 127.0.0.1 --port 9000\n" \
        in path.read_text()


def test_model_arguments(tmp_path: Path) -> None:
    assert parse_models(["faces=/x/face.tflite", "/y/mobilenet_v2.tflite", "/z/a=b.tflite"]) == {
        "faces": "/x/face.tflite", "mobilenet_v2": "/y/mobilenet_v2.tflite", "a=b": "/z/a=b.tflite"}
    with pytest.raises(ModelError, match=r"Two models are named 'm': name them, e\.g\. m2=/b/m\.tflite\."):
        parse_models(["/a/m.tflite", "/b/m.tflite"])
    with pytest.raises(ModelError, match=r"No model given\. Pass one or more \[NAME=\]MODEL\.tflite\."):
        parse_models([])


def test_a_bug_in_a_handler_is_a_500_and_the_service_goes_on(capsys: pytest.CaptureFixture) -> None:
    from serve_support import ADD
    from tfedge.serve import build_service

    service = build_service({"add": str(ADD)}, workers=1)
    model = service.models["add"]

    def broken(inputs, **kw):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("boom")

    real = model.pool.run
    model.pool.run = broken  # type: ignore[method-assign]
    body = b'{"inputs":[{"name":"a","shape":[1,8,8,3],"datatype":"FP32","data":[' + b",".join([b"1"] * 192) + b"]}]}"
    response = service.handle("POST", "/v2/models/add/infer", {}, body)
    assert response.status == 500
    assert json.loads(response.body) == {
        "error": "Internal error (ZeroDivisionError); the server log has the details."}
    assert "ZeroDivisionError: boom" in capsys.readouterr().err
    model.pool.run = real  # type: ignore[method-assign]
    assert service.handle("POST", "/v2/models/add/infer", {}, body).status == 200


def test_native_build_list_is_what_serve_imports() -> None:
    """tfedge.serve.native names every stdlib package the server brings beyond tfedge and its tasks."""
    import subprocess
    import sys

    from tfedge.serve.native import OPTIONAL_STDLIB, STDLIB_PACKAGES

    code = ("import sys; import tfedge, tfedge.cli, tfedge.tasks.detect; before = set(sys.modules); "
            "import tfedge.serve.app, tfedge.serve.cli; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - {'tfedge'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    brought = {name for name in json.loads(out.replace("'", '"')) if not name.startswith("_")}
    assert brought <= set(STDLIB_PACKAGES) | set(OPTIONAL_STDLIB), brought - set(STDLIB_PACKAGES)
    assert "http" in brought and "socketserver" in brought


def test_serve_keeps_freed_memory_for_the_next_request() -> None:
    """reuse_freed_memory(): buffers of a few MiB freed and taken again fault no fresh pages in."""
    import subprocess
    import sys

    code = ("import resource, sys; import numpy as np; from tfedge.serve.app import reuse_freed_memory\n"
            "tuned = sys.argv[1] == '1' and reuse_freed_memory()\n"
            "def request():\n"
            "    buffers = [np.ones(1 << 20, np.uint8) for _ in range(4)]\n"
            "request(); before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(50): request()\n"
            "print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    runs = [subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True).stdout.split()
            for flag in "01"]
    (_, default), (tuned, after) = runs
    if tuned != "True":
        pytest.skip("not glibc: reuse_freed_memory() leaves the allocator alone")
    assert int(default) > 10 * 256, runs  # glibc's defaults: 4 MiB of fresh pages per "request"
    assert int(after) < 256, runs  # tuned: the same pages again


def test_native_entry_serves_unless_a_command_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A --serve binary's entry: no command (or options only) is `serve` with the build's models first."""
    import tfedge.cli
    from tfedge.serve import native

    seen: list = []
    monkeypatch.setattr(tfedge.cli, "main", lambda argv: seen.append(argv) or 0)
    defaults = ["embedded:faces", "--detect", "faces"]
    for argv, expected in (([], ["serve", *defaults]),
                           (["--port", "9000"], ["serve", *defaults, "--port", "9000"]),
                           (["extra.tflite"], ["serve", *defaults, "extra.tflite"]),
                           (["info"], ["info"]), (["run", "--random"], ["run", "--random"]),
                           (["serve", "a.tflite"], ["serve", "a.tflite"]), (["--version"], ["--version"]),
                           (["--help"], ["--help"])):
        assert native.main(argv, serve_args=defaults) == 0
        assert seen.pop() == expected, argv


def test_detect_without_pillow_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """--detect needs Pillow (an armv7l binary has none): one line at start, not a 500 per request."""
    from tfedge.serve import app

    monkeypatch.setattr(app, "find_spec", lambda name: None)
    models = {"faces": str(Path(__file__).resolve().parents[1] / "data" / "litert-testdata" / "add.tflite")}
    with pytest.raises(RequestError) as info:
        app.build_service(models, detect="faces", workers=1)
    assert str(info.value) == ("--detect 'faces' needs Pillow to decode DeepStack's images, and it is not installed: "
                               'pip install "tfedge[draw]" (a native binary: build it with tfedge-build --serve ... '
                               "--detect NAME, which carries Pillow on x86_64 and aarch64).")
