"""What ``tfedge serve`` costs: throughput and latency through the server vs the pool in-process.

Two measurements, each side by side in one run with the rounds interleaved (machine noise
hits both ways alike):

1. **v2 infer, binary tensors** (Triton's binary extension, as ``tritonclient.http`` sends by
   default), on MediaPipe's face detector and a MobileNetV2 (float32 and int8, random
   weights, built by TensorFlow in a child process by ``benchmarks/models.py``). ``server``:
   ``tfedge serve --workers W`` in a child process, ``C`` client threads on loopback, each
   with a keep-alive connection, by three clients: ``tritonclient.http`` itself (when installed),
   ``http.client`` (Python's, sending the body tritonclient sends, with http.client's headers,
   and decoding the outputs) and a lean one
   (the very bytes tritonclient sends, head and body, encoded once, written to a raw socket;
   the answer read by its Content-Length and the outputs decoded): what a load generator
   costs), and, where a C compiler is found, ``benchmarks/loadgen.c`` (a C load generator, as
   Triton's perf_analyzer is C++: the same bytes from threads that hold no GIL). ``pool``:
   ``InterpreterPool(size=W)`` in this process, the same ``C`` threads calling
   ``pool.run()``. Requests/s and p50/p99 latency of each; goal: server/pool >= 0.8 for
   MobileNetV2.
2. **DeepStack**: one client posting a JPEG (the astronaut, 512x512) to
   ``/v1/vision/detection`` (server with 1 worker) on a keep-alive connection, and on a new
   connection each time as Frigate's ``requests.post()`` does, vs ``detect()`` on one
   Interpreter plus the JPEG decode, one call at a time; goal: server <= 1.3x. Frigate waits
   0.1 s by default.

CPU time is counted per side: the server process's, the client's (this process while it
posts), the pool's (this process). On a machine with as many cores as workers the client's
CPU comes out of the server's share (an NVR on the same Pi would take it too; one on another
machine would not), and on a busy machine every hop between two processes waits to be
scheduled, which the pool in-process never does: so next to the wall-clock ratio the table
gives the CPU ratio of the server process alone, which is the throughput ratio of a
CPU-bound server whose client runs elsewhere, and the client's CPU on its own.

The pool is driven as the server's workers are: ``C`` threads (as many as the server has
connections) calling ``pool.run()`` with arrays made once, so it is the pool's best case.

Usage: python benchmarks/serve.py [--workers 2] [--clients 4] [--rounds 5] [--seconds 3] [--no-c-client] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

from _timing import script_dir_last, subprocess_env

script_dir_last(__file__)

import numpy as np  # noqa: E402

import tfedge  # noqa: E402
from tfedge._inputs import random_input  # noqa: E402

FACES = Path(__file__).resolve().parents[1] / "tests" / "data" / "mediapipe" / "face_detection_short_range.tflite"


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of process ``pid`` (Linux /proc)."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerChild:
    """``tfedge serve`` in a child process on a free loopback port."""

    def __init__(self, models: dict[str, Path], *args: str) -> None:
        self.log = tempfile.TemporaryFile()
        env = subprocess_env()
        env.pop("PYTHONPATH", None)  # the installed tfedge
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfedge", "serve", *(f"{k}={v}" for k, v in models.items()), "--port", "0",
             "--quiet", *args], stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.log.seek(0)
            match = re.search(rb"on http://127\.0\.0\.1:(\d+) ", self.log.read())
            if match:
                self.port = int(match.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.log.seek(0)
        raise RuntimeError(f"tfedge serve did not start: {self.log.read().decode(errors='replace')}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def binary_request(interp: tfedge.Interpreter, rng: np.random.Generator) -> tuple[bytes, dict[str, str]]:
    """The body and headers tritonclient sends: JSON header with binary_data_size, then the bytes."""
    from tfedge.serve.protocol import datatype_of

    inputs, data = [], []
    for spec in interp.input_specs():
        array = random_input(spec, rng)
        inputs.append({"name": spec.name, "shape": list(array.shape), "datatype": datatype_of(array.dtype),
                       "parameters": {"binary_data_size": array.nbytes}})
        data.append(array.tobytes())
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
    return header + b"".join(data), {"Inference-Header-Content-Length": str(len(header)),
                                     "Content-Type": "application/octet-stream"}


def tritonclient_bytes(body: bytes, headers: dict[str, str], port: int) -> bytes:
    """The whole request ``tritonclient.http`` (geventhttpclient) writes for ``infer``: its head, then the body."""
    return (f"POST /v2/models/m/infer HTTP/1.1\r\nUser-Agent: python/gevent-http-client-2.6.1\r\n"
            f"Inference-Header-Content-Length: {headers['Inference-Header-Content-Length']}\r\n"
            f"Host: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class LeanClient:
    """A keep-alive connection that writes pre-encoded requests and reads each answer by its Content-Length.

    Answers are read into one buffer, kept: no allocation per read (``recv(n)`` would allocate n
    bytes each time).
    """

    def __init__(self, port: int, size: int = 4 << 20) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray(size)
        self.view = memoryview(self.buffer)

    def call(self, request: bytes) -> tuple[bytes, memoryview]:
        """Send ``request``; the answer's head (status line and fields) and body (valid until the next call).

        Raises:
            RuntimeError: the status is not 200, or the server closed the connection.
        """
        self.sock.sendall(request)
        filled = 0
        while (end := self.buffer.find(b"\r\n\r\n", 0, filled)) < 0:
            filled += self._recv(filled)
        head = bytes(self.view[:end])
        size = int(re.search(rb"\r\nContent-Length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
        while filled < end + 4 + size:
            filled += self._recv(filled)
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"{head[:100]!r}: {bytes(self.view[end + 4:end + 204])!r}")
        return head, self.view[end + 4:end + 4 + size]  # one request at a time: nothing follows the answer

    def _recv(self, filled: int) -> int:
        count = self.sock.recv_into(self.view[filled:])
        if not count:
            raise RuntimeError("The server closed the connection.")
        return count


def build_loadgen(folder: Path) -> Path | None:
    """``benchmarks/loadgen.c`` compiled into ``folder``, or None (said on stderr) without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("serve: no C compiler (cc, gcc): the C client's rows are left out", file=sys.stderr)
        return None
    binary = folder / "loadgen"
    subprocess.run([compiler, "-O2", "-pthread", "-o", str(binary), str(Path(__file__).with_name("loadgen.c"))],
                   check=True)
    return binary


def c_load(loadgen: Path, port: int, path: Path, clients: int, seconds: float) -> tuple[float, list[float], float]:
    """The C client's run of the request in file ``path``: requests/s, latencies (seconds), its CPU seconds per request."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(loadgen), str(port), str(clients), str(seconds), str(path)],
                          capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return doc["requests"] / doc["seconds"], [x / 1e6 for x in doc["latencies_us"]], cpu / max(1, doc["requests"])


def load(call: Callable[[Any], None], make_state: Callable[[], Any], clients: int, seconds: float
         ) -> tuple[float, list[float]]:
    """``clients`` threads calling ``call(state)`` for ``seconds``: requests/s and the latencies."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start_line = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        state = make_state()
        start_line.wait()
        mine = latencies[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            call(state)
            mine.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 1e9
    start_line.wait()
    begin = time.perf_counter()
    stop_at[0] = begin + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    flat = [x for row in latencies for x in row]
    return len(flat) / elapsed, flat


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
    return data


def bench_infer(name: str, path: Path, workers: int, clients: int, rounds: int, seconds: float,
                loadgen: Path | None = None) -> dict[str, Any]:
    """Interleaved rounds of server vs pool on one model (and the C client's, given ``loadgen``)."""
    interp = tfedge.Interpreter(path, num_threads=1)
    body, headers = binary_request(interp, np.random.default_rng(0))
    feed = [random_input(spec, np.random.default_rng(0)) for spec in interp.input_specs()]
    pool = tfedge.InterpreterPool(path, size=workers)
    server = ServerChild({"m": path}, "--workers", str(workers), "--queue", str(4 * clients))

    def decode_outputs(data: bytes | memoryview, header_len: int) -> None:
        doc = json.loads(bytes(data[:header_len]))
        offset = header_len
        for out in doc["outputs"]:
            n = out["parameters"]["binary_data_size"]
            np.frombuffer(data[offset:offset + n], np.float32)
            offset += n

    def http_client_round() -> tuple[float, list[float], float, float]:
        def call(conn: http.client.HTTPConnection) -> None:
            conn.request("POST", "/v2/models/m/infer", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
            decode_outputs(data, int(resp.getheader("Inference-Header-Content-Length")))

        return server_round(call, lambda: http.client.HTTPConnection("127.0.0.1", server.port, timeout=60))

    request = tritonclient_bytes(body, headers, server.port)

    def lean_round() -> tuple[float, list[float], float, float]:
        def call(client: LeanClient) -> None:
            head, data = client.call(request)
            match = re.search(rb"\r\nInference-Header-Content-Length: (\d+)", head, re.IGNORECASE)
            decode_outputs(data, int(match.group(1)))  # type: ignore[union-attr]

        return server_round(call, lambda: LeanClient(server.port))

    request_file = None
    if loadgen is not None:  # written once, beside the compiled client
        request_file = loadgen.with_name(f"{name}.request")
        request_file.write_bytes(request)

    def c_round() -> tuple[float, list[float], float, float]:
        assert loadgen is not None and request_file is not None
        server0 = cpu_seconds(server.proc.pid)
        rps, lats, client_cpu = c_load(loadgen, server.port, request_file, clients, seconds)
        return rps, lats, (cpu_seconds(server.proc.pid) - server0) / len(lats), client_cpu

    def tritonclient_round() -> tuple[float, list[float], float, float]:
        import tritonclient.http as triton  # geventhttpclient: each thread its own client and gevent hub

        from tfedge.serve.protocol import datatype_of

        specs = interp.input_specs()
        outputs = [spec.name for spec in interp.output_specs()]

        def connect() -> tuple[Any, list[Any]]:
            inputs = [triton.InferInput(spec.name, list(array.shape), datatype_of(array.dtype))
                      for spec, array in zip(specs, feed)]
            return triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=60), inputs

        def call(state: tuple[Any, list[Any]]) -> None:
            client, inputs = state
            for wire, array in zip(inputs, feed):  # as an app sends each new frame
                wire.set_data_from_numpy(array, binary_data=True)
            result = client.infer("m", inputs)
            for output in outputs:
                result.as_numpy(output)

        return server_round(call, connect)

    def server_round(call: Callable[[Any], None], connect: Callable[[], Any]) -> tuple[float, list[float], float,
                                                                                      float]:
        client0, server0 = cpu_seconds(), cpu_seconds(server.proc.pid)
        rps, lats = load(call, connect, clients, seconds)
        return rps, lats, (cpu_seconds(server.proc.pid) - server0) / len(lats), (cpu_seconds() - client0) / len(lats)

    def pool_round() -> tuple[float, list[float], float, float]:
        cpu0 = cpu_seconds()
        rps, lats = load(lambda _: pool.run(feed), lambda: None, clients, seconds)
        return rps, lats, (cpu_seconds() - cpu0) / len(lats), 0.0

    ways = {"server": http_client_round, "server, lean client": lean_round, "pool": pool_round}
    if find_spec("tritonclient") is not None:
        ways = {"server, tritonclient": tritonclient_round, **ways}
    if loadgen is not None:
        ways = {"server, C client": c_round, **ways}
    load_before = os.getloadavg()[0]
    try:
        for fn in ways.values():  # warm-up: connections, first calls
            fn()
        result: dict[str, list[Any]] = {way: [] for way in ways}
        for _ in range(rounds):
            for way, fn in ways.items():
                result[way].append(fn())
    finally:
        server.stop()
    row: dict[str, Any] = {}
    for way, runs in result.items():
        lat = sorted(x for _, lats, _, _ in runs for x in lats)
        row[way] = {"rps": statistics.median(r[0] for r in runs), "p50_ms": 1000 * lat[len(lat) // 2],
                    "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                    "cpu_ms": 1000 * statistics.median(r[2] for r in runs),
                    "client_cpu_ms": 1000 * statistics.median(r[3] for r in runs)}
    row["load_average"] = [load_before, os.getloadavg()[0]]
    pool_row = row["pool"]
    for way, suffix in (("server, tritonclient", "_tritonclient"), ("server", ""), ("server, lean client", "_lean"),
                        ("server, C client", "_c")):
        if way not in row:
            continue
        s = row[way]
        row[f"ratio{suffix}"] = s["rps"] / pool_row["rps"]
        # Requests per CPU-second, server process alone vs the pool: the throughput ratio when CPU-bound.
        row[f"cpu_ratio{suffix}"] = pool_row["cpu_ms"] / s["cpu_ms"]
        row[f"cpu_ratio_with_client{suffix}"] = pool_row["cpu_ms"] / (s["cpu_ms"] + s["client_cpu_ms"])
        print(f"{name:24} {way:20} {s['rps']:8.1f} req/s p50 {s['p50_ms']:7.2f} ms p99 {s['p99_ms']:7.2f} ms | "
              f"pool {pool_row['rps']:8.1f} req/s p50 {pool_row['p50_ms']:7.2f} ms p99 {pool_row['p99_ms']:7.2f} ms | "
              f"ratio {row['ratio' + suffix]:.2f} | cpu/request server {s['cpu_ms']:.2f} + client "
              f"{s['client_cpu_ms']:.2f} vs pool {pool_row['cpu_ms']:.2f} ms: {row['cpu_ratio' + suffix]:.2f} "
              f"({row['cpu_ratio_with_client' + suffix]:.2f} with the client)", file=sys.stderr)
    return row


def bench_deepstack(rounds: int, calls: int) -> dict[str, Any]:
    """DeepStack through the server (1 worker, 1 client) vs decode + detect() in-process."""
    from PIL import Image
    from skimage import data as skdata

    from tfedge.tasks.detect import detect

    buf = io.BytesIO()
    Image.fromarray(np.asarray(skdata.astronaut())).save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    boundary = "benchboundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="image"\r\n\r\n'.encode()
            + jpeg + f"\r\n--{boundary}--\r\n".encode())
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    interp = tfedge.Interpreter(FACES, num_threads=1)
    server = ServerChild({"faces": FACES}, "--detect", "faces", "--workers", "1")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def local() -> None:
        with Image.open(io.BytesIO(jpeg)) as img:
            detect(interp, np.asarray(img.convert("RGB")), score_threshold=0.4)

    def remote() -> None:
        json.loads(_post(conn, "/v1/vision/detection", body, headers))

    def remote_fresh() -> None:  # as Frigate's requests.post(): a new connection for each frame
        fresh = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            json.loads(_post(fresh, "/v1/vision/detection", body, headers))
        finally:
            fresh.close()

    def detect_only() -> None:
        detect(interp, decoded, score_threshold=0.4)

    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    ways = {"server": remote, "server, new connection": remote_fresh, "decode+detect": local, "detect": detect_only}
    times: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in [*ways, "client", "client, new connection"]}
    try:
        for fn in ways.values():
            for _ in range(5):
                fn()
        for _ in range(rounds):
            for way, fn in ways.items():
                c0, s0 = cpu_seconds(), cpu_seconds(server.proc.pid)
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn()
                times[way].append((time.perf_counter() - t0) / calls)
                c1, s1 = cpu_seconds(), cpu_seconds(server.proc.pid)
                if way.startswith("server"):  # the server process's CPU; the client's apart
                    cpu[way].append((s1 - s0) / calls)
                    cpu[way.replace("server", "client")].append((c1 - c0) / calls)
                else:
                    cpu[way].append((c1 - c0) / calls)
    finally:
        conn.close()
        server.stop()
    row: dict[str, Any] = {k: 1000 * statistics.median(v) for k, v in times.items()}
    # CPU: over all rounds (the server's from /proc, in 10 ms ticks: a round alone is too coarse).
    row.update({f"{k} cpu": 1000 * statistics.fmean(v) for k, v in cpu.items()})
    for suffix in ("", ", new connection"):
        row[f"ratio{suffix}"] = row[f"server{suffix}"] / row["decode+detect"]
        row[f"cpu_ratio{suffix}"] = row[f"server{suffix} cpu"] / row["decode+detect cpu"]
        row[f"cpu_ratio_with_client{suffix}"] = ((row[f"server{suffix} cpu"] + row[f"client{suffix} cpu"])
                                                 / row["decode+detect cpu"])
    print(f"deepstack (astronaut 512x512 JPEG): server {row['server']:.2f} ms, decode+detect "
          f"{row['decode+detect']:.2f} ms, detect alone {row['detect']:.2f} ms: ratio {row['ratio']:.2f}; cpu "
          f"server {row['server cpu']:.2f} + client {row['client cpu']:.2f} vs {row['decode+detect cpu']:.2f} ms: "
          f"{row['cpu_ratio']:.2f} ({row['cpu_ratio_with_client']:.2f} with the client); a new connection each: "
          f"{row['server, new connection']:.2f} ms, ratio {row['ratio, new connection']:.2f}, cpu "
          f"{row['cpu_ratio, new connection']:.2f}", file=sys.stderr)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--calls", type=int, default=20, help="DeepStack calls per round")
    parser.add_argument("--no-mobilenet", action="store_true", help="only the face detector (no TensorFlow)")
    parser.add_argument("--no-c-client", action="store_true", help="leave out the C client (benchmarks/loadgen.c)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    models = {"face_detection": FACES}
    if not args.no_mobilenet:
        from models import DEFAULT_WORK_DIR, build_models, model_name

        built = build_models(Path(os.environ.get("TFEDGE_BENCH_DIR", DEFAULT_WORK_DIR)))
        for mode in ("float32", "int8"):
            models[f"mobilenet_v2-{mode}"] = built[model_name("mobilenet_v2", mode)]
    results: dict[str, Any] = {"workers": args.workers, "clients": args.clients, "cpus": os.cpu_count(),
                               "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as folder:
        loadgen = None if args.no_c_client else build_loadgen(Path(folder))
        for name, path in models.items():
            results[name] = bench_infer(name, path, args.workers, args.clients, args.rounds, args.seconds, loadgen)
    results["deepstack"] = bench_deepstack(args.rounds, args.calls)
    results["load_average_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
