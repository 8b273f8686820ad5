#!/usr/bin/env bash
# Runs the test suite: creates .venv with every extra the tests need (once), then pytest.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/python -m pytest "$@"
