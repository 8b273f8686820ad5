"""Custom ops as upstream offers them: ``custom_op_registerers`` by symbol name and by function.

The op is our own: ``sinhop.c`` (a float32 elementwise "Sinh", the custom op of LiteRT's
``custom_sinh.tflite``) is compiled here into a shared library whose registerer adds it to
the resolver the backend passes. It must register through the resolver's
``MutableOpResolver::AddCustom``, which tflite_runtime's library exports and
ai_edge_litert 2.3's does not (``nm -D`` lists 3 symbols in its interpreter wrapper, none
of TFLite's): there the registerer runs, finds no way to add the op, and the load says
which op is missing.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import tfedge
from support import MODELS
from tfedge import _backend

SOURCE = Path(__file__).resolve().parent / "sinhop.c"
SINH = MODELS / "custom_sinh.tflite"


@pytest.fixture(scope="module")
def sinhop(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """The op's library, built now and loaded globally (so the backend's dlsym finds it by name)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc/cc) to build the custom op")
    out = tmp_path_factory.mktemp("sinhop") / "libtfedge_sinhop.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out), str(SOURCE), "-lm"],
                   check=True)
    return ctypes.CDLL(str(out), mode=ctypes.RTLD_GLOBAL)


def _by_function(lib: ctypes.CDLL) -> Callable[[int], None]:
    """A registerer function, as upstream takes one: called with the resolver's address."""
    register = lib.TfedgeTestRegisterSinh
    register.argtypes = [ctypes.c_void_p]
    return lambda address: register(ctypes.c_void_p(address))


def _registerer(kind: str, lib: ctypes.CDLL) -> Any:
    return "TfedgeTestRegisterSinh" if kind == "name" else _by_function(lib)


@pytest.mark.parametrize("kind", ["name", "function"])
def test_own_custom_op_runs_on_tflite_runtime(kind: str, sinhop: ctypes.CDLL) -> None:
    try:
        raw_backend = _backend.get_backend("tflite_runtime")
    except tfedge.BackendNotFoundError as exc:
        pytest.skip(str(exc))
    x = np.random.default_rng(0).uniform(-3, 3, size=7).astype(np.float32)
    ran = sinhop.tfedge_test_sinh_invocations()
    interp = tfedge.Interpreter(SINH, backend="tflite_runtime", custom_op_registerers=[_registerer(kind, sinhop)])
    assert sinhop.tfedge_test_sinh_status() == 1
    out = interp.run(x)["Identity"]  # a batch of 7 on the model's batch of 1: 7 calls
    np.testing.assert_allclose(out, np.sinh(x), rtol=1e-6)
    assert sinhop.tfedge_test_sinh_invocations() - ran == 7
    # Side by side with the backend's own InterpreterWithCustomOps, through the drop-in API.
    raw = raw_backend.module.InterpreterWithCustomOps(custom_op_registerers=[_registerer(kind, sinhop)],
                                                      model_path=str(SINH))
    raw.allocate_tensors()
    for one in (raw, interp):
        one.set_tensor(one.get_input_details()[0]["index"], x[:1])
        one.invoke()
    index = raw.get_output_details()[0]["index"]
    np.testing.assert_array_equal(interp.get_tensor(index), raw.get_tensor(index))
    np.testing.assert_allclose(interp.get_tensor(index), np.sinh(x[:1]), rtol=1e-6)


@pytest.mark.parametrize("kind", ["name", "function"])
def test_ai_edge_litert_runs_the_registerer_and_names_the_missing_op(kind: str, sinhop: ctypes.CDLL) -> None:
    try:
        _backend.get_backend("ai_edge_litert")
    except tfedge.BackendNotFoundError as exc:
        pytest.skip(str(exc))
    with pytest.raises(tfedge.ModelError, match=r"uses custom op\(s\) Sinh that ai_edge_litert does not have"):
        tfedge.Interpreter(SINH, backend="ai_edge_litert", custom_op_registerers=[_registerer(kind, sinhop)])
    # It was called with the resolver, and found no AddCustom to register with.
    assert sinhop.tfedge_test_sinh_status() == -1
