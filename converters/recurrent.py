"""Recurrent models (LSTM, GRU, SimpleRNN, Bidirectional): what stops TFLiteConverter, and the fix.

Keras traces a recurrent layer into a ``while`` loop over TensorLists whose element shape
is ``(batch, units)``. With a free batch dimension that shape is not static, and the
converter refuses it (``'tf.TensorListReserve' op requires element_shape to be static``).
A static batch fixes it: sources that can be traced again (Keras files and models,
``tf.function``) are re-traced with the batch fixed; a SavedModel, whose graph is frozen,
gets the free batch dimension of its TensorList element shapes set in the graph itself.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any, Optional

from .report import OpUse

__all__ = [
    "FUSED_SEQUENCE_OPS",
    "RECURRENT_LOOP_OPS",
    "is_dynamic_tensor_list_error",
    "layer_of_error",
    "patch_tensor_list_batch",
    "recurrent_summary",
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
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import tensor_util

    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        model = saved_model_pb2.SavedModel.FromString(f.read())
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
    temp = tempfile.TemporaryDirectory(prefix="tfedge-batch-")
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
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta in model.meta_graphs:
        for fn in meta.graph_def.library.function:
            if any(n.op in ("While", "StatelessWhile") for n in fn.node_def) and any(
                n.op.startswith("TensorList") for n in fn.node_def
            ):
                return True
    return False
