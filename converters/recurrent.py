"""Recurrent models (LSTM, GRU, SimpleRNN, Bidirectional): what stops TFLiteConverter, and the fix.

Keras traces a recurrent layer into a ``while`` loop over TensorLists whose element shape
is ``(batch, units)``. With a free batch dimension that shape is not static, and the
converter refuses it (``'tf.TensorListReserve' op requires element_shape to be static``).
A static batch fixes it: sources that can be traced again (Keras files and models,
``tf.function``) are re-traced with the batch fixed; a SavedModel, whose graph is frozen,
gets the free batch dimension of its TensorList element shapes set in the graph itself.

int8 and int16x8 need more: TensorFlow's calibrator crashes on the loop (SIGSEGV), and
litert-quantizer cannot calibrate it either. A Keras source is unrolled by Keras
(:func:`unrolled_copy`); a SavedModel's graph is unrolled here (:func:`unroll_while_loops`):
each loop's body is inlined once per time step, which a static sequence length fixes.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from tfedge.errors import ConversionError

from .report import OpUse

__all__ = [
    "FUSED_SEQUENCE_OPS",
    "RECURRENT_LOOP_OPS",
    "is_dynamic_tensor_list_error",
    "layer_of_error",
    "patch_tensor_list_batch",
    "recurrent_summary",
    "unroll_while_loops",
]

#: TFLite's fused recurrent kernels.
FUSED_SEQUENCE_OPS = (
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "BIDIRECTIONAL_SEQUENCE_RNN",
)
#: Ops a recurrent layer lowers to when no fused kernel takes it.
RECURRENT_LOOP_OPS = ("WHILE",)

_TENSOR_LIST_OPS = ("TensorListReserve", "TensorListFromTensor", "TensorListStack", "TensorListGetItem", "TensorListSetItem")
_STATIC_SHAPE = re.compile(r"TensorList\w*' op requires element_shape to be static")
#: ``functional_4_1/lstm_1/TensorArrayV2_1@...``: the layer is the path part before TensorArray.
_LAYER = re.compile(r"\"TensorList\w+:\", \"([^\"@]+?)/(?:while/)?TensorArray")


def is_dynamic_tensor_list_error(text: str) -> bool:
    """True when the converter failed on a TensorList without a static element shape."""
    return bool(_STATIC_SHAPE.search(text))


def layer_of_error(text: str) -> Optional[str]:
    """The Keras layer (``lstm_1``, ``bidirectional/forward_lstm``) a converter error points at."""
    match = _LAYER.search(text)
    if not match:
        return None
    parts = match.group(1).split("/")
    # Drop the model's own scope (functional_1, sequential_2) when a layer follows it.
    if len(parts) > 1 and re.match(r"(functional|sequential|model)(_\d+)*$", parts[0]):
        parts = parts[1:]
    return "/".join(parts)


def patch_tensor_list_batch(saved_model_dir: str, batch: int) -> Optional[tempfile.TemporaryDirectory[str]]:
    """A copy of a SavedModel whose TensorList element shapes have ``batch`` for a free first dim.

    Only the graph (``saved_model.pb``) is rewritten; the variables are linked, not copied.
    Returns None when the graph has no such element shape (nothing to patch).
    """
    from tensorflow.python.framework import tensor_util

    model = _read_graph(saved_model_dir)
    patched = 0
    for meta in model.meta_graphs:
        graphs = [meta.graph_def.node] + [fn.node_def for fn in meta.graph_def.library.function]
        for nodes in graphs:
            consts = {n.name: n for n in nodes if n.op == "Const"}
            for node in nodes:
                if node.op not in _TENSOR_LIST_OPS:
                    continue
                for ref in node.input:
                    const = consts.get(ref.split(":")[0])
                    if const is None or not const.name.endswith("element_shape"):
                        continue
                    value = tensor_util.MakeNdarray(const.attr["value"].tensor)
                    if value.ndim == 1 and value.size >= 2 and value[0] == -1 and (value[1:] >= 0).all():
                        value = value.copy()
                        value[0] = batch
                        const.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))
                        patched += 1
    if not patched:
        return None
    return _rewritten_copy(saved_model_dir, model, "tfedge-batch-")


def _read_graph(saved_model_dir: str) -> Any:
    """The SavedModel proto of ``saved_model_dir`` (its ``saved_model.pb``)."""
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read())


def _rewritten_copy(saved_model_dir: str, model: Any, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary SavedModel: the rewritten graph ``model``, the variables and assets linked, not copied."""
    temp = tempfile.TemporaryDirectory(prefix=prefix)
    for name in os.listdir(saved_model_dir):
        if name != "saved_model.pb":
            os.symlink(os.path.join(os.path.abspath(saved_model_dir), name), os.path.join(temp.name, name))
    with open(os.path.join(temp.name, "saved_model.pb"), "wb") as f:
        f.write(model.SerializeToString())
    return temp


def recurrent_summary(operators: Sequence[OpUse]) -> Optional[str]:
    """How the converted model runs its recurrent layers, or None when it has none."""
    names = {o.name: o.count for o in operators}
    fused = [f"{n} x{names[n]}" for n in FUSED_SEQUENCE_OPS if n in names]
    if fused:
        return f"fused TFLite sequence ops: {', '.join(fused)}"
    if "WHILE" in names:
        return (
            f"WHILE loop x{names['WHILE']} (builtin ops, no Select TF; Keras 3 recurrent layers carry no "
            "TFLite fusion annotation, so no fused UNIDIRECTIONAL_SEQUENCE_LSTM is made)"
        )
    return None


def keras_layer_names(model: Any) -> dict[str, str]:
    """``{layer name: class name}`` of a Keras model's recurrent layers (for messages)."""
    found = {}
    for layer in getattr(model, "layers", ()):
        cls = type(layer).__name__
        if cls in ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D"):
            found[layer.name] = cls
    return found


_RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN", "RNN")


def unrolled_copy(model: Any) -> tuple[Any, list[str]]:
    """A copy of a Keras model with every recurrent layer ``unroll=True``, same weights; and their names."""
    import keras

    names: list[str] = []

    def unroll(config: dict[str, Any]) -> dict[str, Any]:
        config = dict(config)
        if "unroll" in config:
            config["unroll"] = True
        for key in ("layer", "backward_layer"):
            inner = config.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
                config[key] = {**inner, "config": unroll(inner["config"])}
        return config

    def clone(layer: Any) -> Any:
        if type(layer).__name__ in _RNN_CLASSES + ("Bidirectional",):
            names.append(f"{layer.name} ({type(layer).__name__})")
            return type(layer).from_config(unroll(layer.get_config()))
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy, names


def has_while_loop(saved_model_dir: str) -> bool:
    """True when the SavedModel's graph has a while loop over TensorLists (a recurrent layer)."""
    model = _read_graph(saved_model_dir)
    for meta in model.meta_graphs:
        for fn in meta.graph_def.library.function:
            if any(n.op in ("While", "StatelessWhile") for n in fn.node_def) and any(
                n.op.startswith("TensorList") for n in fn.node_def
            ):
                return True
    return False


#: Time steps above which a loop is not unrolled (the graph grows by one loop body per step).
MAX_UNROLLED_STEPS = 1000
_WHILE_OPS = ("While", "StatelessWhile")


def unroll_while_loops(saved_model_dir: str, label: str) -> Optional[tuple[tempfile.TemporaryDirectory[str], list[str]]]:
    """A copy of a SavedModel whose while loops are unrolled: each body inlined once per iteration.

    A loop is unrolled when its ``maximum_iterations`` (``tf.while_loop``'s, which Keras sets
    to the sequence length) is a constant of the graph; the iterations' outputs replace the
    loop's. Only ``saved_model.pb`` is rewritten; the variables are linked. The caller checks
    the copy against the original, since a loop whose own condition stops it earlier would
    differ. Returns None when the graph has no while loop, else the copy and ``name (N steps)``
    for each loop.

    Raises:
        ConversionError: a loop has no constant number of iterations, or too many.
    """
    model = _read_graph(saved_model_dir)
    unrolled: list[str] = []
    for meta in model.meta_graphs:
        library = {fn.signature.name: fn for fn in meta.graph_def.library.function}
        for fn in meta.graph_def.library.function:
            for _ in range(8):  # a loop inside a loop body is inlined with it, then unrolled on the next pass
                if not any(n.op in _WHILE_OPS for n in fn.node_def):
                    break
                unrolled += _unroll_function(fn, library, label)
    if not unrolled:
        return None
    return _rewritten_copy(saved_model_dir, model, "tfedge-unrolled-"), unrolled


def _unroll_function(fn: Any, library: dict[str, Any], label: str) -> list[str]:
    """Replace the while loops of one FunctionDef by their inlined iterations; their descriptions."""
    nodes = {n.name: n for n in fn.node_def}
    new: list[Any] = []
    renamed: dict[str, str] = {}  # references to a loop's outputs -> the last iteration's values
    done = []
    for node in fn.node_def:
        if node.op not in _WHILE_OPS:
            new.append(node)
            continue
        steps = _constant(nodes, node.input[1])  # while_v2's loop vars: counter, maximum_iterations, ...
        short = node.name.replace("/while", "")
        if steps is None or np.ndim(steps) != 0 or int(steps) < 0:
            raise ConversionError(
                f"{label}: the loop of {short!r} has no fixed number of steps (its sequence length is free), so it "
                "cannot be unrolled to calibrate. Export the model with a fixed sequence length "
                "(keras.Input((STEPS, FEATURES))), or use --quantize dynamic or float16."
            )
        if int(steps) > MAX_UNROLLED_STEPS:
            raise ConversionError(
                f"{label}: the loop of {short!r} runs {int(steps)} steps, more than the {MAX_UNROLLED_STEPS} tfedge "
                "unrolls to calibrate. Use --quantize dynamic or float16."
            )
        body, values = _inline_iterations(node, library[node.attr["body"].func.name], int(steps))
        new.extend(body)
        for j, value in enumerate(values):
            renamed[f"{node.name}:output:{j}"] = value
        renamed["^" + node.name] = "^" + values[0].lstrip("^").split(":")[0]
        done.append(f"{short} ({int(steps)} steps)")

    def resolve(name: str) -> str:
        while name in renamed:  # a loop fed by another loop: follow to the last iteration
            name = renamed[name]
        return name

    for node in new:
        inputs = [resolve(i) for i in node.input]
        del node.input[:]
        node.input.extend(inputs)
    for key in list(fn.ret):
        fn.ret[key] = resolve(fn.ret[key])
    gone = {k for k, v in fn.control_ret.items() if "^" + v in renamed}
    for key in gone:
        del fn.control_ret[key]
    kept = [c for c in fn.signature.control_output if c not in gone]
    del fn.signature.control_output[:]
    fn.signature.control_output.extend(kept)
    del fn.node_def[:]
    fn.node_def.extend(new)
    return done


def _inline_iterations(loop: Any, body: Any, steps: int) -> tuple[list[Any], list[str]]:
    """``steps`` copies of the loop body, each fed the previous one's outputs; (nodes, final values)."""
    from tensorflow.core.framework import node_def_pb2

    args = [a.name for a in body.signature.input_arg]
    values = [i for i in loop.input if not i.startswith("^")]
    control = [i for i in loop.input if i.startswith("^")]
    out = []
    for step in range(steps):
        prefix = f"{loop.name}/unrolled_{step}/"
        feed = dict(zip(args, values))

        def ref(name: str, prefix: str = prefix, feed: dict[str, str] = feed) -> str:
            if name.startswith("^"):
                if name[1:] in feed:
                    return "^" + feed[name[1:]].lstrip("^").split(":")[0]
                return "^" + prefix + name[1:]
            head = name.split(":")[0]
            if head in feed and name in (head, head + ":0"):
                return feed[head]
            return prefix + name

        for node in body.node_def:
            copy = node_def_pb2.NodeDef()
            copy.CopyFrom(node)
            copy.name = prefix + node.name
            del copy.input[:]
            copy.input.extend(ref(i) for i in node.input)
            if step == 0 and all(i.startswith("^") for i in node.input):
                copy.input.extend(control)  # the loop's control inputs hold for the first iteration
            out.append(copy)
        values = [ref(body.ret[a.name]) for a in body.signature.output_arg]
    return out, values


def _constant(nodes: dict[str, Any], ref: str) -> Optional[np.ndarray]:
    """The value of a function's tensor when it follows from constants alone (the few ops Keras uses)."""
    from tensorflow.python.framework import tensor_util

    node = nodes.get(ref.split(":")[0])
    if node is None:
        return None  # a function argument: not constant
    found = [_constant(nodes, i) for i in node.input if not i.startswith("^")]
    inputs = [v for v in found if v is not None]
    if len(inputs) < len(found):
        return None
    if node.op == "Const":
        return np.asarray(tensor_util.MakeNdarray(node.attr["value"].tensor))
    if node.op == "Identity":
        return inputs[0]
    if node.op == "Range":
        return np.arange(inputs[0], inputs[1], inputs[2])
    if node.op in ("Max", "Min"):
        axes: Any = tuple(np.atleast_1d(inputs[1]).tolist()) if inputs[0].ndim else None
        return np.asarray(np.max(inputs[0], axis=axes) if node.op == "Max" else np.min(inputs[0], axis=axes))
    return None
