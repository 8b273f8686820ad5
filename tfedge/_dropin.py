"""The drop-in half of :class:`tfedge.Interpreter`: the backend Interpreter's own API.

``allocate_tensors``, ``get_input_details``, ``set_tensor``, ``invoke``, ``get_tensor``
and the rest behave as the backend's (tests/runtime/test_dropin.py compares them side by
side), with errors mapped to :mod:`tfedge.errors`. :class:`DropIn` is a mixin: the
Interpreter supplies the lock, the session and the fallback steps declared below.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from . import backends
from .backends import BACKEND_ERRORS, Stage, kernel_message, translate
from .errors import InputError, InvokeError, SignatureError, first_line

if TYPE_CHECKING:
    from ._session import Session
    from .verify import ModelSummary

__all__ = ["DropIn", "SignatureRunner"]


class DropIn:
    """The backend Interpreter's methods, for :class:`tfedge.Interpreter` (see the module docstring)."""

    _lock: threading.Lock
    _session: Session
    _backend: backends.Backend
    _backend_options: dict[str, Any]
    _views: dict[str | None, Any]

    if TYPE_CHECKING:  # what the Interpreter supplies

        @property
        def _runtime(self) -> backends.Runtime: ...

        @property
        def signatures(self) -> tuple[str, ...]: ...

        @property
        def summary(self) -> ModelSummary: ...

        def _invoke_failed(self, exc: BaseException, *, stacklevel: int) -> None: ...

        def _renew_feeders(self) -> None: ...

    def _unknown_signature(self, signature: Any) -> SignatureError:
        """SignatureError listing the model's signatures."""
        known = ", ".join(repr(k) for k in self.signatures) or "none (the model has no signatures)"
        return SignatureError(f"Unknown signature {signature!r}. Available: {known}.")

    # Every method holds the lock: a set_tensor or resize from one thread must not land
    # between another thread's inputs and its invoke. The ones that may move tensor memory
    # check for numpy views first (_check_no_views), as the backends do.

    def _check_no_views(self, what: str) -> None:
        """InvokeError if numpy views from ``tensor()`` still point into tensor memory (lock held)."""
        views = self._runtime.views()
        if views > 0:
            raise InvokeError(
                f"{what} cannot run while {views} numpy array(s) from tensor() still point into the "
                "interpreter's memory, which it may move. Delete those arrays (keep the function "
                "tensor() returns and call it again afterwards), or use get_tensor(), which copies."
            )

    def allocate_tensors(self) -> None:
        """Allocate tensor memory (done at load already; needed after ``resize_tensor_input``).

        A delegate that cannot take the new shapes is dropped, as in :meth:`run`.
        """
        with self._lock:
            self._check_no_views("allocate_tensors()")
            runtime = self._runtime
            shapes = [(d["index"], runtime.tensor_size(d["index"], 0)) for d in runtime.input_details()]
            self._session.allocate(0, shapes, lambda exc: translate(exc, Stage.INVOKE, backend=self._backend,
                                                            name="allocate_tensors failed"), stacklevel=3)

    def get_input_details(self) -> list[dict[str, Any]]:
        """The backend's input details of the main subgraph."""
        with self._lock:
            return self._runtime.input_details()

    def get_output_details(self) -> list[dict[str, Any]]:
        """The backend's output details of the main subgraph."""
        with self._lock:
            return self._runtime.output_details()

    def get_tensor_details(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """The backend's details of every tensor."""
        with self._lock:
            return self._runtime.all_tensor_details(*args, **kwargs)

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        """Copy ``value`` into tensor ``tensor_index``."""
        with self._lock, backends.mapped(Stage.SET, backend=self._backend,
                                         name=f"set_tensor({tensor_index}) failed"):
            self._runtime.set_tensor(tensor_index, value, 0)

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        """A copy of tensor ``tensor_index``."""
        with self._lock, backends.mapped(Stage.GET, backend=self._backend,
                                         name=f"get_tensor({tensor_index}) failed"):
            return self._runtime.get_tensor(tensor_index, subgraph_index)

    def tensor(self, tensor_index: int) -> Any:
        """A function returning a numpy view of tensor ``tensor_index`` (no copy, no lock)."""
        return self._runtime.tensor(tensor_index)

    def invoke(self) -> None:
        """Run the main subgraph on the tensors set with ``set_tensor``.

        If a delegate fails here, it is dropped as in :meth:`run`: the inputs are
        carried over to the rebuilt interpreter and the call is retried.
        """
        with self._lock:
            self._check_no_views("invoke()")
            if 0 not in self._session.allocated:
                raise InvokeError("invoke() needs allocated tensors: call allocate_tensors() first "
                                  "(after resize_tensor_input()), or use run(), which does.")
            while True:
                runtime = self._runtime
                try:
                    runtime.invoke(0)
                    return
                except BACKEND_ERRORS as exc:
                    inputs = [(d["index"], runtime.get_tensor(d["index"], 0)) for d in runtime.input_details()]
                    self._invoke_failed(exc, stacklevel=2)
                self._session.allocate(0, [(index, value.shape) for index, value in inputs],
                               lambda exc: translate(exc, Stage.INVOKE, backend=self._backend), stacklevel=3)
                for index, value in inputs:  # carried over to the rebuilt interpreter
                    self._runtime.set_tensor(index, value, 0)

    def resize_tensor_input(self, input_index: int, tensor_size: Any, strict: bool = False) -> None:
        """Resize an input tensor; call ``allocate_tensors()`` afterwards."""
        with self._lock:
            self._check_no_views("resize_tensor_input()")
            runtime = self._runtime
            with backends.mapped(Stage.RESIZE, backend=self._backend,
                                 name=f"resize_tensor_input({input_index}) failed"):
                before = runtime.tensor_size(input_index, 0)
                runtime.resize(input_index, tensor_size, 0, strict)
            if runtime.tensor_size(input_index, 0) != before:  # the backends leave the same shape allocated
                self._session.allocated.discard(0)
                self._renew_feeders()

    def _get_tensor_details(self, tensor_index: int, subgraph_index: int = 0) -> dict[str, Any]:
        """The backend's details of one tensor (private upstream, widely used)."""
        with self._lock, backends.mapped(Stage.GET, backend=self._backend,
                                         name=f"_get_tensor_details({tensor_index}) failed"):
            return self._runtime.tensor_details(tensor_index, subgraph_index)

    def _get_ops_details(self) -> list[dict[str, Any]]:
        """The backend's details of every operator (the widely copied way to list a model's ops)."""
        with self._lock:
            return self._runtime.ops_details()

    def _get_op_details(self, op_index: int) -> dict[str, Any]:
        """The backend's details of operator ``op_index``."""
        with self._lock, backends.mapped(Stage.GET, backend=self._backend,
                                         name=f"_get_op_details({op_index}) failed"):
            return self._runtime.op_details(op_index)

    def _safe_to_run(self) -> bool:
        """True when no numpy view from ``tensor()`` points into tensor memory."""
        return self._runtime.views() <= 0

    def _native_handle(self) -> int:
        """The address of the backend's C++ interpreter, for PyCoral's ``run_inference``.

        It changes when a delegate falls back (the interpreter is rebuilt): ask again.
        """
        return self._runtime.native_handle()

    @property
    def experimental_compress_quantization_zero_points(self) -> bool:
        """Whether the backend was asked to compress zero points (ai_edge_litert's option)."""
        return bool(self._backend_options.get("experimental_compress_quantization_zero_points", False))

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        """``{signature: {"inputs": [...], "outputs": [...]}}``."""
        return self._runtime.signature_list()

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        """The backend's runner for one signature, with errors mapped, sharing this Interpreter's lock."""
        if signature_key is None:
            if len(self.signatures) != 1:
                raise self._unknown_signature(signature_key)
            signature_key = self.signatures[0]
        if signature_key not in self._views:
            raise self._unknown_signature(signature_key)
        with self._lock:
            return SignatureRunner(self._runtime.signature_runner(signature_key), self._lock)

    def reset_all_variables(self) -> None:
        """Reset variable tensors (stateful models) to their initial values."""
        with self._lock:
            self._runtime.reset_variables()

    def num_subgraphs(self) -> int:
        """Number of subgraphs in the model."""
        return int(self.summary.num_subgraphs)


class SignatureRunner:
    """The backend's SignatureRunner, with its errors mapped to tfedge's.

    It holds its Interpreter's lock while it runs, so it is as thread-safe as
    :meth:`Interpreter.run`.
    """

    def __init__(self, runner: Any, lock: Any = None) -> None:
        self._runner = runner
        self._lock = lock if lock is not None else threading.Lock()

    def __call__(self, **kwargs: Any) -> dict[str, np.ndarray]:
        with self._lock:
            try:
                return self._runner(**kwargs)
            except ValueError as exc:
                raise InputError(first_line(exc)) from exc
            except RuntimeError as exc:
                raise InvokeError(f"The model failed while running: {kernel_message(exc)}") from exc

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        """Input details by signature key."""
        return self._runner.get_input_details()

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        """Output details by signature key."""
        return self._runner.get_output_details()
