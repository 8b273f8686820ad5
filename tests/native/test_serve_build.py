"""A binary built with ``tfedge-build --serve``: it serves its embedded model by default, and its systemd unit.

One build (``native_build``: the ``native`` CI cell runs it) shared by every test here; the
server it starts is asked as a client would ask it, on a free loopback port.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tfedge
from support import MODELS, ServerProcess
from tfedge import __version__
from tfedge.native.targets import host_arch

pytestmark = pytest.mark.native_build

BUILD = str(Path(sys.executable).parent / "tfedge-build")
ADD = MODELS / "add.tflite"
FACES = Path(__file__).resolve().parents[1] / "data" / "mediapipe" / "face_detection_short_range.tflite"


class Served(ServerProcess):
    """The binary's default command (``tfedge serve`` with its models) on a free loopback port."""

    def __init__(self, binary: Path, env: dict[str, str], log: Path, *args: str) -> None:
        super().__init__(list(args), log, env, command=[str(binary)], timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """``tfedge-build --serve adder=add.tflite --serve faces=... --detect faces --port 8123`` (built once), its environment."""
    arch = host_arch()
    if arch is None:
        pytest.fail(f"tfedge-build builds for x86_64, aarch64 and armv7l, not {os.uname().machine}")
    tmp = tmp_path_factory.mktemp("serve-build")
    proc = subprocess.run([BUILD, "--serve", f"adder={ADD}", "--serve", f"faces={FACES}", "--detect", "faces",
                           "--port", "8123", "--dist", str(tmp / "dist")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    binary = Path(proc.stdout.strip())
    assert binary == tmp / "dist" / f"tfedge-serve-{__version__}-linux-{arch.value}"
    assert sorted(p.name for p in binary.parent.iterdir()) == [
        f"{binary.name}{suffix}" for suffix in ("", ".build.log", ".report.xml", ".service")
    ]
    # The model ran once on the backend before Nuitka, and the binary served before it was installed.
    assert "build_native: running the models once on " in proc.stderr
    assert f"build_native: wrote the systemd unit {binary}.service " in proc.stderr
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
    env.pop("TFEDGE_BACKEND", None)
    return binary, env


@pytest.fixture(scope="module")
def server(built: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    binary, env = built
    served = Served(binary, env, tmp_path_factory.mktemp("serve-log") / "server.log", "--workers", "1")
    yield served
    assert served.stop() == 0, served.text()


def test_ready_and_model_metadata(server: Served) -> None:
    assert server.request("GET", "/v2/health/ready")[0] == 200
    status, _, body = server.request("GET", "/v2/models/adder")
    assert status == 200
    spec = tfedge.Interpreter(str(ADD)).input_specs()[0]
    meta = json.loads(body)
    assert meta["name"] == "adder"
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        (spec.name, "FP32", list(spec.shape_signature))]


def test_binary_infer_equals_run_in_python(server: Served) -> None:
    interp = tfedge.Interpreter(str(ADD))
    spec = interp.input_specs()[0]
    x = np.random.default_rng(0).standard_normal(spec.shape, dtype=np.float32)
    expected = interp.run({spec.name: x})
    try:
        import tritonclient.http as httpclient
    except ImportError:  # the native cell's venv: the binary tensor extension by hand
        header = json.dumps({"inputs": [{"name": spec.name, "shape": list(x.shape), "datatype": "FP32",
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "parameters": {"binary_data_output": True}}).encode()
        status, headers, body = server.request(
            "POST", "/v2/models/adder/infer", header + x.tobytes(),
            {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})
        assert status == 200, body
        length = int(headers["inference-header-content-length"])
        outputs, offset = {}, length
        for out in json.loads(body[:length])["outputs"]:
            size = out["parameters"]["binary_data_size"]
            outputs[out["name"]] = np.frombuffer(body[offset:offset + size], np.float32).reshape(out["shape"])
            offset += size
    else:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
        inp = httpclient.InferInput(spec.name, list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=True)
        result = client.infer("adder", [inp])
        outputs = {name: result.as_numpy(name) for name in expected}
        client.close()
    assert sorted(outputs) == sorted(expected)
    for name, want in expected.items():
        assert outputs[name].tobytes() == want.tobytes(), name


def test_bad_request_is_400_and_the_server_keeps_serving(server: Served) -> None:
    status, _, body = server.request("POST", "/v2/models/adder/infer", b'{"inputs": [{"name": ',
                                     {"Content-Type": "application/json"})
    assert status == 400
    assert "error" in json.loads(body)
    assert server.request("GET", "/v2/models/adder/ready")[0] == 200
    assert server.proc.poll() is None


def test_other_commands_are_still_there(built: tuple[Path, dict[str, str]]) -> None:
    binary, env = built
    out = subprocess.run([str(binary), "info", "embedded:adder"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("model      embedded:adder (")


def test_sigterm_exits_0(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    binary, env = built
    served = Served(binary, env, tmp_path / "server.log", "--quiet")
    assert served.request("GET", "/v2/health/live")[0] == 200
    assert served.stop() == 0, served.text()
    assert "Traceback" not in served.text()


def test_systemd_unit(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    binary, _ = built
    unit = Path(f"{binary}.service").read_text()
    assert ("ExecStart=/usr/local/bin/tfedge-serve serve embedded:adder embedded:faces --detect faces "
            "--host 127.0.0.1 --port 8123\n") in unit
    for line in ("Restart=on-failure", "User=tfedge", "DynamicUser=yes", "CacheDirectory=tfedge",
                 "Environment=XDG_CACHE_HOME=%C/tfedge", "KillSignal=SIGTERM", "WantedBy=multi-user.target"):
        assert f"\n{line}\n" in unit, line
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    # systemd checks that ExecStart is an executable: the same unit, pointing at the binary built.
    copy = tmp_path / "tfedge-serve.service"
    copy.write_text(unit.replace("/usr/local/bin/tfedge-serve", str(binary)))
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _form(**parts: tuple[str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body as ``requests`` makes it (Frigate's ``requests.post(data=..., files=...)``)."""
    boundary = "a5d1f3c0e2b94f6c8d7e9a0b1c2d3e4f"
    body = b""
    for name, (filename, content) in parts.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _encoded(pixels: np.ndarray, kind: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=kind)
    return out.getvalue()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")  # the native cell installs it
    return np.asarray(skdata.astronaut())


def test_deepstack_as_frigate_sends_it_equals_detect_in_python(server: Served, astronaut: np.ndarray) -> None:
    from PIL import Image

    from tfedge.tasks import detect

    data = _encoded(astronaut, "JPEG")
    # Frigate's deepstack detector: requests.post(api_url, data={"api_key": ...}, files={"image": jpeg_bytes}).
    status, _, body = server.request("POST", "/v1/vision/detection", *_form(api_key=(None, b""), image=("image", data)))
    assert status == 200, body
    answer = json.loads(body)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    expected = sorted(detect(tfedge.Interpreter(str(FACES)), decoded, score_threshold=0.4), key=lambda d: -d.score)
    assert expected, "the astronaut's face should be found"
    assert answer == {"success": True, "predictions": [
        {"label": d.label or str(d.index), "confidence": round(float(d.score), 6), "x_min": int(round(d.box[0])),
         "y_min": int(round(d.box[1])), "x_max": int(round(d.box[2])), "y_max": int(round(d.box[3]))}
        for d in expected]}
    # PNG is the other format the binary decodes.
    status, _, body = server.request("POST", "/v1/vision/detection", *_form(image=("a.png", _encoded(astronaut, "PNG"))))
    assert status == 200, body
    assert [p["label"] for p in json.loads(body)["predictions"]] == [p["label"] for p in answer["predictions"]]


def test_deepstack_truncated_jpeg_and_left_out_formats_are_400(server: Served, astronaut: np.ndarray) -> None:
    truncated = _encoded(astronaut, "JPEG")[:2000]
    status, _, body = server.request("POST", "/v1/vision/detection", *_form(image=("image", truncated)))
    assert status == 400, body
    assert json.loads(body)["success"] is False
    assert json.loads(body)["error"].startswith("The 'image' field is not an image Pillow can read (")
    # GIF's decoder is in Pillow but not in the binary: an image it cannot identify, one line, 400.
    status, _, body = server.request("POST", "/v1/vision/detection",
                                     *_form(image=("a.gif", _encoded(astronaut[:64, :64], "GIF"))))
    assert status == 400, body
    error = json.loads(body)["error"]
    assert error.startswith("The 'image' field is not an image Pillow can read (cannot identify image file")
    assert error.endswith("send a whole JPEG or PNG file.") and "\n" not in error
    assert server.request("GET", "/v2/models/faces/ready")[0] == 200
    assert server.proc.poll() is None
