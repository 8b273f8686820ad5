"""The backend interpreter a tfedge Interpreter runs on, and the one delegate fallback cycle.

A :class:`Session` builds the backend's runtime from a delegate preference list and
rebuilds it whenever a delegate fails: loading it, preparing the graph, allocating after
a resize, or running. Every such failure goes through :meth:`Session.recover`, or for the
failures of a build itself :meth:`Session.build`: blame the delegate (the one that failed
to load or apply, or whose node the backend's message names), report it
(:func:`tfedge.delegates.fall_back`: a warning, or DelegateError when strict), and build
again without it. What no delegate is to blame for is the model's (or the input's) error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from .backends import BACKEND_ERRORS, Backend, Runtime, Stage, kernel_message, mapped, translate
from .delegates import DelegateKind, DelegateSpec, _load, _Skip, fall_back

__all__ = ["Built", "Session", "blame", "placement"]


@dataclass
class Built:
    """A backend runtime built from a preference list, and what went where.

    Attributes:
        runtime: The backend interpreter.
        chain: The delegates still in use, in order.
        applied: Each applied delegate and the node numbers its partitions got.
        placement: Nodes of the main subgraph per delegate, and ``"cpu"``; empty until
            the first allocation (XNNPACK applies itself then).
        allocated: The main subgraph's tensors are allocated. A model with free input
            dimensions whose placeholder shape cannot be allocated waits for the app's
            first input shape instead.
    """

    runtime: Runtime
    chain: tuple[DelegateSpec, ...]
    applied: tuple[tuple[DelegateSpec, range], ...]
    placement: dict[str, int] = field(default_factory=dict)
    allocated: bool = False


class _Blamed(Exception):
    """A build failed because of one delegate (``spec``), for ``reason``."""

    def __init__(self, spec: DelegateSpec, reason: str) -> None:
        super().__init__(reason)
        self.spec = spec
        self.reason = reason


class _NotTheDelegate(Exception):
    """What failed without a delegate too (the backend's exception is ``error``)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _under_it(what: str, exc: BaseException) -> str:
    """``the model failed to prepare under it: the backend's first line, readable``."""
    return f"the model failed {what} under it: {kernel_message(exc).rstrip('.')}"


class Session:
    """The backend runtime of one Interpreter, rebuilt without a delegate that fails.

    Args:
        backend: The backend to build with.
        content: The model's bytes.
        num_threads: Threads of the CPU kernels.
        chain: The delegate preference list (:func:`tfedge.delegates.resolve`).
        strict: Raise DelegateError instead of falling back.
        options: The backend Interpreter's keyword options, passed unchanged.
        source: How messages name the model; summary: its verification summary.
        quiet: Drop the line the backends print on every load.
        renewed: Called after the runtime or its allocation changed (the Interpreter
            renews its feeders).
        stacklevel: Frames from the first build up to the user's code.
    """

    def __init__(self, backend: Backend, content: bytes, *, num_threads: int, chain: tuple[DelegateSpec, ...],
                 strict: bool, options: Mapping[str, Any], source: str, summary: Any, quiet: bool,
                 renewed: Callable[[], None], stacklevel: int) -> None:
        self.backend, self.content, self.num_threads = backend, content, num_threads
        self.strict, self.options, self.source, self.summary = strict, options, source, summary
        self.quiet, self.renewed = quiet, renewed
        #: A free input dimension somewhere: the placeholder shape may not allocate.
        self.free = False
        self.built = self.build(chain, allocate_now=None, stacklevel=stacklevel + 1)
        #: The subgraphs whose tensors are allocated at their current shapes.
        self.allocated: set[int] = {0} if self.built.allocated else set()

    # -- the cycle ---------------------------------------------------------------

    def build(self, chain: tuple[DelegateSpec, ...], *, allocate_now: bool | None, stacklevel: int) -> Built:
        """Build (and allocate) a runtime with the first workable subset of ``chain``.

        Args:
            allocate_now: True: allocate, and a failure not blamed on a delegate is the
                model's (ModelError). None: the same, except for a model whose inputs
                have free dimensions, which may fail at its placeholder shape: it is then
                left unallocated, for the first real shape. False: do not allocate.
        """
        try:
            if not self.quiet:
                return self._attempt(chain, allocate_now)
            from ._native_output import captured_native_output, replay

            held = None
            try:
                with captured_native_output(fds=(2,)) as held:
                    return self._attempt(chain, allocate_now)
            finally:
                if held is not None:  # everything but the per-load INFO line, after the load
                    replay(held.text, sys.stderr)
        except _Blamed as failed:
            return self._without(failed.spec, failed.reason, chain, allocate_now=allocate_now,
                                 stacklevel=stacklevel + 1)

    def recover(self, exc: BaseException, what: str, *, stacklevel: int,
                attempt: Callable[[Built], None] | None = None) -> bool:
        """After the backend raised ``exc``: drop the delegate to blame and rebuild (lock held).

        Args:
            exc: What the backend raised.
            what: What failed, for the warning (``"while running"``).
            attempt: Run on the rebuilt runtime before anything is dropped; if it fails
                there too, and no delegate is to blame, the failure is not the
                delegate's: a fresh runtime with the delegate is kept for the next
                call, and _NotTheDelegate carries that failure.

        Returns:
            False when no delegate is to blame (nothing changed): the caller raises.
        """
        culprit = blame(exc, self.built)
        if culprit is None:
            return False
        self.adopt(self._without(culprit, _under_it(what, exc), self.built.chain, stacklevel=stacklevel + 1,
                                 allocate_now=None if self.free else True, attempt=attempt))
        return True

    def _without(self, culprit: DelegateSpec, reason: str, chain: tuple[DelegateSpec, ...], *,
                 allocate_now: bool | None, stacklevel: int, attempt: Callable[[Built], None] | None = None) -> Built:
        """Report ``culprit`` and build without it (``attempt`` first, see :meth:`recover`)."""
        remaining = tuple(s for s in chain if s != culprit)
        if attempt is None:
            fall_back(culprit, reason, remaining, strict=self.strict, stacklevel=stacklevel + 1)
            return self.build(remaining, allocate_now=allocate_now, stacklevel=stacklevel + 1)
        candidate = self.build(remaining, allocate_now=False, stacklevel=stacklevel + 1)
        try:
            attempt(candidate)
        except BACKEND_ERRORS as again:
            if blame(again, candidate) is None:
                self.adopt(self.build(chain, allocate_now=None, stacklevel=stacklevel + 1))
                raise _NotTheDelegate(again) from again
        fall_back(culprit, reason, remaining, strict=self.strict, stacklevel=stacklevel + 1)
        return candidate

    def adopt(self, built: Built) -> None:
        """Run on ``built`` from now on (lock held)."""
        self.built = built
        self.allocated = {0} if built.allocated else set()
        self.renewed()

    def _attempt(self, chain: tuple[DelegateSpec, ...], allocate_now: bool | None) -> Built:
        """One build with every delegate of ``chain``; _Blamed names the one that failed."""
        backend, options = self.backend, self.options
        remaining = list(chain)
        loaded = []
        for spec in [s for s in remaining if s.kind not in (DelegateKind.XNNPACK, DelegateKind.NONE)]:
            try:
                loaded.append((spec, _load(backend, spec)))
            except _Skip as why:
                raise _Blamed(spec, str(why)) from why
        xnnpack = any(s.kind is DelegateKind.XNNPACK for s in remaining)
        caller = backend.applies_xnnpack(options)
        if caller is not None:  # the caller's resolver decides, whatever the list says
            if caller and not xnnpack:
                remaining.append(DelegateSpec(DelegateKind.XNNPACK))
            elif not caller:
                remaining = [s for s in remaining if s.kind is not DelegateKind.XNNPACK]
            xnnpack = caller
        with mapped(Stage.LOAD, backend=backend, source=self.source, summary=self.summary):
            runtime = backend.open(self.content, num_threads=self.num_threads, xnnpack=xnnpack, options=options)
        built = Built(runtime, tuple(remaining), ())
        for spec, delegate in loaded:
            before = runtime.num_nodes()
            try:
                runtime.apply_delegate(delegate)
            except BACKEND_ERRORS as exc:
                raise _Blamed(spec, _under_it("to prepare", exc)) from exc
            built.applied += ((spec, range(before, runtime.num_nodes())),)
        if allocate_now is False:
            return built
        try:
            allocate(built)
        except BACKEND_ERRORS as exc:
            if allocate_now is None and runtime.has_free_inputs():
                # Free dimensions: the placeholder shape (1 for each) may be all that
                # fails, under a delegate or not. Start again from a fresh interpreter
                # that waits for the app's first real shape; failures then count.
                del runtime, built
                return self._attempt(tuple(remaining), False)
            blamed = blame(exc, built)
            if blamed is None:
                raise translate(exc, Stage.ALLOCATE, backend=backend, source=self.source,
                                summary=self.summary) from exc
            raise _Blamed(blamed, _under_it("to prepare", exc)) from exc
        return built

    # -- shapes ------------------------------------------------------------------

    def allocate(self, subgraph: int, shapes: Sequence[tuple[int, tuple[int, ...]]],
                 failure: Callable[[BaseException], Exception], *, stacklevel: int) -> None:
        """Resize inputs ``(tensor index, shape)`` and allocate ``subgraph``, with fallback (lock held).

        A delegate is dropped only when the model takes the shapes without it: shapes that
        fail on the builtin kernels too are the input's fault (``failure(exc)`` is raised),
        and the delegate stays for the next call.
        """

        def resize_and_allocate(built: Built) -> None:
            for index, shape in shapes:
                if built.runtime.tensor_size(index, subgraph) != tuple(shape):
                    built.runtime.resize(index, shape, subgraph)
            allocate(built, subgraph)

        while True:
            try:
                resize_and_allocate(self.built)
            except BACKEND_ERRORS as exc:
                try:
                    if self.recover(exc, "to prepare", stacklevel=stacklevel + 1, attempt=resize_and_allocate):
                        continue
                except _NotTheDelegate as again:
                    raise failure(again.error) from again.error
                raise failure(exc) from exc
            self.allocated.add(subgraph)
            self.renewed()  # for the new shapes (their quantization buffers)
            return


def allocate(built: Built, subgraph: int = 0) -> None:
    """Allocate ``subgraph``'s tensors, recording what XNNPACK took at the first allocation.

    Raises the backend's own exception (for :func:`blame`, then :func:`translate`).
    """
    runtime = built.runtime
    before = runtime.num_nodes()
    try:
        runtime.allocate(subgraph)
    finally:
        if subgraph == 0 and not built.allocated:
            # The backend applies XNNPACK at the first allocation of the main subgraph,
            # after every other delegate: the nodes it adds are its partitions.
            xnnpack = next((s for s in built.chain if s.kind is DelegateKind.XNNPACK), None)
            if xnnpack is not None and all(s is not xnnpack for s, _ in built.applied):
                built.applied += ((xnnpack, range(before, runtime.num_nodes())),)
    if subgraph == 0:
        built.allocated = True
        built.placement = placement(runtime, built.applied)


_NODE = re.compile(r"Node number (\d+) \(([^)]*)\)")
_BUILTIN_NAME = re.compile(r"^[A-Z0-9_]+$")


def blame(exc: BaseException, built: Built) -> DelegateSpec | None:
    """The applied delegate a backend error names (``Node number N (Kernel)``), or None."""
    text = str(exc)
    match = _NODE.search(text)
    if match is None or _BUILTIN_NAME.match(match.group(2)):
        return None  # a builtin op failed: the model's error, not a delegate's
    node = int(match.group(1))
    for spec, nodes in built.applied:
        if node in nodes:
            return spec
    if "xnnpack" in match.group(2).lower():  # a node of another subgraph
        return next((s for s, _ in built.applied if s.kind is DelegateKind.XNNPACK), None)
    return None


def placement(runtime: Runtime, applied: Sequence[tuple[DelegateSpec, range]]) -> dict[str, int]:
    """Nodes of the main subgraph each delegate runs, and the rest as ``"cpu"``.

    A delegate replaces the nodes it takes by one ``DELEGATE`` node per partition; the
    model's own nodes stay listed. The nodes a partition took are found by walking
    back from its outputs through the producing nodes until its inputs.
    """
    count = runtime.num_nodes()
    kernels = {i for i in range(count) if runtime.node_name(i) == "DELEGATE"}
    producer: dict[int, int] = {}
    for i in range(count):
        if i not in kernels:
            for t in runtime.node_outputs(i):
                producer[t] = i
    result: dict[str, int] = {}
    taken = 0
    for spec, nodes in applied:
        covered: set[int] = set()
        for kernel in (n for n in nodes if n in kernels):
            stop = set(runtime.node_inputs(kernel))
            stack = runtime.node_outputs(kernel)
            while stack:
                tensor = stack.pop()
                node = producer.get(tensor)
                if tensor in stop or node is None or node in covered:
                    continue
                covered.add(node)
                stack.extend(runtime.node_inputs(node))
        result[spec.label] = len(covered)
        taken += len(covered)
    result["cpu"] = count - len(kernels) - taken
    return result
