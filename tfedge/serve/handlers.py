"""What each endpoint answers: requests in, responses out, with no sockets in sight.

:class:`Service` owns the models (one :class:`~tfedge.InterpreterPool` each), the admission
limit of each (``workers`` running + ``queue`` waiting; beyond it 503 at once), the API key
and the metrics. :mod:`tfedge.serve.server` feeds it parsed HTTP requests.
"""

from __future__ import annotations

import hmac
import io
import json
import queue
import threading
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote

import numpy as np

from .._version import __version__
from ..errors import InputError, SignatureError, TfedgeError, first_line
from ..interpreter import Interpreter, TensorSpec
from ..pool import InterpreterPool
from .metrics import Metrics
from .multipart import parse_detection_form
from .protocol import HEADER_LENGTH, RequestError, datatype_of, encode_infer_response, parse_header_length, \
    parse_infer_request

__all__ = ["Model", "Response", "Service", "check_detector", "decode_image"]

JSON = "application/json"


@dataclass
class Response:
    """An HTTP response: status, body, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: Dict[str, str] = field(default_factory=dict)
    model: str = ""  # for the metrics and the access log
    endpoint: str = ""


def _json(status: int, doc: Any, **headers: str) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode(), headers=dict(headers))


def _error(exc: RequestError) -> Response:
    return _json(exc.status, {"error": str(exc)})


def _spec_json(spec: TensorSpec, output: bool) -> Dict[str, Any]:
    """One tensor of the model metadata; quantized outputs come back as FP32, as run() returns them."""
    dtype = np.dtype(np.float32) if output and spec.quantization is not None else spec.dtype
    return {"name": spec.name, "datatype": datatype_of(dtype), "shape": list(spec.shape_signature)}


class Model:
    """One served model: its pool, what it says about itself, and its admission limit."""

    def __init__(self, name: str, pool: InterpreterPool, queue_size: int) -> None:
        self.name = name
        self.pool = pool
        first = pool.interpreters[0]
        self.metadata = json.dumps({
            "name": name, "versions": ["1"], "platform": "tensorflow_lite",
            "inputs": [_spec_json(s, False) for s in first.input_specs()],
            "outputs": [_spec_json(s, True) for s in first.output_specs()],
        }, separators=(",", ":")).encode()
        self.limit = pool.size + queue_size
        self._admitted = 0
        self._lock = threading.Lock()
        # detect() takes one Interpreter: lend the pool's, one call each.
        self._free: queue.SimpleQueue[Interpreter] = queue.SimpleQueue()
        for interp in pool.interpreters:
            self._free.put(interp)

    def admit(self) -> None:
        """Take a place in the queue, or raise RequestError (503) when it is full."""
        with self._lock:
            if self._admitted >= self.limit:
                raise RequestError(f"Model {self.name!r} is busy: {self.pool.size} running and "
                                   f"{self.limit - self.pool.size} waiting. Retry shortly.", 503)
            self._admitted += 1

    def leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    def queue_depth(self) -> int:
        """Admitted requests beyond those the workers can run now."""
        return max(0, self._admitted - self.pool.size)

    def detect(self, image: np.ndarray, threshold: float, labels: Optional[Sequence[str]]) -> List[Any]:
        """tfedge.tasks.detect on a free interpreter of the pool."""
        from ..tasks.detect import detect

        interp = self._free.get()
        try:
            return detect(interp, image, score_threshold=threshold, labels=labels)
        finally:
            self._free.put(interp)


def decode_image(data: bytes) -> np.ndarray:
    """A JPEG/PNG/... file's bytes as an (H, W, 3) uint8 array (Pillow)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            # An RGB JPEG is read as it is: convert("RGB") would only copy it (the same pixels).
            return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    except Image.DecompressionBombError:
        raise RequestError(f"The image has more than {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels: "
                           "send a smaller one.", 413) from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise RequestError(f"The 'image' field is not an image Pillow can read ({first_line(exc)[:120]}): "
                           "send a whole JPEG or PNG file.") from None


def check_detector(detect: Optional[str], models: Mapping[str, Any]) -> None:
    """Raise RequestError unless ``detect`` is None or one of ``models``."""
    if detect is not None and detect not in models:
        raise RequestError(f"--detect {detect!r} names no served model. Served: {', '.join(models)}.")


class Service:
    """The endpoints: ``handle(method, path, headers, body)`` returns a :class:`Response`.

    Args:
        models: The served models by name.
        detect: The name of the model that answers DeepStack's ``/v1/vision/detection``.
        labels: Labels for the detector (default: its metadata's).
        api_key: When set, every request but the health checks must carry it.
    """

    def __init__(self, models: Mapping[str, Model], *, detect: Optional[str] = None,
                 labels: Optional[Sequence[str]] = None, api_key: Optional[str] = None) -> None:
        check_detector(detect, models)
        self.models = dict(models)
        self.detector = detect
        self.labels = labels
        self.api_key = api_key
        self.metrics = Metrics()
        for name, model in self.models.items():
            self.metrics.watch_queue(name, model.queue_depth)
        self.draining = False  # set by SIGTERM: readiness answers 503
        self._routes: Dict[Tuple[str, str], Callable[[List[str], Mapping[str, str], bytes], Response]] = {
            ("GET", "live"): self._live, ("GET", "ready"): self._ready, ("GET", "server"): self._server,
            ("GET", "model"): self._model_metadata, ("GET", "model_ready"): self._model_ready,
            ("POST", "infer"): self._infer, ("POST", "detection"): self._detection, ("GET", "metrics"): self._metrics,
        }

    # -- dispatch --------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; never raises for anything a client can send."""
        start = time.perf_counter()
        endpoint, args = _route(path.split("?", 1)[0])
        if endpoint == "detection":
            model = self.detector or ""
        else:
            model = args[0] if args and args[0] in self.models else ""
        try:
            handler = self._routes.get((method, endpoint))
            if endpoint == "unknown":
                raise RequestError(f"No endpoint at {path[:80]!r}. Try GET /v2, GET /v2/models/NAME, "
                                   "POST /v2/models/NAME/infer, POST /v1/vision/detection, GET /metrics.", 404)
            if handler is None:
                allowed = [m for m, e in self._routes if e == endpoint]
                response = _json(405, {"error": f"{path[:80]} takes {' or '.join(allowed)}, not {method[:10]}."},
                                 Allow=", ".join(allowed))
            else:
                if endpoint not in ("live", "ready") and endpoint != "detection":
                    self._check_key(headers)
                response = handler(args, headers, body)
        except RequestError as exc:
            response = _error(exc)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            if exc.status == 503:
                response.headers["Retry-After"] = "1"
            if endpoint == "detection":
                response = _json(exc.status, {"success": False, "error": str(exc)}, **response.headers)
        except Exception as exc:  # a bug, not the client's fault: logged in full, and the server keeps serving
            traceback.print_exc(file=sys.stderr)
            response = _json(500, {"error": f"Internal error ({type(exc).__name__}); the server log has the details."})
        response.model, response.endpoint = model, endpoint
        self.metrics.observe(model, endpoint, response.status, time.perf_counter() - start)
        return response

    def _check_key(self, headers: Mapping[str, str], form_key: Optional[str] = None) -> None:
        """Raise 401 unless the request carries the API key (header or DeepStack's form field)."""
        if self.api_key is None:
            return
        given = headers.get("x-api-key") or form_key
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), self.api_key.encode()):
            raise RequestError("Missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
                               "(DeepStack: the api_key form field).", 401)

    def _get_model(self, args: List[str]) -> Model:
        name = args[0]
        model = self.models.get(name)
        if model is None:
            raise RequestError(f"Unknown model {name[:80]!r}. Served: {', '.join(map(repr, self.models))}.", 404)
        if len(args) > 1 and args[1] not in ("1", ""):
            raise RequestError(f"Model {name!r} has no version {args[1][:20]!r}. Available: '1'.", 404)
        return model

    # -- endpoints -------------------------------------------------------------

    def _live(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        return _json(200, {"live": True})

    def _ready(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        return _json(503 if self.draining else 200, {"ready": not self.draining})

    def _server(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        return _json(200, {"name": "tfedge", "version": __version__, "extensions": ["binary_tensor_data"]})

    def _model_metadata(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        return Response(200, self._get_model(args).metadata)

    def _model_ready(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        model = self._get_model(args)
        return _json(503 if self.draining else 200, {"name": model.name, "ready": not self.draining})

    def _metrics(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        return Response(200, self.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _infer(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        model = self._get_model(args)
        request = parse_infer_request(body, parse_header_length(headers.get(HEADER_LENGTH.lower()), len(body)))
        model.admit()
        try:
            outputs = model.pool.run(request.inputs)
        except (InputError, SignatureError) as exc:
            raise RequestError(str(exc)) from None
        except TfedgeError as exc:
            raise RequestError(f"Model {model.name!r} failed: {first_line(exc)}", 500) from None
        finally:
            model.leave()
        data, header_length = encode_infer_response(model.name, outputs, request)
        if header_length is None:
            return Response(200, data)
        return Response(200, data, "application/octet-stream", {HEADER_LENGTH: str(header_length)})

    def _detection(self, args: List[str], headers: Mapping[str, str], body: bytes) -> Response:
        if self.detector is None:
            raise RequestError("This server has no detector: start it with --detect NAME.", 404)
        form = parse_detection_form(body, headers.get("content-type"))
        self._check_key(headers, form.api_key)
        model = self.models[self.detector]
        image = decode_image(form.image)
        model.admit()
        try:
            found = model.detect(image, form.min_confidence, self.labels)
        except InputError as exc:
            raise RequestError(str(exc)) from None
        except TfedgeError as exc:
            raise RequestError(f"Model {model.name!r} failed: {first_line(exc)}", 500) from None
        finally:
            model.leave()
        found = sorted(found, key=lambda d: -float(d.score))
        predictions = [{"label": d.label or str(d.index), "confidence": round(float(d.score), 6),
                        "x_min": int(round(d.box[0])), "y_min": int(round(d.box[1])),
                        "x_max": int(round(d.box[2])), "y_max": int(round(d.box[3]))} for d in found]
        return _json(200, {"success": True, "predictions": predictions})


def _route(path: str) -> Tuple[str, List[str]]:
    """The endpoint a path names, and its arguments (model name, version)."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts == ["v2"]:
        return "server", []
    if parts == ["metrics"]:
        return "metrics", []
    if parts in (["v1", "vision", "detection"], ["v1", "vision", "detection", ""]):
        return "detection", []
    if parts[:2] == ["v2", "health"] and len(parts) == 3 and parts[2] in ("live", "ready"):
        return parts[2], []
    if parts[:2] == ["v2", "models"] and len(parts) >= 3:
        name, rest = parts[2], parts[3:]
        version = ""
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
        if rest == []:
            return "model", [name, version]
        if rest == ["ready"]:
            return "model_ready", [name, version]
        if rest == ["infer"]:
            return "infer", [name, version]
    return "unknown", []
