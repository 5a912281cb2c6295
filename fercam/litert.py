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
    """A `.tflite` file with one float32 input `(N, *input_shape)` and one `(N, outputs)` output.

    `what` names the expected input in errors, e.g. "48x48x1 faces". Thread-safe: a LiteRT
    interpreter is not, so every run holds a lock.
    """

    def __init__(
        self, path: str | Path, *, input_shape: tuple[int, ...], outputs: int, num_threads: int = 1, what: str = ""
    ) -> None:
        self.path = Path(path)
        self.input_shape, self.outputs = tuple(input_shape), outputs
        self._interpreter = interpreter(self.path, num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        got_in, got_out = tuple(int(v) for v in self._input["shape"]), tuple(int(v) for v in self._output["shape"])
        if got_in[1:] != self.input_shape or got_out[-1] != outputs:
            expected = "x".join(map(str, self.input_shape))
            raise ModelError(
                f"{self.path}: expects {list(got_in)} -> {list(got_out)}, not {what or expected} -> {outputs}"
            )
        self._batch = got_in[0]
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, *input_shape) float32 -> (N, outputs); an empty batch gives (0, outputs)."""
        batch = np.ascontiguousarray(batch, np.float32)
        if len(batch) == 0:
            return np.zeros((0, self.outputs), np.float32)
        if batch.shape[1:] != self.input_shape:
            raise ValueError(f"{self.path.name}: input must be (N, {self.input_shape}), got {batch.shape}")
        with self._lock:
            if len(batch) != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
                self._interpreter.allocate_tensors()
                self._batch = len(batch)
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()
