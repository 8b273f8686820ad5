#!/usr/bin/env bash
# The runtime end to end on a model from ../shared/models: inspect it, check it in a child
# process, run it on float inputs (quantized for you), and benchmark it.
# (The full path, train -> convert -> validate -> run, arrives with converters/.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
model=${1:-../shared/models/litert-testdata/add_quantized_int8.tflite}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
.venv/bin/tfedge info "$model"
.venv/bin/tfedge check "$model"
.venv/bin/python - "$model" <<'PY'
import sys
import numpy as np
from tfedge import Interpreter
interp = Interpreter(sys.argv[1])
spec = interp.input_specs()[0]
x = np.random.default_rng(0).uniform(-0.5, 0.5, spec.shape).astype(np.float32)
for name, value in interp.run(x).items():
    print(f"run(): float32 in (quantized to {spec.dtype}), {name} out: {value.dtype} {value.shape}, "
          f"values in [{value.min():.4f}, {value.max():.4f}]")
PY
.venv/bin/tfedge bench "$model" --runs 200
