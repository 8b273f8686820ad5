"""Load and run a model with one backend, in a process that never imports TensorFlow.

``python -m converters._probe BACKEND MODEL`` prints one JSON line:
``{"ok": bool, "installed": bool, "version": str, "error": str|null}``. TensorFlow in
the same process breaks tflite_runtime on TF 2.21 models (``vector::reserve``), so the
report probes each runtime here, as an app on the device would load it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import numpy as np


def main(argv: Sequence[str] | None = None) -> int:
    """Probe one backend on one model; the verdict is on stdout."""
    backend, path = (sys.argv[1:] if argv is None else list(argv))[:2]
    from tfedge import Interpreter
    from tfedge.errors import BackendNotFoundError, TfedgeError

    verdict: dict[str, object] = {"ok": False, "installed": True, "version": "", "error": None}
    try:
        interp = Interpreter(path, backend=backend, num_threads=1)
        verdict["version"] = interp.backend_version
        inputs = {s.name: np.zeros(s.shape, s.dtype) for s in interp.input_specs()}
        interp.run(inputs, raw=True)
        verdict["ok"] = True
    except BackendNotFoundError as exc:
        verdict.update(installed=False, error=str(exc))
    except TfedgeError as exc:
        verdict["error"] = str(exc)
    if not verdict["version"]:
        from tfedge import _backend

        try:
            verdict["version"] = _backend.get_backend(backend).version
        except TfedgeError:
            pass
    verdict["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(verdict))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
