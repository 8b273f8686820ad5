"""``InterpreterPool``: N interpreters of one model, run in parallel threads."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._model import ModelSource
from .errors import InvokeError, ModelError
from .interpreter import Inputs, Interpreter, TensorSpec, _default_threads

if TYPE_CHECKING:
    from .metadata import ModelMetadata

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["InterpreterPool"]


class InterpreterPool:
    """Several Interpreters of one model, for throughput from many threads.

    One :class:`~tfedge.Interpreter` runs one call at a time (it holds a lock). A pool
    keeps ``size`` of them and lends a free one to each call, so ``size`` calls run at
    once; the backends release the GIL while a model runs, so they use ``size`` cores.

    ``num_threads`` of each pooled Interpreter defaults to 1, not to the core count as
    for a lone Interpreter: the pool already keeps every core busy with one call
    each, and the kernels' own threads would then compete for the same cores (and
    spin-wait), costing more than they give. Pass ``num_threads`` to change it, for
    example a pool of 2 with 2 threads each on an 8-core machine with other work.

    Example::

        pool = tfedge.InterpreterPool("model.tflite")
        for out in pool.map(images):   # in order, ``size`` at a time
            ...
        out = pool.run(image)          # from any thread (a web handler)

    Args:
        model: A path to a .tflite file, or its bytes (read once, shared).
        size: Number of interpreters. Default: the CPU cores this process may use
            (``os.sched_getaffinity``).
        **interpreter_options: Keyword options of :class:`~tfedge.Interpreter`
            (``backend``, ``num_threads``, ``delegates``, ``strict``, ...).

    Raises:
        ValueError: ``size`` is not a whole number >= 1.
        ModelError, BackendNotFoundError, DelegateError: as :class:`~tfedge.Interpreter`.
    """

    def __init__(self, model: ModelSource, *, size: int | None = None, **interpreter_options: Any) -> None:
        if size is None:
            size = _default_threads()
        elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a whole number >= 1, got {size!r}.")
        interpreter_options.setdefault("num_threads", 1)
        try:
            first = Interpreter(model, **interpreter_options)  # errors name the file; read once
        except TypeError as exc:  # an unknown option: say where the pool's own go
            raise TypeError(f"{exc} InterpreterPool's own option is size (the number of interpreters); "
                            "it passes the others to tfedge.Interpreter.") from None
        if size > 1 and first.keeps_state:
            raise ModelError(
                f"{first.model.source} keeps state from one call to the next ({', '.join(first.keeps_state)}): "
                f"a pool of {size} gives each call to whichever of its interpreters is free, each with its own "
                "state, so outputs would depend on which one ran. Use size=1 for one stream (in `tfedge serve`, "
                "--workers 1), or one tfedge.Interpreter per stream."
            )
        # The others load the very same Model (immutable bytes), which the first has read,
        # verified and, when asked, probed: doing it again would only cost time.
        shared = {**interpreter_options, "probe": False}
        rest = [Interpreter(first.model, **shared) for _ in range(size - 1)]
        self.size = size
        self._interpreters = (first, *rest)
        self._free: queue.SimpleQueue[Interpreter] = queue.SimpleQueue()
        for interp in self._interpreters:
            self._free.put(interp)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._closed = False

    @property
    def interpreters(self) -> tuple[Interpreter, ...]:
        """The pooled interpreters (for ``input_specs()``, ``placement``, ...)."""
        return self._interpreters

    # What tfedge.tasks reads from a model: the same for every pooled interpreter.
    def input_specs(self, signature: str | None = None) -> tuple[TensorSpec, ...]:
        """The inputs, as :meth:`Interpreter.input_specs`."""
        return tuple(self._interpreters[0].input_specs(signature))

    def output_specs(self, signature: str | None = None) -> tuple[TensorSpec, ...]:
        """The outputs, as :meth:`Interpreter.output_specs`."""
        return tuple(self._interpreters[0].output_specs(signature))

    @property
    def metadata(self) -> ModelMetadata | None:
        """The model's TFLite Metadata, as :attr:`Interpreter.metadata`."""
        return self._interpreters[0].metadata

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise InvokeError("This InterpreterPool is closed; create a new InterpreterPool to run the model.")

    def run(self, inputs: Inputs, *, signature: str | None = None, raw: bool = False) -> dict[str, np.ndarray]:
        """Run one call on a free interpreter, waiting for one if all are busy.

        Takes and returns what :meth:`Interpreter.run` does. Safe from any thread.

        Raises:
            InvokeError: The pool is closed.
        """
        self._refuse_if_closed()
        interp = self._free.get()
        try:
            return interp.run(inputs, signature=signature, raw=raw)
        finally:
            self._free.put(interp)

    __call__ = run

    def map(
        self, inputs: Iterable[Inputs], *, signature: str | None = None, raw: bool = False
    ) -> Iterator[dict[str, np.ndarray]]:
        """Run every item of ``inputs``, ``size`` at a time, yielding results in input order.

        Reads ahead at most ``2 * size`` items, so an endless stream works. An error
        is raised when its item's turn comes.
        """
        self._refuse_if_closed()
        executor = self._get_executor()
        pending: deque[Future[dict[str, np.ndarray]]] = deque()
        for item in inputs:
            pending.append(executor.submit(self.run, item, signature=signature, raw=raw))
            if len(pending) >= 2 * self.size:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _get_executor(self) -> ThreadPoolExecutor:
        """The worker threads of map(), started on first use."""
        with self._executor_lock:
            if self._executor is None:
                # Imported here: concurrent.futures brings logging, which `import tfedge`
                # (every app's start-up) should not pay for when no pool maps anything.
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="tfedge-pool")
            return self._executor

    def close(self) -> None:
        """Stop the worker threads of :meth:`map`; later calls raise ``InvokeError``."""
        with self._executor_lock:
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def __enter__(self) -> InterpreterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        first = self._interpreters[0]
        return f"<tfedge.InterpreterPool size={self.size} backend={first.backend} threads={first.num_threads}>"

