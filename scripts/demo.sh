#!/usr/bin/env bash
# The main job end to end on a built-in example: train a small CNN on scikit-learn's digits,
# convert it in four modes, validate each against TensorFlow, run the int8 model with tfedge.
# Usage: scripts/demo.sh [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/python -m converters.example "$@"
