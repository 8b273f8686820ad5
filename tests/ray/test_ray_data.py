"""tfedge.ray on a real local Ray cluster (2 CPUs): Predictor in map_batches, predict(), failures.

Runs only where ``tfedge[ray]`` is installed (its own venv: Ray brings numpy 2, which the
main venv's tflite-runtime cannot take); elsewhere the module is skipped. Every test that
runs a pipeline is bounded by an alarm, so a hang fails instead of stalling CI.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "ray.data", reason="Ray Data is not installed: these tests run in a venv made with pip install '.[ray]'"
)
import ray  # noqa: E402 - after the skip
import ray.cloudpickle  # noqa: E402

import tfedge  # noqa: E402
import tfedge.ray  # noqa: E402
from support import model_path  # noqa: E402

# Ray Data's own DataContext warns about its deprecated fields whenever it is copied.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

REPO = Path(__file__).resolve().parents[2]
ADD = model_path("add.tflite")  # (1, 8, 8, 3) float32 -> x = 3 * a
ROWS = 3000
#: Seconds any one test may take before the alarm fails it (the module runs in about a minute).
TEST_TIMEOUT = 120


class _Traced(tfedge.ray.Predictor):
    """A Predictor that also reports which actor ran each row and with how many threads."""

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        out = super().__call__(batch)
        n = len(out["x"])
        out["pid"] = np.full(n, os.getpid())
        out["threads"] = np.full(n, self.interpreter.num_threads)
        return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray cluster of 2 CPUs for the whole module, without dashboard or log streaming."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.wait_for_min_actors_s = 60  # an actor pool that cannot start fails instead of waiting forever
    # This module is not importable inside the workers: ship _Traced by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _alarm() -> Iterator[None]:
    """Fail a test that runs longer than TEST_TIMEOUT seconds."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the test took more than {TEST_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _rows(n: int, shape: tuple[int, ...] = (8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)


def _by_id(rows: list[dict[str, Any]], column: str) -> np.ndarray:
    return np.stack([r[column] for r in sorted(rows, key=lambda r: r["id"])])


def _plain_loop(model: Any, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    """The reference: one Interpreter, one row at a time."""
    interp = tfedge.Interpreter(model)
    n = len(next(iter(inputs.values())))
    return np.stack([interp.run({k: v[i : i + 1] for k, v in inputs.items()})[output][0] for i in range(n)])


# -- on the cluster --------------------------------------------------------------


def test_map_batches_with_two_actors_matches_a_plain_loop(cluster: None) -> None:
    x = _rows(ROWS)
    ds = ray.data.from_items([{"id": i, "a": x[i]} for i in range(ROWS)])
    out = ds.map_batches(
        _Traced,
        fn_constructor_kwargs={"model": str(ADD), "keep": ["id"]},
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=1,
        batch_size=100,
    ).take_all()
    assert sorted(r["id"] for r in out) == list(range(ROWS))
    expected = _plain_loop(ADD, {"a": x}, "x")
    np.testing.assert_array_equal(_by_id(out, "x"), expected)
    np.testing.assert_array_equal(expected, 3 * x)  # the model is what we think it is
    assert len({r["pid"] for r in out}) == 2, "both actors ran batches"
    assert {r["threads"] for r in out} == {1}, "num_cpus=1: one kernel thread per actor"


def test_num_threads_follows_the_cpus_ray_reserves(cluster: None) -> None:
    ds = ray.data.from_items([{"id": i, "a": row} for i, row in enumerate(_rows(50))])
    out = ds.map_batches(
        _Traced, fn_constructor_kwargs={"model": str(ADD), "keep": ["id"]},
        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=2,
    ).take_all()
    assert {r["threads"] for r in out} == {2}


def test_predict_quantized_model_from_bytes_with_pyarrow_batches(cluster: None) -> None:
    model = model_path("add_quantized.tflite").read_bytes()  # uint8 in and out: floats are quantized
    x = np.random.default_rng(1).uniform(0, 80, (400, 8, 8, 3)).astype(np.float32)
    ds = ray.data.from_items([{"id": i, "input": x[i]} for i in range(len(x))])
    out = tfedge.ray.predict(ds, model, actors=2, batch_size=64, keep=["id"], batch_format="pyarrow").take_all()
    np.testing.assert_array_equal(_by_id(out, "output"), _plain_loop(model, {"input": x}, "output"))


def test_predict_multi_input_by_name_and_mapping_with_pandas_batches(cluster: None) -> None:
    model = model_path("multi_add.tflite")  # a, b, c, d -> x = a + b + c, y = b + c + d
    rng = np.random.default_rng(2)
    data = {k: rng.standard_normal((300, 8, 8, 3)).astype(np.float32) for k in "abcd"}
    ds = ray.data.from_items(
        [{"id": i, "first": data["a"][i], **{k: data[k][i] for k in "bcd"}} for i in range(300)]
    )
    out = tfedge.ray.predict(
        ds, model, actors=1, columns={"first": "a"}, outputs={"y": "score"}, keep=["id"], batch_format="pandas"
    ).take_all()
    assert set(out[0]) == {"id", "score"}
    np.testing.assert_array_equal(_by_id(out, "score"), _plain_loop(model, data, "y"))


def test_predict_takes_a_numpy_array_as_its_single_column(cluster: None) -> None:
    x = _rows(64)
    out = tfedge.ray.predict(x, ADD, actors=1).take_all()  # ray.data.from_numpy: column "data"
    assert sorted(map(tuple, np.stack([r["x"] for r in out]).reshape(64, -1))) == sorted(
        map(tuple, (3 * x).reshape(64, -1))
    )


def test_corrupt_model_fails_the_actor_at_start_with_the_model_error(cluster: None) -> None:
    broken = ADD.read_bytes()[:200]
    with pytest.raises(tfedge.ModelError) as local:
        tfedge.Interpreter(broken)
    expected = str(local.value).splitlines()[0]
    assert expected.startswith("The model: ")
    ds = ray.data.from_items([{"a": row} for row in _rows(10)])
    with pytest.raises(ray.exceptions.RayError) as raised:
        ds.map_batches(
            tfedge.ray.Predictor, fn_constructor_kwargs={"model": broken},
            compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1,
        ).take_all()
    assert expected in str(raised.value)
    assert isinstance(raised.value, ray.exceptions.RayActorError)


def test_bad_row_fails_with_its_index_and_the_input_error(cluster: None) -> None:
    items = [{"id": i, "a": row} for i, row in enumerate(_rows(2000))]
    items[1234]["a"] = np.zeros((8, 8, 4), np.float32)
    ds = ray.data.from_items(items)
    with pytest.raises(ray.exceptions.RayTaskError) as raised:
        tfedge.ray.predict(ds, ADD, actors=2, batch_size=100, keep=["id"]).take_all()
    match = re.search(r"InputError: Row (\d+) of this batch \(id=1234\): (.*)", str(raised.value))
    assert match, str(raised.value)[-2000:]
    assert match.group(2) == "Input 'a' expects shape (1, 8, 8, 3) float32, got (1, 8, 8, 4) float32."
    assert 0 <= int(match.group(1)) < 100


def test_a_ray_dataset_is_evaluation_data_for_the_converters(cluster: None) -> None:
    from tfedge.converters.calibration import load_samples
    from tfedge.converters.sources import InputSpec
    from tfedge.errors import ConversionError

    x = _rows(40)
    spec = InputSpec("image", (None, 8, 8, 3), np.dtype(np.float32))
    ds = ray.data.from_items([{"image": x[i], "id": i} for i in range(40)])
    samples = load_samples(ds, [spec], limit=25, what="Evaluation data")
    assert samples.origin == "a Ray Dataset"
    np.testing.assert_array_equal(samples.arrays["image"], x[:25])
    only = load_samples(ray.data.from_numpy(x), [spec], limit=100, what="Evaluation data")  # one column "data"
    np.testing.assert_array_equal(only.arrays["image"], x)
    with pytest.raises(ConversionError) as raised:
        load_samples(ds.rename_columns({"image": "pixels"}), [spec], limit=5, what="Evaluation data")
    assert str(raised.value) == (
        "Evaluation data: the Ray Dataset has columns 'pixels', 'id'; the model takes 'image'. "
        "Rename the columns like the inputs (ds.rename_columns({...}))."
    )


# -- one Predictor in this process (what each actor does with a batch) -------------


def test_rows_may_carry_the_batch_axis_and_a_lone_column_feeds_a_lone_input() -> None:
    x = _rows(5)
    predictor = tfedge.ray.Predictor(ADD, keep=["path"])
    paths = np.array([f"{i}.npy" for i in range(5)])
    for column in (x, x[:, None]):  # (N, 8, 8, 3) and (N, 1, 8, 8, 3)
        out = predictor({"pixels": column, "path": paths})
        assert list(out) == ["x", "path"]
        np.testing.assert_array_equal(out["x"], 3 * x)
        assert out["path"] is paths


def test_an_empty_batch_gives_empty_columns_of_the_output_types() -> None:
    out = tfedge.ray.Predictor(model_path("add_quantized.tflite"), keep=["id"])(
        {"input": np.zeros((0, 8, 8, 3), np.float32), "id": np.zeros(0, np.int64)}
    )
    assert {k: (v.shape, v.dtype.name) for k, v in out.items()} == {
        "output": ((0, 8, 8, 3), "float32"),  # dequantized, as run() returns it
        "id": ((0,), "int64"),
    }


def test_bad_row_in_a_batch_names_the_row_and_kept_columns() -> None:
    column = np.empty(6, dtype=object)
    for i in range(6):
        column[i] = np.zeros((8, 8, 3), np.float32)
    column[3] = np.zeros((8, 8, 2), np.float32)
    predictor = tfedge.ray.Predictor(ADD, keep=["id", "path"])
    batch = {"a": column, "id": np.arange(10, 16), "path": np.array([f"img{i}.png" for i in range(6)])}
    with pytest.raises(tfedge.InputError) as raised:
        predictor(batch)
    assert str(raised.value) == (
        "Row 3 of this batch (id=13, path='img3.png'): "
        "Input 'a' expects shape (1, 8, 8, 3) float32, got (1, 8, 8, 2) float32."
    )
    with pytest.raises(tfedge.InputError) as raised:  # every row wrong: the first is named
        predictor({"a": np.zeros((4, 8, 8, 4), np.float32), "id": np.arange(4), "path": batch["path"][:4]})
    assert str(raised.value).startswith("Row 0 of this batch (id=0, path='img0.png'): Input 'a' expects shape")


def test_column_errors_list_what_there_is() -> None:
    multi = tfedge.ray.Predictor(model_path("multi_add.tflite"))
    with pytest.raises(tfedge.InputError) as raised:
        multi({"a": np.zeros((2, 8, 8, 3), np.float32), "b": np.zeros((2, 8, 8, 3), np.float32)})
    assert str(raised.value) == (
        "No column for input(s) 'c', 'd'; the batch has columns 'a', 'b'. "
        "Name the columns like the inputs, or map them: columns={'column': 'input'}."
    )
    add = tfedge.ray.Predictor(ADD)
    with pytest.raises(tfedge.InputError, match=r"^No column for input\(s\) 'a'; the batch has columns 'p', 'q'\."):
        add({"p": np.zeros((1, 8, 8, 3)), "q": np.zeros((1, 8, 8, 3))})
    with pytest.raises(tfedge.InputError, match=r"^No column 'id' to keep in the batch\. Columns: 'a'\.$"):
        tfedge.ray.Predictor(ADD, keep=["id"])({"a": np.zeros((1, 8, 8, 3), np.float32)})
    with pytest.raises(ValueError, match=r"^columns maps 'p' to unknown input 'z'\. Inputs: 'a'\.$"):
        tfedge.ray.Predictor(ADD, columns={"p": "z"})
    with pytest.raises(ValueError, match=r"^Unknown output 'y'\. Outputs: 'x'\.$"):
        tfedge.ray.Predictor(ADD, outputs=["y"])
    with pytest.raises(ValueError, match=r"^Kept column\(s\) 'x' have the name of an output\."):
        tfedge.ray.Predictor(ADD, keep=["x"])
    with pytest.raises(ValueError, match=r"^keep must be a list of column names, got the string 'id'"):
        tfedge.ray.Predictor(ADD, keep="id")


def test_interpreter_options_reach_the_actors_interpreter() -> None:
    predictor = tfedge.ray.Predictor(ADD, num_threads=3, delegates=["none"])
    assert (predictor.interpreter.num_threads, predictor.interpreter.delegates_used) == (3, ())
    assert tfedge.ray.Predictor(ADD).interpreter.delegates_used == ("xnnpack",)


def test_tensor_names_feed_inputs_too() -> None:
    predictor = tfedge.ray.Predictor(ADD)  # input 'a' is the tensor 'input'
    x = _rows(3)
    np.testing.assert_array_equal(predictor({"input": x, "other": x})["x"], 3 * x)


def test_models_that_cannot_take_rows_and_unknown_embedded_models() -> None:
    with pytest.raises(tfedge.ModelError) as raised:
        tfedge.ray.Predictor(model_path("dynamic_shapes.tflite"))
    assert str(raised.value) == (
        "Input 'x' has a fixed batch of 8 ((8, 42, 1024) float32): rows cannot be batched into it. "
        "Convert the model with batch 1 or a free batch dimension."
    )
    with pytest.raises(tfedge.ModelError, match=r"^No embedded model 'detector'\. Available: none"):
        tfedge.ray.Predictor("embedded:detector")
    # A model that keeps state between calls would make each row's outputs depend on the rows before it.
    with pytest.raises(tfedge.ModelError, match=r"lstm\.tflite' keeps state from one call to the next \(LSTM\): rows"):
        tfedge.ray.Predictor(model_path("lstm.tflite"))


def test_predict_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"^actors must be a whole number >= 1, a \(min, max\) pair"):
        tfedge.ray.predict(_rows(2), ADD, actors=(3, 1))
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number >= 1, got 0\.$"):
        tfedge.ray.predict(_rows(2), ADD, batch_size=0)
    with pytest.raises(TypeError, match=r"^dataset must be a ray.data.Dataset or a numpy array, got list\.$"):
        tfedge.ray.predict([1, 2], ADD)


def test_import_tfedge_never_imports_ray() -> None:
    code = f"""
        import sys
        import numpy as np
        import tfedge, tfedge.cli
        tfedge.Interpreter({str(ADD)!r}).run(np.zeros((1, 8, 8, 3), np.float32))
        print(sorted(m for m in sys.modules if m.split(".")[0] == "ray"))
        import tfedge.ray
        print("ray" in sys.modules)
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "True"]
