"""One LiteRT model behind a lock: load with a clear error, check its shapes, run any batch size.

The face and voice classifiers both serve `.tflite` files this way, without importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native code prints on stderr meanwhile (LiteRT announces its XNNPACK delegate
    with an INFO line on every load, which would clutter the CLI's one-line messages)."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (e.g. a windowed app): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class ModelError(ValueError):
    """A model file that is missing or is not the model it should be."""


def interpreter(path: str | Path, num_threads: int):
    """A LiteRT interpreter with its tensors allocated, loaded quietly; ModelError if it is no model."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_native_stderr():
            loaded = Interpreter(model_path=str(path), num_threads=num_threads)
            loaded.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a LiteRT model ({exc})") from exc
    return loaded


class LiteRTModel:
    """A `.tflite` file with one float32 input `(N, *input_shape)` and the outputs its caller declares:
    `outputs=7`, its one `(N, 7)` output, which `run` returns; or `outputs={"logits": 7, "features": 512}`,
    the outputs of the model's signature by name and width, which `run` returns as a tuple in that order.

    `what` names the expected input in errors, e.g. "48x48x1 faces". `max_batch` (None: any) is the most rows one
    invoke reads; `run` reads a longer batch in parts of that size, so that the interpreter's arena, which stays as
    deep as the largest batch it ever read, keeps that size. Thread-safe: a LiteRT interpreter is not, so every run
    holds a lock.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        input_shape: tuple[int, ...],
        outputs: int | dict[str, int],
        num_threads: int = 1,
        what: str = "",
        max_batch: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.input_shape = tuple(input_shape)
        self.named = not isinstance(outputs, int)
        self.outputs = dict(outputs) if self.named else {"": outputs}  # name -> width
        self._interpreter = interpreter(self.path, num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._declared_outputs()
        got_in = tuple(int(v) for v in self._input["shape"])
        got_out = [int(d["shape"][-1]) if d is not None else None for d in self._output]
        if got_in[1:] != self.input_shape or got_out != list(self.outputs.values()):
            expected = "x".join(map(str, self.input_shape))
            shown = {n: w for n, w in zip(self.outputs, got_out)} if self.named else got_out[0]
            wanted = self.outputs if self.named else self.outputs[""]
            raise ModelError(f"{self.path}: expects {list(got_in)} -> {shown}, not {what or expected} -> {wanted}")
        self._batch, self.max_batch = got_in[0], max_batch
        self._lock = threading.Lock()

    def _declared_outputs(self) -> list[dict | None]:
        """The details of each declared output (None: the model has no output of that name)."""
        if not self.named:
            return [self._interpreter.get_output_details()[0]]
        try:
            signature = self._interpreter.get_signature_runner().get_output_details()
        except ValueError:  # no signature, or several: no outputs by name
            signature = {}
        return [signature.get(name) for name in self.outputs]

    def run(self, batch: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """(N, *input_shape) float32 -> (N, width), or a tuple of them for named outputs; an empty batch gives
        (0, width) arrays."""
        batch = np.ascontiguousarray(batch, np.float32)
        if len(batch) == 0:
            got = [np.zeros((0, width), np.float32) for width in self.outputs.values()]
        elif batch.shape[1:] != self.input_shape:
            raise ValueError(f"{self.path.name}: input must be (N, {self.input_shape}), got {batch.shape}")
        else:
            step = self.max_batch or len(batch)
            with self._lock:
                parts = [self._invoke(batch[start : start + step]) for start in range(0, len(batch), step)]
            got = [np.concatenate(outputs) for outputs in zip(*parts)] if len(parts) > 1 else parts[0]
        return tuple(got) if self.named else got[0]

    def _invoke(self, batch: np.ndarray) -> list[np.ndarray]:
        """Each declared output for `batch`, in one invoke (the caller holds the lock)."""
        if len(batch) != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input["index"], batch)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(d["index"]).copy() for d in self._output]
