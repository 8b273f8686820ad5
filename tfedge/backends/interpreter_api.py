"""The runtime of every backend with TFLite's Python ``Interpreter`` API.

ai_edge_litert, tflite_runtime and ``tf.lite`` all wrap the same C++ interpreter through
the same pybind11 wrapper (``_interpreter``): one class serves the three. A backend with
another API (LiteRT's ``CompiledModel``) brings its own runtime class with the same methods.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from ._base import Backend

__all__ = ["Runtime"]

class Runtime:
    """One backend interpreter, and the only object that touches its private parts.

    ``set_tensor``, ``invoke`` and ``get_tensor`` are the backend's C++ calls themselves
    (bound once, with the subgraph as last argument): the hot path of
    :meth:`tfedge.Interpreter.run` calls them directly. Nothing here maps errors: the
    callers know the stage, and use :func:`translate`.

    Args:
        backend: The backend to build with.
        content: The model's bytes.
        num_threads: Threads of the CPU kernels.
        xnnpack: Apply the backend's default XNNPACK delegate (at the first allocation).
        options: Keyword options of the backend's Interpreter, passed unchanged; an
            ``experimental_op_resolver_type`` there wins over ``xnnpack``, and
            ``custom_op_registerers`` builds the backend's ``InterpreterWithCustomOps``.
    """

    def __init__(self, backend: Backend, content: bytes, *, num_threads: int, xnnpack: bool,
                 options: Mapping[str, Any]) -> None:
        kwargs = dict(options)
        resolver = backend.op_resolver_type
        kwargs.setdefault(
            "experimental_op_resolver_type",
            resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self.backend = backend
        registerers = kwargs.pop("custom_op_registerers", None)
        if registerers:  # the backends' own InterpreterWithCustomOps: symbol names or functions
            self._interp = backend.module.InterpreterWithCustomOps(
                custom_op_registerers=list(registerers), model_content=content, num_threads=num_threads, **kwargs)
        else:
            self._interp = backend.interpreter_class(model_content=content, num_threads=num_threads, **kwargs)
        wrapper = self._interp._interpreter
        self._wrapper = wrapper
        self.set_tensor: Callable[[int, Any, int], None] = wrapper.SetTensor
        self.invoke: Callable[[int], None] = wrapper.Invoke
        self.get_tensor: Callable[[int, int], np.ndarray] = wrapper.GetTensor
        self._runners: weakref.WeakSet[Any] = weakref.WeakSet()
        del wrapper
        # References to the wrapper that tfedge and the backend hold themselves; any more
        # are numpy views from tensor() (see views()).
        self._own = sys.getrefcount(self._wrapper)

    # -- what the model looks like
    def input_details(self) -> list[dict[str, Any]]:
        """The backend's input details of the main subgraph."""
        return list(self._interp.get_input_details())

    def output_details(self) -> list[dict[str, Any]]:
        """The backend's output details of the main subgraph."""
        return list(self._interp.get_output_details())

    def ops_details(self) -> list[dict[str, Any]]:
        """The backend's ``_get_ops_details()``: every operator of the main subgraph."""
        return list(self._interp._get_ops_details())

    def op_details(self, index: int) -> dict[str, Any]:
        """The backend's ``_get_op_details(index)``."""
        return dict(self._interp._get_op_details(index))

    def native_handle(self) -> int:
        """The address of the backend's C++ ``tflite::Interpreter`` (what PyCoral takes)."""
        return int(self._wrapper.interpreter())

    def tensor_details(self, index: int, subgraph: int) -> dict[str, Any]:
        """The details dict of tensor ``index`` of ``subgraph``."""
        return dict(self._interp._get_tensor_details(index, subgraph))

    def all_tensor_details(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """The backend's ``get_tensor_details()``."""
        return list(self._interp.get_tensor_details(*args, **kwargs))

    def signature_defs(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{key: {"inputs": {name: tensor}, "outputs": {name: tensor}}}``."""
        return dict(self._interp._get_full_signature_list())

    def signature_list(self) -> dict[str, dict[str, list[str]]]:
        """The backend's ``get_signature_list()``."""
        return dict(self._interp.get_signature_list())

    def subgraph_of(self, key: str) -> int:
        """The subgraph a signature runs."""
        return int(self._wrapper.GetSubgraphIndexFromSignature(key))

    def has_free_inputs(self) -> bool:
        """True when an input of the main subgraph has a free dimension (-1 in its shape signature)."""
        return any(int(d) < 0 for d in chain.from_iterable(d.get("shape_signature", ()) for d in self.input_details()))

    def tensor_size(self, index: int, subgraph: int) -> tuple[int, ...]:
        """The current shape of tensor ``index``."""
        return tuple(int(d) for d in self._wrapper.TensorSize(index, subgraph))

    # -- shapes and memory
    def resize(self, index: int, shape: Sequence[int], subgraph: int, strict: bool = False) -> None:
        """Resize input tensor ``index`` (allocate afterwards)."""
        self._wrapper.ResizeInputTensor(index, np.array(shape, dtype=np.int32), strict, subgraph)

    def allocate(self, subgraph: int = 0) -> None:
        """Allocate tensor memory of ``subgraph`` (the main one by default).

        The main subgraph through the interpreter itself, which applies the default
        delegates (XNNPACK) at its first allocation; the backends' per-subgraph call
        would skip them. Not the backend's public ``allocate_tensors()``: it counts every
        reference to its wrapper as a numpy view, and tfedge holds some (see :meth:`views`).
        """
        if subgraph == 0:
            self._wrapper.AllocateTensors()
        else:
            self._wrapper.AllocateTensors(subgraph)

    def views(self) -> int:
        """How many numpy arrays from :meth:`tensor` still point into tensor memory."""
        runners = sum(1 for r in self._runners if getattr(r, "_interpreter_wrapper", None) is self._wrapper)
        return sys.getrefcount(self._wrapper) - self._own - runners

    def tensor(self, index: int) -> Callable[[], np.ndarray]:
        """The backend's ``tensor()``: a function returning a numpy view (no copy)."""
        return self._interp.tensor(index)

    def reset_variables(self) -> None:
        """Reset variable tensors to their initial values."""
        self._interp.reset_all_variables()

    def signature_runner(self, key: str) -> Any:
        """The backend's SignatureRunner for ``key``."""
        runner = self._interp.get_signature_runner(key)
        self._runners.add(runner)
        return runner

    # -- delegates and the graph
    def apply_delegate(self, delegate: Any) -> None:
        """Apply a delegate object from the backend's ``load_delegate`` to the graph."""
        self._wrapper.ModifyGraphWithDelegate(delegate._get_native_delegate_pointer())
        self._interp._delegates.append(delegate)  # kept alive as long as the interpreter

    def num_nodes(self) -> int:
        """Nodes in the main subgraph's execution plan."""
        return int(self._wrapper.NumNodes())

    def node_name(self, node: int) -> str:
        """The kernel name of ``node`` (``"DELEGATE"`` for a delegate's partition)."""
        return str(self._wrapper.NodeName(node))

    def node_inputs(self, node: int) -> list[int]:
        """The input tensor indices of ``node``."""
        return [int(t) for t in self._wrapper.NodeInputs(node)]

    def node_outputs(self, node: int) -> list[int]:
        """The output tensor indices of ``node``."""
        return [int(t) for t in self._wrapper.NodeOutputs(node)]
