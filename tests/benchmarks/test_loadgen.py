"""benchmarks/loadgen.c, the C client of benchmarks/serve.py: it counts what the server answered, and stops on anything else."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import tfedge
from tfedge.serve import Server, build_service

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
ADD = Path(__file__).resolve().parents[1] / "data" / "litert-testdata" / "add.tflite"

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")


@pytest.fixture(scope="module")
def serve_bench() -> Iterator[object]:
    """benchmarks/serve.py as a module (by its path: tests/serve is a folder of the same name)."""
    sys.path.insert(0, str(BENCH))  # for its own imports (_timing)
    try:
        spec = importlib.util.spec_from_file_location("bench_serve", BENCH / "serve.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def loadgen(serve_bench: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """benchmarks/loadgen.c, compiled once for the module."""
    return serve_bench.build_loadgen(tmp_path_factory.mktemp("loadgen"))  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = Server(build_service({"add": str(ADD)}, workers=2), "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.address[1]
    finally:
        server.stop()
        thread.join()


def test_counts_every_answered_request(serve_bench: object, loadgen: Path, port: int, tmp_path: Path) -> None:
    body, headers = serve_bench.binary_request(tfedge.Interpreter(ADD), np.random.default_rng(0))  # type: ignore[attr-defined]
    request = serve_bench.tritonclient_bytes(body, headers, port).replace(b"/models/m/", b"/models/add/")  # type: ignore[attr-defined]
    (tmp_path / "request").write_bytes(request)
    rps, latencies, cpu = serve_bench.c_load(loadgen, port, tmp_path / "request", 3, 0.5)  # type: ignore[attr-defined]
    assert len(latencies) > 10
    assert rps == pytest.approx(len(latencies) / 0.5, rel=0.5)
    assert all(0 < x < 30 for x in latencies)
    assert 0 < cpu < 0.1  # CPU seconds per request


def test_stops_on_an_answer_that_is_not_200(serve_bench: object, loadgen: Path, port: int, tmp_path: Path) -> None:
    body, headers = serve_bench.binary_request(tfedge.Interpreter(ADD), np.random.default_rng(0))  # type: ignore[attr-defined]
    request = serve_bench.tritonclient_bytes(body, headers, port)  # type: ignore[attr-defined]  # model "m": 404
    (tmp_path / "request").write_bytes(request)
    with pytest.raises(RuntimeError, match=r"loadgen failed: loadgen: connection \d: the answer was not 200: HTTP/1.1 404"):
        serve_bench.c_load(loadgen, port, tmp_path / "request", 2, 0.5)  # type: ignore[attr-defined]
