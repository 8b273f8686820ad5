"""The runtime's core on the classes of model that broke it: free dimensions, a schema newer
than the backend, signature order against subgraph order, a bound ``run``, and the rule
that only ``tfedge/backends/`` touches a backend's private parts."""

from __future__ import annotations

import ast
import gc
import warnings
from pathlib import Path

import numpy as np
import pytest
from support import BACKENDS, MODELS

import tfedge
from tfedge import InputError, ModelError, _backend
from tfedge.cli import main as cli_main
from tfedge.delegates import DelegateFallbackWarning

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "data" / "runtime-cases"
FREE = CASES / "free_length_conv.tflite"
BLOCKWISE = CASES / "fc_blockwise_quantized.tflite"


def _raw(backend: str, model: Path):  # type: ignore[no-untyped-def]
    return _backend.get_backend(backend).interpreter_class(model_path=str(model), num_threads=1)


def _raw_run_resized(backend: str, model: Path, x: np.ndarray) -> np.ndarray:
    """What the raw backend gives after resize_tensor_input / allocate_tensors / set / invoke."""
    raw = _raw(backend, model)
    (inp,) = raw.get_input_details()
    raw.resize_tensor_input(inp["index"], list(x.shape))
    raw.allocate_tensors()
    raw.set_tensor(inp["index"], x)
    raw.invoke()
    return raw.get_tensor(raw.get_output_details()[0]["index"])


# -- 1. free dimensions -------------------------------------------------------------


def test_free_length_model_cannot_allocate_its_placeholder_raw(backend: str) -> None:
    raw = _raw(backend, FREE)
    assert list(raw.get_input_details()[0]["shape_signature"]) == [-1, -1]
    with pytest.raises((RuntimeError, ValueError)):
        raw.allocate_tensors()  # [1, 1] is shorter than one frame: what made tfedge's load fail


def test_free_length_model_loads_and_runs_lengths_that_change(backend: str) -> None:
    interp = tfedge.Interpreter(FREE, backend=backend)
    assert interp.placement == {}  # delegates wait for the first real shape
    rng = np.random.default_rng(0)
    for n in (1280, 1760, 1280, 4000):
        x = rng.standard_normal((1, n)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DelegateFallbackWarning)
            (out,) = interp.run(x).values()
        assert out.shape == (1, 1, (n - 400) // 160 + 1, 8)
        np.testing.assert_array_equal(out, _raw_run_resized(backend, FREE, x))
    assert sum(interp.placement.values()) > 0


def test_free_length_model_drop_in_sequence(backend: str) -> None:
    interp = tfedge.Interpreter(FREE, backend=backend)
    x = np.ones((1, 1760), np.float32)
    (inp,) = interp.get_input_details()
    interp.resize_tensor_input(inp["index"], [1, 1760])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_array_equal(out, _raw_run_resized(backend, FREE, x))


def test_free_length_model_too_short_is_an_input_error(backend: str) -> None:
    interp = tfedge.Interpreter(FREE, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DelegateFallbackWarning)  # the input's fault, not XNNPACK's
        with pytest.raises(InputError) as info:
            interp.run(np.zeros((1, 10), np.float32))
        assert str(info.value).startswith("Input 'audio' could not be resized to (1, 10): ")
        assert "could not be loaded" not in str(info.value)
        (out,) = interp.run(np.zeros((1, 400), np.float32)).values()  # and it still runs
    assert out.shape == (1, 1, 1, 8)
    assert interp.delegates_used == ("xnnpack",)


def test_free_length_model_probes_and_checks(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check", str(FREE), "--backend", backend, "--no-cache"]) == 0
    assert "not run: its free input dimensions need a real shape" in capsys.readouterr().out


@pytest.mark.skipif("ai_edge_litert" not in BACKENDS, reason="needs ai_edge_litert")
def test_a_delegate_that_fails_after_a_resize_falls_back() -> None:
    # XNNPACK cannot reshape to an empty tensor: dynamic_shapes.tflite with a zero-size
    # input fails under it after the resize; the fallback rebuilds and retries on the CPU.
    interp = tfedge.Interpreter(MODELS / "dynamic_shapes.tflite", backend="ai_edge_litert")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 42, 1024)).astype(np.float32),
          rng.standard_normal((1, 90, 1024)).astype(np.float32), np.zeros((1, 1), np.float32)]
    with pytest.warns(DelegateFallbackWarning, match="^Delegate 'xnnpack' skipped: the model failed"):
        out = next(iter(interp.run(xs).values()))
    assert out.shape == (8, 0, 1024) and interp.delegates_used == ()


# -- 2. a schema newer than the backend ----------------------------------------------


def test_blockwise_quantization_is_refused_on_tflite_runtime() -> None:
    if "tflite_runtime" not in BACKENDS:
        pytest.skip("needs tflite_runtime")
    with pytest.raises(ModelError) as info:
        tfedge.Interpreter(BLOCKWISE, backend="tflite_runtime")
    version = _backend.get_backend("tflite_runtime").version
    assert str(info.value) == (
        f"Model file '{BLOCKWISE}' uses blockwise quantization, which tflite_runtime {version} does not "
        "implement (it would return wrong values or crash instead of refusing the model). Run it with "
        'ai_edge_litert: pip install "tfedge[litert]" (Python 3.10-3.14), or backend="ai_edge_litert".'
    )


@pytest.mark.skipif("ai_edge_litert" not in BACKENDS, reason="needs ai_edge_litert")
def test_blockwise_quantization_runs_on_ai_edge_litert() -> None:
    interp = tfedge.Interpreter(BLOCKWISE, backend="ai_edge_litert")
    (spec,) = interp.input_specs()
    x = np.random.default_rng(0).random(spec.shape).astype(np.float32)
    (out,) = interp.run(x).values()
    raw = _raw("ai_edge_litert", BLOCKWISE)
    raw.allocate_tensors()
    raw.set_tensor(raw.get_input_details()[0]["index"], x)
    raw.invoke()
    np.testing.assert_array_equal(out, raw.get_tensor(raw.get_output_details()[0]["index"]))
    assert np.abs(out).max() > 1  # real values, not the zeros tflite_runtime returns


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")
def test_automatic_choice_skips_a_backend_that_lacks_a_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    from tfedge.backends import _choose

    monkeypatch.setattr(_choose, "_AUTOMATIC", ("tflite_runtime", "ai_edge_litert"))
    assert tfedge.Interpreter(BLOCKWISE).backend == "ai_edge_litert"
    assert tfedge.Interpreter(MODELS / "add.tflite").backend == "tflite_runtime"
    monkeypatch.setattr(_choose, "_AUTOMATIC", ("tflite_runtime",))
    with pytest.raises(ModelError, match="uses blockwise quantization, which tflite_runtime"):
        tfedge.Interpreter(BLOCKWISE)


def test_newer_tensor_types_are_named() -> None:
    from dataclasses import replace

    from tfedge.verify import verify_model

    summary = replace(verify_model((MODELS / "add.tflite").read_bytes()), tensor_types=frozenset({0, 18, 20}))
    from tfedge.backends import tflite as tflite_module

    tflite = _backend.Backend("tflite_runtime", "2.14.0", object, print, None, np, schema=tflite_module.SCHEMA)
    assert _backend.unsupported_features(tflite, summary) == ["BFLOAT16 tensors", "UINT4 tensors"]
    litert = replace(tflite, name="ai_edge_litert", schema=None)
    assert _backend.unsupported_features(litert, summary) == []


# -- 3. one input order everywhere ---------------------------------------------------


def test_sequence_order_is_the_subgraph_order(backend: str) -> None:
    # reverse_signature_model: the signature lists x (tensor 1) before y (tensor 0); the
    # subgraph, and so get_input_details(), has y first.
    model = MODELS / "reverse_signature_model.tflite"
    interp = tfedge.Interpreter(model, backend=backend)
    details = interp.get_input_details()
    assert [s.index for s in interp.input_specs()] == [d["index"] for d in details]
    assert [s.name for s in interp.input_specs()] == ["y", "x"]
    rng = np.random.default_rng(0)
    arrays = [rng.random(d["shape"]).astype(d["dtype"]) for d in details]
    by_name = interp.run({"y": arrays[0], "x": arrays[1]})
    by_tensor = interp.run({d["name"]: a for d, a in zip(details, arrays)})
    for form in (arrays, tuple(arrays)):
        out = interp.run(form)
        for name in by_name:
            np.testing.assert_array_equal(out[name], by_name[name])
            np.testing.assert_array_equal(by_tensor[name], by_name[name])
    # The drop-in user's sequence: set_tensor in details order gives the same outputs.
    for d, a in zip(details, arrays):
        interp.set_tensor(d["index"], a)
    interp.invoke()
    runner = interp.get_signature_runner()
    ref = runner(y=arrays[0], x=arrays[1])
    for name in by_name:
        np.testing.assert_array_equal(by_name[name], ref[name])


def test_unknown_order_refuses_a_sequence() -> None:
    from tfedge.interpreter import TensorSpec, _arrange, _View

    spec = TensorSpec("a", "a", 0, (1,), (1,), np.dtype(np.float32), None)
    view = _View("other", 1, [spec, TensorSpec("b", "b", 1, (1,), (1,), np.dtype(np.float32), None)], [], False)
    with pytest.raises(InputError) as info:
        _arrange(view, [np.zeros(1), np.zeros(1)])
    assert str(info.value) == (
        "Signature 'other' takes 2 inputs ('a', 'b') whose order is unknown without verifying the model "
        "(verify=False). Pass a mapping by name."
    )
    assert _arrange(view, {"b": 2, "a": 1}) == [1, 2]


def test_cli_run_takes_tensor_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = MODELS / "reverse_signature_model.tflite"
    interp = tfedge.Interpreter(model)
    details = interp.get_input_details()
    arrays = [np.full(d["shape"], i + 1, d["dtype"]) for i, d in enumerate(details)]
    args = []
    for d, a in zip(details, arrays):
        np.save(tmp_path / f"{d['index']}.npy", a)
        args += ["--input", f"{d['name']}={tmp_path / (str(d['index']) + '.npy')}"]
    out = tmp_path / "out.npz"
    assert cli_main(["run", str(model), *args, "--output", str(out)]) == 0
    with np.load(out) as got:
        want = interp.run(arrays)
        assert sorted(got.files) == sorted(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    # A name and its tensor name for the same input is one input given twice.
    first = f"{details[0]['name']}={tmp_path / (str(details[0]['index']) + '.npy')}"
    again = f"{interp.input_specs()[0].name}={tmp_path / (str(details[0]['index']) + '.npy')}"
    assert cli_main(["run", str(model), "--input", first, "--input", again, "--random"]) == 1
    assert "given twice" in capsys.readouterr().err


# -- 4. a bound run keeps its Interpreter --------------------------------------------


def test_bound_run_keeps_its_interpreter(backend: str) -> None:
    predict = tfedge.Interpreter(MODELS / "add.tflite", backend=backend).run
    gc.collect()
    x = np.ones((1, 8, 8, 3), np.float32)
    for form in (x, [x], {"a": x}):
        np.testing.assert_array_equal(predict(form)["x"], 3 * x)


# -- the structure -------------------------------------------------------------------

_PRIVATE = {"_interpreter", "_get_tensor_details", "_get_full_signature_list", "_delegates",
            "_get_native_delegate_pointer", "_interpreter_wrapper", "_ensure_safe", "_safe_to_run"}


def test_only_the_backend_adapter_touches_backend_private_parts() -> None:
    offenders = []
    for folder in ("tfedge", "converters", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.parent == REPO / "tfedge" / "backends":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr in _PRIVATE:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    build = REPO / "build_native.py"
    for node in ast.walk(ast.parse(build.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in _PRIVATE:
            offenders.append(f"build_native.py:{node.lineno} .{node.attr}")
    assert offenders == []
    # ... and the check itself would see one.
    tree = ast.parse("raw._interpreter.Invoke()")
    assert any(isinstance(n, ast.Attribute) and n.attr in _PRIVATE for n in ast.walk(tree))


def test_one_probe_one_timeout_one_first_line() -> None:
    sources = {p: p.read_text() for p in (REPO / "tfedge").glob("*.py")}
    sources.update({p: p.read_text() for p in (REPO / "converters").glob("*.py")})
    assert not (REPO / "converters" / "_probe.py").exists()
    copies = [str(p.relative_to(REPO)) for p, text in sources.items() if "def _first_line" in text]
    assert copies == []
    timeouts = sorted(str(p.relative_to(REPO)) for p, text in sources.items() if "TIMEOUT = " in text)
    assert timeouts == ["tfedge/isolate.py"]


def test_quiet_drops_only_the_load_line(backend: str) -> None:
    import subprocess
    import sys

    code = (f"import sys, tfedge; tfedge.Interpreter({str(MODELS / 'add.tflite')!r}, backend={backend!r}, "
            "quiet=sys.argv[1] == 'quiet'); sys.stderr.write('after\\n')")
    env = {"PATH": "/usr/bin:/bin"}
    loud, quiet = (subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, env=env,
                                  timeout=120, check=True).stderr.splitlines() for mode in ("loud", "quiet"))
    assert loud == ["INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", "after"]
    assert quiet == ["after"]


def test_cli_random_on_free_dimensions_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", str(FREE), "--random"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tfedge: error: Input 'audio' could not be resized to (1, 1): ")
    assert err.endswith("(--random gives each free dimension of 'audio' the size 1; pass --input NAME=FILE.npy "
                        "with a shape the model takes.)")
    # bench makes random inputs the same way, and says so too (it said nothing more).
    assert cli_main(["bench", str(FREE), "--runs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tfedge: error: Input 'audio' could not be resized to (1, 1): ")
    assert err.endswith("(bench's random inputs give each free dimension of 'audio' the size 1; pass --input "
                        "NAME=FILE.npy with a shape the model takes.)")


def test_install_hint_names_python_3_14_among_litert_s(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform
    import sys

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(sys, "version_info", (3, 14, 0))  # ai-edge-litert publishes cp314 wheels
    assert _backend._install_hint() == (
        'Install one: pip install "tfedge[litert]" (Python 3.10-3.14), or "tfedge[tflite]" (Python 3.8-3.11).'
    )


def test_interpreter_class_stays_small_and_names_no_backend() -> None:
    # The call by name stays readable: the drop-in API lives in _dropin.py, the fallback
    # cycle in _session.py, and backends only under tfedge/backends/.
    tree = ast.parse((REPO / "tfedge" / "interpreter.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Interpreter"]
    assert cls.end_lineno is not None and cls.end_lineno - cls.lineno + 1 < 300
    backend_modules = {"ai_edge_litert", "tflite_runtime", "tensorflow"}
    imports = []
    for path in sorted((REPO / "tfedge").rglob("*.py")):
        if path.parent.name == "backends":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            imports += [f"{path.name}: {n}" for n in names if n.split(".")[0] in backend_modules]
    assert imports == []
