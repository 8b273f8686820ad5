"""``Stream``: a sample stream through one model or a chain of models, scores per hop.

openWakeWord, for example, is three models: a melspectrogram (1760 samples at 16 kHz
every 1280, 8 frames of 32 mels out), an embedding (76 mel frames every 8, 96 features
out) and a wake-word classifier (16 embeddings every 1, one score out)::

    stream = Stream([Stage(mel, transform=lambda m: m / 10 + 2), Stage(emb, hop=8), ww],
                    window=1760, hop=1280)
    for chunk in microphone:                 # any chunk size
        for score in stream.feed(chunk)[:, 0]:
            ...

Each stage keeps its frames in a buffer allocated once; a window is a view of it,
reshaped to the model's input, so nothing is reallocated per hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..interpreter import Interpreter

__all__ = ["Stage", "Stream"]

Model = Union[Interpreter, Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class Stage:
    """One model of a chain.

    Attributes:
        model: An Interpreter with one input and one output (or any function from an
            input array to an output array).
        window: Frames per call; default: the model's input dimension 1 (its time axis).
        hop: Frames to advance between calls.
        transform: Applied to each output (as (frames, features)) before the next stage.
    """

    model: Model
    window: Optional[int] = None
    hop: int = 1
    transform: Optional[Callable[[np.ndarray], np.ndarray]] = None


class _Runner:
    """A stage with its frame buffer."""

    def __init__(self, stage: Stage, window: int, hop: int, features: int) -> None:
        if not 1 <= hop <= window:
            raise InputError(f"A stream stage needs 1 <= hop <= window, got window={window}, hop={hop}.")
        self.stage, self.window, self.hop, self.features = stage, window, hop, features
        self.shape: Tuple[int, ...] = (window, features)
        self.name = ""
        model = stage.model
        if isinstance(model, Interpreter):
            specs, outs = model.input_specs(), model.output_specs()
            if len(specs) != 1 or len(outs) != 1:
                raise InputError(f"A stream stage needs a model with one input and one output; this one has "
                                 f"{len(specs)} inputs and {len(outs)} outputs.")
            self.name = outs[0].name
            sig = list(specs[0].shape_signature) or [1]
            if len(sig) > 1 and sig[0] == -1:
                sig[0] = 1  # batch
            free = [i for i, d in enumerate(sig) if d == -1]
            fixed = int(np.prod([d for d in sig if d != -1]))
            if len(free) == 1 and (window * features) % fixed == 0:
                sig[free[0]] = window * features // fixed  # the time axis of a model with a free one
            self.shape = tuple(sig)
            if len(free) > 1 or int(np.prod(self.shape)) != window * features:
                raise InputError(f"A window of {window} frames x {features} features does not fit input "
                                 f"{specs[0].name!r} of shape {tuple(specs[0].shape_signature)}; "
                                 "give the stage the window its model takes.")
        self.capacity = window + max(window, hop)
        self.buffer = np.zeros((self.capacity, features), dtype=np.float32)
        self.start = self.fill = 0

    def call(self, x: np.ndarray) -> np.ndarray:
        model = self.stage.model
        if isinstance(model, Interpreter):
            out = model.run(x.reshape(self.shape))[self.name]
        else:
            out = np.asarray(model(x.reshape(self.shape)), dtype=np.float32)
        out = out.reshape(-1, out.shape[-1] if out.ndim else 1)
        if self.stage.transform is not None:
            out = np.asarray(self.stage.transform(out), dtype=np.float32)
        return out

    def push(self, rows: np.ndarray, outputs: List[np.ndarray]) -> None:
        """Append frames; run every full window; collect the outputs."""
        done = 0
        while done < len(rows):
            if self.fill == self.capacity:
                keep = self.fill - self.start
                self.buffer[:keep] = self.buffer[self.start:self.fill]
                self.start, self.fill = 0, keep
            n = min(len(rows) - done, self.capacity - self.fill)
            self.buffer[self.fill:self.fill + n] = rows[done:done + n]
            self.fill += n
            done += n
            while self.fill - self.start >= self.window:
                outputs.append(self.call(self.buffer[self.start:self.start + self.window]))
                self.start += self.hop


class Stream:
    """Feeds samples through a chain of models and returns the last one's scores per hop.

    Args:
        stages: Interpreters or :class:`Stage` objects, first to last.
        window: Samples per call of the first model.
        hop: Samples between calls of the first model.
    """

    def __init__(self, stages: Sequence[Union[Stage, Model]], *, window: int, hop: int) -> None:
        if not stages:
            raise InputError("A Stream needs at least one stage.")
        if window < 1 or hop < 1:
            raise InputError(f"window and hop must be >= 1, got window={window}, hop={hop}.")
        self._stages = [s if isinstance(s, Stage) else Stage(s) for s in stages]
        self._window, self._hop = window, hop
        self._runners: List[Optional[_Runner]] = [None] * len(self._stages)
        self._runners[0] = _Runner(self._stages[0], window, hop, 1)
        self._width = 1  # scores per hop of the last stage, once known

    def _runner(self, i: int, features: int) -> _Runner:
        runner = self._runners[i]
        if runner is None:
            stage = self._stages[i]
            window = stage.window
            if window is None:
                if not isinstance(stage.model, Interpreter):
                    raise InputError(f"Stage {i} is a function: give it a window (Stage(fn, window=N)).")
                shape = stage.model.input_specs()[0].shape
                window = int(shape[1]) if len(shape) > 1 else 1
            runner = self._runners[i] = _Runner(stage, window, stage.hop, features)
        elif runner.features != features:
            raise InputError(f"Stage {i} got {features} features per frame, then earlier {runner.features}.")
        return runner

    def feed(self, samples: Any) -> np.ndarray:
        """Push samples (any count); returns the scores produced, (hops, outputs) float32."""
        rows = np.asarray(samples, dtype=np.float32).reshape(-1, 1)
        for i in range(len(self._stages)):
            produced: List[np.ndarray] = []
            runner = self._runners[i] if i == 0 else self._runner(i, rows.shape[1])
            assert runner is not None
            runner.push(rows, produced)
            if not produced:
                return np.zeros((0, self._width), dtype=np.float32)
            rows = np.concatenate(produced)
        self._width = rows.shape[1]
        return rows

    def reset(self) -> None:
        """Forget all buffered samples and frames."""
        for runner in self._runners:
            if runner is not None:
                runner.start = runner.fill = 0
                runner.buffer[:] = 0
