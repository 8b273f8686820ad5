#!/usr/bin/env bash
# The main job end to end on a built-in example: train a small CNN on scikit-learn's digits
# (no download), export a SavedModel, convert it in four modes (float32, float16, dynamic
# range, full int8) with validation against TensorFlow, then inspect, check and benchmark
# the int8 model with the runtime.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: a temporary directory, deleted at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
if [ "$#" -gt 0 ]; then
  out=$(realpath -m "$1")
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
venv=$PWD/.venv/bin
# From the output folder, not the checkout: `python -m` would import the source tree first.
cd "$out"
"$venv/python" -m tfedge.converters.example --output-dir "$out"
model="$out/digits_int8.tflite"
echo
"$venv/tfedge" info "$model"
echo
"$venv/tfedge" check "$model"
echo
"$venv/tfedge" bench "$model" --runs 500
