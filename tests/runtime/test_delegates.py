"""Delegates: preference lists, fallback, strict mode, placement, with a real C delegate."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support import MODELS

import tfedge
from tfedge import DelegateError, DelegateFallbackWarning, _backend
from tfedge.cli import main

BACKENDS = [b for b in ("ai_edge_litert", "tflite_runtime") if b in _backend.available_backends()]
SOURCE = Path(__file__).with_name("testdelegate.c")


@pytest.fixture(scope="session")
def testdelegate(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/runtime/testdelegate.c built with the system compiler into a temp dir."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc/cc) to build the test delegate")
    out = tmp_path_factory.mktemp("testdelegate") / "libtestdelegate.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out), str(SOURCE)], check=True)
    return str(out)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _plain(model: Path, backend: str) -> Any:
    """The backend's own interpreter with builtin kernels only (the CPU reference)."""
    b = _backend.get_backend(backend)
    raw = b.interpreter_class(
        model_path=str(model), num_threads=1,
        experimental_op_resolver_type=b.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    raw.allocate_tensors()
    return raw


def _inputs(interp: tfedge.Interpreter, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s.shape).astype(s.dtype) for s in interp.input_specs()]


def _reference(model: Path, backend: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of the plain backend interpreter for ``xs``, in output order."""
    raw = _plain(model, backend)
    for d, x in zip(raw.get_input_details(), xs):
        if tuple(d["shape"]) != x.shape:
            raw.resize_tensor_input(d["index"], x.shape)
            raw.allocate_tensors()
    for d, x in zip(raw.get_input_details(), xs):
        raw.set_tensor(d["index"], x)
    raw.invoke()
    return [raw.get_tensor(d["index"]) for d in raw.get_output_details()]


def _no_warnings() -> Any:
    """A context in which any warning fails the test."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx


def _one_warning(record: list[warnings.WarningMessage]) -> str:
    """The message of the only DelegateFallbackWarning in ``record``."""
    found = [str(w.message) for w in record if issubclass(w.category, DelegateFallbackWarning)]
    assert len(found) == 1, found
    return found[0]


# -- the test delegate, through the backends' real load_delegate --------------------


def test_accept_none_runs_on_cpu_with_identical_outputs(testdelegate: str, backend: str) -> None:
    model = MODELS / "add.tflite"
    ctx = _no_warnings()
    try:
        interp = tfedge.Interpreter(model, backend=backend, delegates=[(testdelegate, {"mode": "accept_none"}), "none"])
    finally:
        ctx.__exit__(None, None, None)
    assert interp.delegates_used == (testdelegate,)
    assert interp.placement == {testdelegate: 0, "cpu": 2}
    xs = _inputs(interp)
    out = interp.run(xs[0])
    (ref,) = _reference(model, backend, xs)
    np.testing.assert_array_equal(out["x"], ref)


def test_options_reach_the_library_exactly(testdelegate: str, backend: str, tmp_path: Path) -> None:
    record = tmp_path / "options.txt"
    options = {"mode": "accept_none", "record": str(record), "device": "usb:0", "count": 3}
    tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=[(testdelegate, options)])
    assert record.read_text() == f"mode=accept_none\nrecord={record}\ndevice=usb:0\ncount=3\n--\n"


def test_missing_library_falls_back_with_one_warning(backend: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "libnothere.so")
    with pytest.warns(DelegateFallbackWarning) as record:
        interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=[missing, "xnnpack"])
    assert _one_warning(record.list) == (
        f"Delegate '{missing}' skipped: {missing} could not be loaded: {missing}: cannot open shared "
        "object file: No such file or directory. Falling back to the CPU."
    )
    assert interp.delegates_used == ("xnnpack",)
    assert interp.placement == {"xnnpack": 2, "cpu": 0}


def test_create_failure_falls_back_with_one_warning(testdelegate: str, backend: str) -> None:
    with pytest.warns(DelegateFallbackWarning) as record:
        interp = tfedge.Interpreter(
            MODELS / "add.tflite", backend=backend, delegates=[(testdelegate, {"mode": "fail_create"})]
        )
    assert _one_warning(record.list) == (
        f"Delegate '{testdelegate}' skipped: {testdelegate} failed to create the delegate: "
        "testdelegate: asked to fail at create (mode=fail_create). Falling back to the CPU."
    )
    # The fallback ends on the backend's default CPU path (XNNPACK), not the builtin kernels.
    assert interp.delegates_used == ("xnnpack",)
    assert interp.placement == {"xnnpack": 2, "cpu": 0}


def test_prepare_failure_falls_back_and_outputs_match(testdelegate: str, backend: str) -> None:
    model = MODELS / "add.tflite"
    with pytest.warns(DelegateFallbackWarning) as record:
        interp = tfedge.Interpreter(model, backend=backend, delegates=[(testdelegate, {"mode": "fail_prepare"})])
    assert _one_warning(record.list) == (
        f"Delegate '{testdelegate}' skipped: the model failed to prepare under it: Restored original "
        "execution plan after delegate application failure. Falling back to the CPU."
    )
    assert interp.placement == {"xnnpack": 2, "cpu": 0}
    xs = _inputs(interp)
    np.testing.assert_array_equal(interp.run(xs[0])["x"], _reference(model, backend, xs)[0])


def test_library_that_is_no_delegate_is_named(backend: str) -> None:
    libm = "libm.so.6"
    with pytest.warns(DelegateFallbackWarning) as record:
        tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=[libm])
    assert _one_warning(record.list) == (
        f"Delegate '{libm}' skipped: {libm} is not a TFLite external delegate library: it does not export "
        "tflite_plugin_create_delegate, tflite_plugin_destroy_delegate. Falling back to the CPU."
    )


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("fail_create", "{lib} failed to create the delegate: testdelegate: asked to fail at create (mode=fail_create)"),
        ("fail_prepare", "the model failed to prepare under it: Restored original execution plan after delegate "
                         "application failure"),
    ],
)
def test_strict_raises_delegate_error(testdelegate: str, backend: str, mode: str, reason: str) -> None:
    with pytest.raises(DelegateError) as info:
        tfedge.Interpreter(
            MODELS / "add.tflite", backend=backend, strict=True, delegates=[(testdelegate, {"mode": mode}), "xnnpack"]
        )
    assert str(info.value) == (
        f"Delegate '{testdelegate}' cannot be used: {reason.format(lib=testdelegate)}. "
        "Pass strict=False to fall back to the next delegate (and the CPU) instead."
    )


def test_strict_missing_library_raises(backend: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "libnothere.so")
    with pytest.raises(DelegateError, match="^Delegate '.*libnothere.so' cannot be used: .* could not be loaded"):
        tfedge.Interpreter(MODELS / "add.tflite", backend=backend, strict=True, delegates=[missing])


def test_a_failing_delegate_does_not_stop_the_next(testdelegate: str, backend: str) -> None:
    with pytest.warns(DelegateFallbackWarning) as record:
        interp = tfedge.Interpreter(
            MODELS / "add.tflite", backend=backend,
            delegates=[(testdelegate, {"mode": "fail_prepare"}), (testdelegate, {"mode": "accept_none"}), "xnnpack"],
        )
    assert "Falling back to" in _one_warning(record.list)
    assert interp.delegates_used == (testdelegate, "xnnpack")
    assert interp.placement == {testdelegate: 0, "xnnpack": 2, "cpu": 0}


# -- GPU and Edge TPU are not on this machine ----------------------------------------


def _usual_dirs() -> str:
    return f"/usr/local/lib, /usr/lib/{platform.machine()}-linux-gnu, /usr/lib"


@pytest.mark.skipif(platform.system() != "Linux", reason="library names and paths are Linux ones")
def test_missing_edgetpu_names_library_and_places(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFEDGE_DELEGATE_PATH", raising=False)
    with pytest.warns(DelegateFallbackWarning) as record:
        interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=[("edgetpu", {"device": "usb:0"})])
    assert _one_warning(record.list) == (
        f"Delegate 'edgetpu' skipped: libedgetpu.so.1 was not found in {_usual_dirs()} or the system library "
        "path. Install the Edge TPU runtime (apt install libedgetpu1-std), add its directory to "
        "$TFEDGE_DELEGATE_PATH, or pass its path: delegates=[(PATH, options)]. Falling back to the CPU."
    )
    assert interp.placement == {"xnnpack": 2, "cpu": 0}


@pytest.mark.skipif(platform.system() != "Linux", reason="library names and paths are Linux ones")
def test_missing_gpu_names_library_and_places(backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFEDGE_DELEGATE_PATH", str(tmp_path))
    with pytest.warns(DelegateFallbackWarning) as record:
        interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=["gpu", "xnnpack"])
    assert _one_warning(record.list) == (
        "Delegate 'gpu' skipped: libtensorflowlite_gpu_delegate.so or libtensorflowlite_gpu_jni.so was not "
        f"found in {tmp_path}, {_usual_dirs()} or the system library path. Build the TFLite GPU delegate "
        "(bazel target //tensorflow/lite/delegates/gpu:libtensorflowlite_gpu_delegate.so), add its directory "
        "to $TFEDGE_DELEGATE_PATH, or pass its path: delegates=[(PATH, options)]. "
        "Falling back to the CPU."
    )
    assert interp.delegates_used == ("xnnpack",)


def test_gpu_found_on_search_path(testdelegate: str, backend: str, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    # A library under the GPU delegate's name in $TFEDGE_DELEGATE_PATH is the one loaded.
    shutil.copy(testdelegate, tmp_path / "libtensorflowlite_gpu_delegate.so")
    monkeypatch.setenv("TFEDGE_DELEGATE_PATH", str(tmp_path))
    record = tmp_path / "options.txt"
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=[("gpu", {"record": record})])
    assert interp.delegates_used == ("gpu", "xnnpack")  # XNNPACK takes what the GPU leaves, as upstream
    assert record.read_text() == f"record={record}\n--\n"


# -- the default list and the XNNPACK fallback ---------------------------------------


def test_default_is_xnnpack(backend: str) -> None:
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend)
    assert interp.delegates_used == ("xnnpack",)
    assert interp.placement == {"xnnpack": 2, "cpu": 0}


@pytest.mark.parametrize("entries", [["none"], []])
def test_none_means_builtin_kernels(backend: str, entries: list[str]) -> None:
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=entries)
    assert interp.delegates_used == ()
    assert interp.placement == {"cpu": 2}


def _dynamic_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((8, 42, 1024)).astype(np.float32),
            rng.standard_normal((1, 90, 1024)).astype(np.float32),
            np.zeros((1, 1), np.float32)]  # 0 makes an empty tensor, which XNNPACK cannot reshape to


@pytest.mark.skipif("ai_edge_litert" not in BACKENDS, reason="needs ai_edge_litert")
def test_dynamic_shapes_runs_by_default_through_the_fallback() -> None:
    model = MODELS / "dynamic_shapes.tflite"
    raw = _backend.get_backend("ai_edge_litert").interpreter_class(model_path=str(model))
    raw.allocate_tensors()
    xs = _dynamic_inputs()
    for d, x in zip(raw.get_input_details(), xs):
        raw.set_tensor(d["index"], x)
    with pytest.raises(RuntimeError, match="XNNPack delegate failed to reshape runtime"):
        raw.invoke()  # the backend's default fails: what the fallback is for
    interp = tfedge.Interpreter(model, backend="ai_edge_litert")
    assert interp.delegates_used == ("xnnpack",)
    with pytest.warns(DelegateFallbackWarning) as record:
        out = interp.run(xs)
    assert _one_warning(record.list) == (
        "Delegate 'xnnpack' skipped: the model failed while running under it: XNNPack delegate failed to "
        "reshape runtime (node 24, TfLiteXNNPackDelegate). Falling back to the CPU."
    )
    assert interp.delegates_used == ()
    assert interp.placement == {"cpu": 24}
    (ref,) = _reference(model, "ai_edge_litert", xs)
    assert ref.shape == (8, 0, 1024)
    np.testing.assert_array_equal(next(iter(out.values())), ref)
    ctx = _no_warnings()
    try:
        np.testing.assert_array_equal(next(iter(interp.run(xs).values())), ref)  # no second warning
    finally:
        ctx.__exit__(None, None, None)


@pytest.mark.skipif("ai_edge_litert" not in BACKENDS, reason="needs ai_edge_litert")
def test_dynamic_shapes_drop_in_invoke_falls_back() -> None:
    model = MODELS / "dynamic_shapes.tflite"
    interp = tfedge.Interpreter(model, backend="ai_edge_litert")
    xs = _dynamic_inputs()
    for d, x in zip(interp.get_input_details(), xs):
        interp.set_tensor(d["index"], x)
    with pytest.warns(DelegateFallbackWarning):
        interp.invoke()
    (ref,) = _reference(model, "ai_edge_litert", xs)
    np.testing.assert_array_equal(interp.get_tensor(interp.get_output_details()[0]["index"]), ref)


@pytest.mark.skipif("ai_edge_litert" not in BACKENDS, reason="needs ai_edge_litert")
def test_dynamic_shapes_strict_raises_on_run() -> None:
    interp = tfedge.Interpreter(MODELS / "dynamic_shapes.tflite", backend="ai_edge_litert", strict=True)
    with pytest.raises(DelegateError, match=r"^Delegate 'xnnpack' cannot be used: the model failed while running"):
        interp.run(_dynamic_inputs())


def test_model_errors_are_not_blamed_on_delegates(backend: str) -> None:
    # A builtin op failing is the model's error: no fallback, no warning.
    ctx = _no_warnings()
    try:
        with pytest.raises(tfedge.ModelError):
            tfedge.Interpreter(MODELS / "test_model.tflite", backend=backend)
    finally:
        ctx.__exit__(None, None, None)


def test_unknown_delegate_name() -> None:
    with pytest.raises(ValueError) as info:
        tfedge.Interpreter(MODELS / "add.tflite", delegates=["xnnpak"])
    assert str(info.value) == (
        "Unknown delegate 'xnnpak'. Available: 'xnnpack', 'gpu', 'edgetpu', 'none', "
        "or the path of a delegate library (optionally as (path, {options}))."
    )


def test_xnnpack_takes_no_options() -> None:
    with pytest.raises(ValueError, match=r"^Delegate 'xnnpack' takes no options"):
        tfedge.Interpreter(MODELS / "add.tflite", delegates=[("xnnpack", {"threads": 2})])


# -- the CLI ---------------------------------------------------------------------------


def test_cli_info_shows_placement(testdelegate: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(MODELS / "add.tflite"), "--delegate", testdelegate, "--delegate", "xnnpack", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["delegates"] == {testdelegate: 0, "xnnpack": 2, "cpu": 0}
    assert main(["info", str(MODELS / "add.tflite"), "--delegate", "none"]) == 0
    assert "placement  cpu: 2 nodes\n" in capsys.readouterr().out


def test_cli_info_missing_delegate_warns_on_stderr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "libnothere.so")
    assert main(["info", str(MODELS / "add.tflite"), "--delegate", missing]) == 0
    captured = capsys.readouterr()
    assert "placement  xnnpack: 2 nodes, cpu: 0 nodes\n" in captured.out
    # One line a user reads, not Python's "file:line: Category: ..." with a source line.
    assert captured.err.startswith(f"tfedge: warning: Delegate '{missing}' skipped: ")
    assert captured.err.endswith("Falling back to the CPU.\n")
    assert captured.err.count("\n") == 1


def test_cli_strict_delegate_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "libnothere.so")
    assert main(["info", str(MODELS / "add.tflite"), "--delegate", missing, "--strict"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tfedge: error: Delegate '{missing}' cannot be used: ")
    assert err.count("\n") == 1


def test_experimental_delegates_go_first(testdelegate: str, backend: str, tmp_path: Path) -> None:
    # Drop-in use: a delegate object from the backend's own load_delegate.
    record = tmp_path / "options.txt"
    loaded = _backend.get_backend(backend).load_delegate(testdelegate, {"record": str(record)})
    interp = tfedge.Interpreter(MODELS / "add.tflite", backend=backend, experimental_delegates=[loaded])
    assert interp.delegates_used == (testdelegate, "xnnpack")
    assert interp.placement == {testdelegate: 0, "xnnpack": 2, "cpu": 0}
    assert record.read_text() == f"record={record}\n--\n"


def test_delegate_spec_and_single_entry(testdelegate: str, backend: str) -> None:
    spec = tfedge.DelegateSpec(tfedge.delegates.DelegateKind.EXTERNAL, library=testdelegate,
                               options=(("mode", "accept_none"),))
    assert tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates=spec).delegates_used == (testdelegate, "xnnpack")
    assert tfedge.Interpreter(MODELS / "add.tflite", backend=backend, delegates="none").placement == {"cpu": 2}
