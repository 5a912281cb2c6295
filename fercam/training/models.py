"""Model builders. Each takes raw 48x48 gray pixels (0..255) and returns class logits.

Preprocessing lives inside the model so that training, evaluation and serving cannot
disagree about scaling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import keras
from keras import layers

from fercam.types import EMOTIONS

INPUT_SHAPE = (48, 48, 1)

# Training's RandomZoom((-0.15, 0.1)) shows the net faces 2.5% closer on average (47 of 48
# pixels); serving at about that framing (the centre 46 pixels, scaled back to 48) scored
# 0.6-1.5 points higher on validation for each of five trained models.
SERVING_CROP = 46

# (stage widths, convolutions per stage) of our own compact residual CNN.
FERNET_STAGES = ((32, 1), (64, 2), (128, 2), (256, 2))
# Twice as wide (4x the parameters and compute): too slow to serve, a teacher to distil from.
FERNET_WIDE_STAGES = tuple((2 * width, convs) for width, convs in FERNET_STAGES)


def make_fernet(
    *, stages: tuple[tuple[int, int], ...] = FERNET_STAGES, dropout: float = 0.4, name: str = "fernet"
) -> keras.Model:
    """A small VGG-style net with residual stages: cheap at 48x48, fast under LiteRT."""
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for i, (width, convs) in enumerate(stages):
        x = _residual_stage(x, width, convs)
        if i < len(stages) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(len(EMOTIONS), name="logits", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, logits, name=name)


def _conv_bn_relu(x, width: int):
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _residual_stage(x, width: int, convs: int):
    x = _conv_bn_relu(x, width)
    if convs < 2:
        return x
    shortcut = x
    for _ in range(convs - 1):
        x = _conv_bn_relu(x, width)
    return layers.Add()([shortcut, x])


# keras.applications backbones, trained from scratch on gray faces replicated to RGB.
# Each entry: (constructor, per-channel mean, per-channel std) for the backbone's own scaling.
_CAFFE = ((103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
_TORCH = ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255))
_TF = ((127.5,) * 3, (127.5,) * 3)


def _backbones() -> dict[str, tuple[Callable, tuple]]:
    apps = keras.applications
    return {
        "vgg16": (apps.VGG16, _CAFFE),
        "resnet50": (apps.ResNet50, _CAFFE),
        "densenet121": (apps.DenseNet121, _TORCH),
        "mobilenetv2": (apps.MobileNetV2, _TF),
    }


def make_backbone(name: str, *, weights: str | None = None, dropout: float = 0.4) -> keras.Model:
    """A keras.applications backbone with a 7-way head; `weights` is a local .h5 file or None."""
    constructor, (mean, std) = _backbones()[name]
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    rgb = layers.Concatenate()([inputs, inputs, inputs])
    x = layers.Normalization(mean=mean, variance=[s * s for s in std])(rgb)
    base = constructor(include_top=False, weights=weights, input_shape=(48, 48, 3), pooling="avg")
    x = layers.Dropout(dropout)(base(x))
    logits = layers.Dense(len(EMOTIONS), name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)


FERNETS = {"fernet": FERNET_STAGES, "fernet-wide": FERNET_WIDE_STAGES}
MODEL_NAMES = (*FERNETS, "vgg16", "resnet50", "densenet121", "mobilenetv2")


def make_model(name: str, *, weights: str | None = None) -> keras.Model:
    if name in FERNETS:
        return make_fernet(stages=FERNETS[name], name=name)
    if name in MODEL_NAMES:
        return make_backbone(name, weights=weights)
    raise ValueError(f"unknown model {name!r}: choose from {', '.join(MODEL_NAMES)}")


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy set to `name` meanwhile, restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: keras.Model) -> keras.Model:
    """The same weights in an all-float32 graph: what LiteRT export expects after mixed-precision training."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    with dtype_policy("float32"):
        copy = make_model(model.name)
    copy.set_weights(model.get_weights())
    return copy


def framed(logits_model: keras.Model) -> keras.Model:
    """`logits_model` behind a centre crop to the framing it was trained at (see SERVING_CROP)."""
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = layers.CenterCrop(SERVING_CROP, SERVING_CROP, name="frame")(inputs)
    x = layers.Resizing(*INPUT_SHAPE[:2], interpolation="bilinear", name="rescale")(x)
    # training=False: a nested model would otherwise export its dropout as random ops LiteRT lacks
    return keras.Model(inputs, logits_model(x, training=False), name=logits_model.name)


def with_softmax(logits_model: keras.Model, *, logit_bias=None) -> keras.Model:
    """The serving model: logits (+ a calibrated per-class bias) -> probabilities."""
    x = logits_model.output
    if logit_bias is not None:
        x = layers.Add(name="calibrate")([x, keras.ops.convert_to_tensor([list(map(float, logit_bias))])])
    probs = layers.Softmax(name="probs")(x)
    return keras.Model(logits_model.input, probs, name=logits_model.name)
