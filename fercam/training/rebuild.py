"""Rebuild a fernet `.tflite` as a Keras model, to fine-tune or distil from what ships.

Only the LiteRT file ships; run folders with their `.keras` models stay on the machine that
trained them (and were lost with it once). The file holds each convolution with its batch norm
folded in (int8 weights, dequantised here), and the dense layer with the calibration bias
folded in, so the rebuilt model computes what the app serves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fercam.litert import ModelError, interpreter


def rebuild_fernet(path: str | Path, *, faces: np.ndarray | None = None):
    """The logits model (unframed, calibration bias in the dense layer) of a fernet `.tflite`.

    With `faces` (float32 (N, 48, 48, 1), ideally augmented training batches) each batch norm is
    set to the statistics of its convolution on them, so that training mode, which normalises by
    the batch, starts from the same function as inference; without, inference is still exact."""
    return _rebuild(path, faces)[0]


def rebuild_serving(path: str | Path):
    """The whole serving model of a fernet `.tflite`: frame (if it has one), net, softmax."""
    from fercam.training.models import dtype_policy, framed, with_softmax

    logits, is_framed = _rebuild(path, None)
    with dtype_policy("float32"):
        return with_softmax(framed(logits) if is_framed else logits)


def _rebuild(path: str | Path, faces: np.ndarray | None) -> tuple:
    from fercam.training.models import FERNETS, dtype_policy, make_fernet

    weights, is_framed = _read(path)
    widths = tuple(kernel.shape[-1] for kernel, _ in weights[:-1])
    name = next((n for n, stages in FERNETS.items() if _widths(stages) == widths), None)
    if name is None:
        raise ModelError(f"{path}: not a fernet model (convolution widths {list(widths)})")
    with dtype_policy("float32"):  # as the file computes, also when called while training in bf16
        model = make_fernet(stages=FERNETS[name], name=name)
    convs, norms = _layers(model, "Conv2D"), _layers(model, "BatchNormalization")
    for conv, norm, (kernel, bias) in zip(convs, norms, weights):
        conv.set_weights([kernel])
        norm.set_weights([np.ones_like(bias), bias, np.zeros_like(bias), np.full_like(bias, 1 - norm.epsilon)])
    model.get_layer("logits").set_weights(list(weights[-1]))
    if faces is not None:
        _match_batch_statistics(model, convs, norms, faces)
    return model, is_framed


def _widths(stages) -> tuple[int, ...]:
    return tuple(width for width, convs in stages for _ in range(convs))


def _layers(model, kind: str) -> list:
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def _read(path: str | Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """([(Keras kernel, bias)] of each convolution then the dense layer, whether it is framed)."""
    loaded = interpreter(path, 1)
    ops = loaded._get_ops_details()  # the only API that lists a model's operators and their tensors
    tensors = {t["index"]: t for t in loaded.get_tensor_details()}

    def constant(index: int) -> np.ndarray:
        value = loaded.get_tensor(index).astype(np.float32)
        if tensors[index]["dtype"] == np.int8:  # int8 weights: one scale per output channel
            scales = tensors[index]["quantization_parameters"]["scales"]
            value = value * scales.reshape(-1, *([1] * (value.ndim - 1)))
        return value

    weights = []
    for op in ops:
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED"):
            kernel, bias = constant(op["inputs"][1]), constant(op["inputs"][2])
            # LiteRT keeps [out, h, w, in] and [out, in]; Keras wants [h, w, in, out] and [in, out]
            weights.append((kernel.transpose(1, 2, 3, 0) if kernel.ndim == 4 else kernel.T, bias))
    if not weights or weights[-1][0].ndim != 2:
        raise ModelError(f"{path}: not a fernet model (no convolutions ending in a dense layer)")
    return weights, any(op["op_name"] == "RESIZE_BILINEAR" for op in ops)


def _match_batch_statistics(model, convs, norms, faces: np.ndarray) -> None:
    """gamma = s, beta = bias + m, moving mean m and variance s^2: the same output at inference,
    and about the same in training mode, where the batch's own m and s stand in."""
    import keras

    probe = keras.Model(model.input, [conv.output for conv in convs])
    outputs = probe.predict(faces, batch_size=256, verbose=0)
    for norm, output in zip(norms, outputs):
        mean, std = output.mean(axis=(0, 1, 2)), output.std(axis=(0, 1, 2)) + 1e-3
        bias = norm.get_weights()[1]
        norm.set_weights([std, bias + mean, mean, std * std - norm.epsilon])
