"""Bad requests of each kind, DeepStack as Frigate calls it, the limits, the API key and SIGTERM."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import pytest

import tfedge
from tfedge.tasks.detect import detect
from serve_support import ADD, FACES, ServerProcess

PIL = pytest.importorskip("PIL.Image")
requests = pytest.importorskip("requests")


def call(url: str, method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None
         ) -> Tuple[int, Dict[str, str], bytes]:
    host, port = url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def error_of(url: str, method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None
             ) -> Tuple[int, str]:
    status, _, data = call(url, method, path, body, headers)
    return status, json.loads(data)["error"]


def jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    PIL.fromarray(image).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return np.asarray(skdata.astronaut())


def test_deepstack_as_frigate_sends_it(server: ServerProcess, photo: np.ndarray) -> None:
    # Frigate's deepstack detector: requests.post(api_url, data={"api_key": ...}, files={"image": jpeg_bytes}).
    data = jpeg(photo)
    resp = requests.post(f"{server.url}/v1/vision/detection", data={"api_key": ""}, files={"image": data},
                         timeout=30)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["success"] is True
    decoded = np.asarray(PIL.open(io.BytesIO(data)).convert("RGB"))
    expected = detect(tfedge.Interpreter(FACES), decoded, score_threshold=0.4)
    assert expected, "the astronaut's face should be found"
    got = answer["predictions"]
    assert [p["confidence"] for p in got] == sorted((p["confidence"] for p in got), reverse=True)
    assert len(got) == len(expected)
    for p, d in zip(got, sorted(expected, key=lambda d: -d.score)):
        assert set(p) == {"label", "confidence", "x_min", "y_min", "x_max", "y_max"}
        assert p["confidence"] == pytest.approx(d.score, abs=1e-5)
        assert [p["x_min"], p["y_min"], p["x_max"], p["y_max"]] == [int(round(v)) for v in d.box]
    # min_confidence above every score: nothing
    resp = requests.post(f"{server.url}/v1/vision/detection", data={"min_confidence": "0.9999"},
                         files={"image": data}, timeout=30)
    assert resp.json() == {"success": True, "predictions": [p for p in got if p["confidence"] >= 0.9999]}


def test_deepstack_bad_forms(server: ServerProcess, photo: np.ndarray) -> None:
    url = f"{server.url}/v1/vision/detection"
    truncated = jpeg(photo)[:2000]
    resp = requests.post(url, files={"image": truncated}, timeout=30)
    assert resp.status_code == 400
    assert resp.json()["success"] is False
    assert resp.json()["error"].startswith("The 'image' field is not an image Pillow can read (")
    resp = requests.post(url, files={"picture": jpeg(photo)}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"].startswith("The form has no 'image' field")
    resp = requests.post(url, data={"min_confidence": "high"}, files={"image": jpeg(photo)}, timeout=30)
    assert resp.json()["error"] == "min_confidence must be a number from 0 to 1, got 'high'."
    resp = requests.post(url, data=b"not a form", headers={"Content-Type": "text/plain"}, timeout=30)
    assert resp.status_code == 400 and "must be multipart/form-data" in resp.json()["error"]
    assert call(server.url, "GET", "/v2/health/live")[0] == 200


def test_malformed_v2_requests(server: ServerProcess) -> None:
    url, infer = server.url, "/v2/models/add/infer"
    assert error_of(url, "POST", infer, b"{nope") == (
        400, "The request's JSON is not valid JSON (Expecting property name enclosed in double quotes: "
             "line 1 column 2 (char 1)).")
    assert error_of(url, "POST", infer, b"[1]") == (400, "The request's JSON must be a JSON object, got list.")
    assert error_of(url, "POST", infer, b"[" * 100000)[0] == 400
    header = json.dumps({"inputs": [{"name": "a", "shape": [1, 8, 8, 3], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 768}}]}).encode()
    body = header + np.zeros(192, np.float32).tobytes()
    assert call(url, "POST", infer, body, {"Inference-Header-Content-Length": str(len(header))})[0] == 200
    assert error_of(url, "POST", infer, body[:-10], {"Inference-Header-Content-Length": str(len(header))}) == (
        400, "Input 'a': its 768 bytes of binary data run past the body's end (758 left).")
    assert error_of(url, "POST", infer, body, {"Inference-Header-Content-Length": "99999"}) == (
        400, f"Inference-Header-Content-Length must be the JSON header's size in bytes, at most the body's "
             f"{len(body)}, got '99999'.")
    assert error_of(url, "POST", infer, body, {"Inference-Header-Content-Length": str(len(header) - 1)})[0] == 400
    assert error_of(url, "POST", infer, json.dumps({"inputs": [{"name": "a", "shape": [2], "datatype": "FP32",
                                                                "data": ["1", "2"]}]}).encode()) == (
        400, "Input 'a': 'data' must hold numbers for datatype FP32 in a list of the shape's size "
             "(flat, or nested with equal lengths).")
    status, message = error_of(url, "POST", infer, json.dumps(
        {"inputs": [{"name": "b", "shape": [1, 8, 8, 3], "datatype": "FP32", "data": [0] * 192}]}).encode())
    with pytest.raises(tfedge.InputError) as expected:
        tfedge.Interpreter(ADD).run({"b": np.zeros((1, 8, 8, 3), np.float32)})
    assert (status, message) == (400, str(expected.value))
    assert call(url, "GET", "/v2/health/live")[0] == 200


def test_not_found_wrong_method_and_length(server: ServerProcess) -> None:
    url = server.url
    assert error_of(url, "GET", "/v3/whatever")[0] == 404
    assert error_of(url, "POST", "/v2/models/nope/infer", b"{}") == (
        404, "Unknown model 'nope'. Served: 'add', 'add_q', 'multi', 'faces'.")
    assert error_of(url, "GET", "/v2/models/add/versions/2") == (
        404, "Model 'add' has no version '2'. Available: '1'.")
    status, headers, _ = call(url, "GET", "/v2/models/add/infer")
    assert status == 405 and headers["allow"] == "POST"
    # 413: refused from the Content-Length alone, before reading the body
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        answer = sock.makefile("rb").read()  # to the end: the server closes the connection
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"this server takes at most 67108864 (--max-body)" in answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 411 ")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
    assert call(url, "GET", "/v2/health/ready")[0] == 200
    metrics = call(url, "GET", "/metrics")[2].decode()
    assert 'tfedge_requests_total{model="add",endpoint="infer",code="200"}' in metrics
    assert 'tfedge_request_duration_seconds_bucket{model="add",endpoint="infer",le="+Inf"}' in metrics
    assert 'tfedge_queue_depth{model="faces"} 0' in metrics
    assert 'tfedge_requests_total{model="faces",endpoint="detection",code="200"}' in metrics
    assert 'tfedge_requests_total{model="",endpoint="live",code="200"}' in metrics
    assert "Traceback" not in server.text()
    assert '"GET /v2/health/ready" 200 ' in server.text()


def test_native_messages_reach_the_log_as_they_come(server: ServerProcess) -> None:
    """`tfedge serve` leaves fd 2 on its log (other commands hold it until they end), the per-load line dropped."""
    fd2 = Path(f"/proc/{server.proc.pid}/fd/2")
    if not fd2.parent.is_dir():
        pytest.skip("needs Linux's /proc")
    assert fd2.resolve() == server.log.resolve()
    assert "tfedge serve: add, add_q, multi, faces on http://" in server.text()
    assert "XNNPACK" not in server.text()


@contextlib.contextmanager
def serving_add(on_request: Callable[[], None]) -> Iterator[str]:
    """An in-process server of add.tflite (1 worker) whose connection threads call ``on_request`` per request; its URL."""
    from tfedge.serve import Server, build_service

    service = build_service({"add": ADD}, workers=1)
    handle = service.handle

    def recording(*args: object) -> object:
        on_request()
        return handle(*args)  # type: ignore[arg-type]

    service.handle = recording  # type: ignore[method-assign]
    server = Server(service, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.address[1]}"
    finally:
        server.stop()
        thread.join()


def test_a_connection_per_request_reuses_the_threads() -> None:
    """Frigate opens a connection per frame: the server's connection threads are kept, not made each time."""
    answered_by: set = set()  # the Thread objects themselves, kept alive (an id could be reused)
    with serving_add(lambda: answered_by.add(threading.current_thread())) as url:
        for _ in range(20):
            assert call(url, "GET", "/v2/health/live")[0] == 200  # a new connection each, one after another
            time.sleep(0.02)  # the thread goes back to waiting once it sees the client close
        assert len(answered_by) <= 4, answered_by  # a new thread each time before
    for worker in answered_by:  # and they end with the server
        worker.join(10)
        assert not worker.is_alive()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_BATCH is Linux's")
def test_connection_threads_do_not_preempt_on_wakeup_and_the_app_keeps_its_policy() -> None:
    """The connection threads run under SCHED_BATCH (see server._yield_on_wakeup); the embedding app's threads do not."""
    policies: list = []
    before = os.sched_getscheduler(0)
    with serving_add(lambda: policies.append(os.sched_getscheduler(0))) as url:  # 0: the calling thread
        for _ in range(3):
            assert call(url, "GET", "/v2/health/live")[0] == 200
    assert policies == [os.SCHED_BATCH] * 3
    assert os.sched_getscheduler(0) == before  # the test's own thread: untouched

    # A server started under a policy its user chose (here SCHED_IDLE, which needs no privilege) keeps it.
    policies.clear()
    chosen: list = []

    def under_idle() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only; it ends below
        with serving_add(lambda: policies.append(os.sched_getscheduler(0))) as url:
            chosen.append(call(url, "GET", "/v2/health/live")[0])

    thread = threading.Thread(target=under_idle)
    thread.start()
    thread.join(60)
    assert chosen == [200] and policies == [os.SCHED_IDLE]


def _exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return sock.makefile("rb").read()


def test_request_lines_and_header_fields(server: ServerProcess) -> None:
    """The server's own header reader keeps http.server's rules and limits."""
    live = b"GET /v2/health/live HTTP/1.1\r\n"
    # fields in any case, a folded continuation line, two requests on one connection
    answer = _exchange(server.port, live + b"HOST: x\r\nX-Note: a\r\n  b\r\n\r\n" + live + b"\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
    assert _exchange(server.port, b"GET /v2/health/live HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    for request, status, message in [
        (b"GET /v2/health/live\r\n\r\n", 400, b"Bad request syntax"),
        (b"GET /v2/health/live HTTP/1.x\r\n\r\n", 400, b"Bad request version"),
        (b"GET /v2/health/live HTTP/2.0\r\n\r\n", 505, b"Invalid HTTP version"),
        (live + b"no colon here\r\n\r\n", 400, b"Bad header line"),
        (live + b"X: y\r\n" * 101 + b"\r\n", 431, b"Too many headers"),
        (live + b"X: " + b"y" * 70000 + b"\r\n\r\n", 431, b"Line too long"),
    ]:
        answer = _exchange(server.port, request)
        assert answer.startswith(b"HTTP/1.1 %d " % status) and message in answer, (request[:60], answer)
    # Content-Length read from any case; Expect: 100-continue (curl's, for large bodies) answered first
    x = np.ones((1, 8, 8, 3), np.float32)
    body = json.dumps({"inputs": [{"name": "a", "shape": [1, 8, 8, 3], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()
    head = b"POST /v2/models/add/infer HTTP/1.1\r\ncontent-LENGTH: %d\r\nExpect: 100-continue\r\n\r\n" % len(body)
    answer = _exchange(server.port, head + body)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "), answer[:200]
    assert np.array_equal(json.loads(answer.split(b"\r\n\r\n", 2)[2])["outputs"][0]["data"],
                          tfedge.Interpreter(ADD).run(x)["x"].ravel())


def test_api_key(tmp_path: Path, photo: np.ndarray) -> None:
    srv = ServerProcess([f"faces={FACES}", "--detect", "faces", "--workers", "1", "--quiet"],
                        tmp_path / "log", env={"TFEDGE_API_KEY": "s3cret"})
    try:
        assert call(srv.url, "GET", "/v2/health/live")[0] == 200  # health checks stay open
        status, headers, body = call(srv.url, "GET", "/v2/models/faces")
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["error"].startswith("Missing or wrong API key")
        assert call(srv.url, "GET", "/v2/models/faces", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(srv.url, "GET", "/v2/models/faces", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(srv.url, "GET", "/metrics", headers={"X-API-Key": "s3cret"})[0] == 200
        url = f"{srv.url}/v1/vision/detection"
        assert requests.post(url, files={"image": jpeg(photo)}, timeout=30).status_code == 401
        ok = requests.post(url, data={"api_key": "s3cret"}, files={"image": jpeg(photo)}, timeout=30)
        assert ok.status_code == 200 and ok.json()["success"] is True
    finally:
        assert srv.stop() == 0
    assert srv.text() == f"tfedge serve: faces on {srv.url} (1 workers per model)\n"  # --quiet: no access log


def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    srv = ServerProcess([f"add={ADD}", "--workers", "1"], tmp_path / "log")
    x = np.arange(192, dtype=np.float32).reshape(1, 8, 8, 3)
    body = json.dumps({"inputs": [{"name": "a", "shape": [1, 8, 8, 3], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=30)  # a keep-alive connection, idle
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body[:100])
        time.sleep(0.5)  # the server has the request line: it is in flight
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert srv.proc.poll() is None  # still waiting for the rest of the body
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()  # no new connections
        sock.sendall(body[100:])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, data = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head
    np.testing.assert_array_equal(np.array(json.loads(data)["outputs"][0]["data"], np.float32),
                                  tfedge.Interpreter(ADD).run(x)["x"].ravel())
    assert srv.proc.wait(30) == 0
    idle.close()
    assert srv.stop() == 0 and "Traceback" not in srv.text()


def test_full_queue_answers_503_with_retry_after() -> None:
    from tfedge.serve import Server, build_service

    service = build_service({"add": str(ADD)}, workers=1, queue=1)
    model = service.models["add"]
    gate, entered = threading.Event(), threading.Semaphore(0)
    real_run = model.pool.run

    def held_run(inputs, **kw):  # type: ignore[no-untyped-def]
        entered.release()
        gate.wait(30)
        return real_run(inputs, **kw)

    model.pool.run = held_run  # type: ignore[method-assign]
    server = Server(service, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    url = "http://{}:{}".format(*server.address)
    body = json.dumps({"inputs": [{"name": "a", "shape": [1, 8, 8, 3], "datatype": "FP32",
                                   "data": [1.0] * 192}]}).encode()
    results: list = []
    try:
        callers = [threading.Thread(target=lambda: results.append(call(url, "POST", "/v2/models/add/infer", body)))
                   for _ in range(2)]
        callers[0].start()
        assert entered.acquire(timeout=30)  # one runs (held), ...
        callers[1].start()
        deadline = time.monotonic() + 30
        while model.queue_depth() < 1 and time.monotonic() < deadline:  # ... one waits
            time.sleep(0.01)
        assert model.queue_depth() == 1
        status, headers, data = call(url, "POST", "/v2/models/add/infer", body)
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(data)["error"] == "Model 'add' is busy: 1 running and 1 waiting. Retry shortly."
        assert call(url, "GET", "/v2/health/live")[0] == 200
    finally:
        gate.set()
        for c in callers:
            c.join(30)
        server.stop()
        thread.join(30)
    assert sorted(r[0] for r in results) == [200, 200]


def test_idle_and_stalled_connections_end_after_the_idle_timeout() -> None:
    from tfedge.serve import Server, build_service

    server = Server(build_service({"add": str(ADD)}, workers=1), "127.0.0.1", 0, quiet=True, idle_timeout=0.5)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with socket.create_connection(server.address, timeout=30) as idle, \
                socket.create_connection(server.address, timeout=30) as stalled:
            stalled.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x")  # a head that never ends
            idle.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"live":true}'):
                answer += idle.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ")
            start = time.monotonic()
            assert idle.recv(65536) == b""  # the kept connection, idle: closed by the server
            assert stalled.recv(65536) == b""  # the half head is never answered as a request
            assert 0.3 < time.monotonic() - start < 10
        status, _, _ = call("http://{}:{}".format(*server.address), "GET", "/v2/health/live")
        assert status == 200  # and it keeps serving
    finally:
        server.stop()
        thread.join(30)


def test_connections_beyond_the_limit_get_503_and_the_place_frees() -> None:
    from tfedge.serve import Server, build_service

    server = Server(build_service({"add": str(ADD)}, workers=1), "127.0.0.1", 0, quiet=True, max_connections=1)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    live = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        with socket.create_connection(server.address, timeout=30) as kept:
            kept.sendall(live)
            assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")  # the one place, kept open
            with socket.create_connection(server.address, timeout=30) as refused:
                refused.sendall(live)
                answer = b""
                try:
                    while chunk := refused.recv(65536):
                        answer += chunk
                except ConnectionResetError:  # closed with the request unread: the answer came first
                    pass
            assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1\r\n" in answer, answer
            kept.sendall(live)  # the kept connection still works
            assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
        deadline = time.monotonic() + 30
        while server._http.connections and time.monotonic() < deadline:  # its thread sees the close
            time.sleep(0.01)
        assert _exchange(server.address[1], live).startswith(b"HTTP/1.1 200 ")  # the place is free again
    finally:
        server.stop()
        thread.join(30)
