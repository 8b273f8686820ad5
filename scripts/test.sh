#!/usr/bin/env bash
# Runs the test suite: creates .venv with every extra the tests need (once), then pytest.
# The runtime tests run in a process of their own: the converter tests import TensorFlow,
# and after that tflite_runtime misreads models in the same process (a known clash).
# Usage: scripts/test.sh [pytest arguments]   (with arguments: one pytest run, as given)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest tests/runtime tests/benchmarks tests/native
.venv/bin/python -m pytest tests/converters
