#!/usr/bin/env bash
# Runs the test suite, what CI runs: builds the wheel and installs it into .venv with every
# extra the tests need (scripts/_venv.sh), then every cell of scripts/matrix.py: the static checks and the whole suite in .venv
# (Python 3.11, both backends), and the runtime suite in a cached venv per platform cell
# (Python 3.8-3.13, numpy 1 and 2, one backend, none). A summary table ends the output.
# Usage: scripts/test.sh                  every cell
#        scripts/test.sh --cell py3.9     some cells (repeatable; --list names them)
#        scripts/test.sh [pytest args]    one pytest run in .venv, as given
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
if [ "$#" -gt 0 ] && [ "$1" != "--cell" ] && [ "$1" != "--list" ]; then
  # As in every cell, pytest runs outside the checkout (so that neither it nor a `python -c`
  # a test starts can import the source tree): paths that exist here are made absolute.
  repo=$PWD
  args=()
  for arg in "$@"; do
    if [ -e "$arg" ]; then args+=("$repo/$arg"); else args+=("$arg"); fi
  done
  cd "$(mktemp -d)"
  exec "$repo/.venv/bin/python" -m pytest "${args[@]}"
fi
exec .venv/bin/python scripts/matrix.py "$@"
