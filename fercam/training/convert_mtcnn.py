"""Convert the `mtcnn` package's PNet/RNet/ONet to LiteRT, so the app can detect faces without TensorFlow.

Build-time tool: `python -m fercam.training.convert_mtcnn [--out models/]`. Each network goes
Keras 3 -> SavedModel -> TFLiteConverter (the path that converts correctly here) and is then
checked against Keras on random input, because a wrong conversion would otherwise go unnoticed.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.training import INSTALL_HINT, MissingExtraError, require_tensorflow

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
_DEFAULT_OUT = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class NetSpec:
    """One MTCNN network: its name in the `mtcnn` package (class and weights), and its input shapes."""

    name: str
    signature: tuple[int | None, ...]  # what the LiteRT model accepts (None = dynamic)
    check_shapes: tuple[tuple[int, ...], ...]  # concrete inputs used to prove Keras == LiteRT


NETS = (
    NetSpec("pnet", (None, None, None, 3), ((1, 12, 12, 3), (1, 57, 91, 3), (2, 240, 320, 3))),
    NetSpec("rnet", (None, 24, 24, 3), ((1, 24, 24, 3), (37, 24, 24, 3))),
    NetSpec("onet", (None, 48, 48, 3), ((1, 48, 48, 3), (13, 48, 48, 3))),
)


def load_keras_net(name: str):
    """The package's network `name` with its shipped weights (the reference the app must match)."""
    require_tensorflow()
    try:
        import mtcnn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"converting MTCNN needs the mtcnn package: {INSTALL_HINT}") from exc
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    model = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]()
    model.build()
    model.set_weights(load_weights(f"{name}.lz4"))
    return model


def convert(model, signature: tuple[int | None, ...]) -> bytes:
    """Keras model -> LiteRT flatbuffer, with a (partly) dynamic input signature."""
    from fercam.training.export import to_litert

    return to_litert(model, input_signature=signature)


def run_litert(model_bytes: bytes, batch: np.ndarray) -> list[np.ndarray]:
    """Outputs of the LiteRT model for `batch`, ordered by output name (matches Keras' output order)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    outputs = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
    return [interpreter.get_tensor(d["index"]) for d in outputs]


def max_difference(model, model_bytes: bytes, shapes: tuple[tuple[int, ...], ...]) -> float:
    """The largest |Keras - LiteRT| over random inputs of the given shapes (values in the [-1, 1] range)."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in shapes:
        batch = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        expected = [np.asarray(t) for t in model(batch)]
        got = run_litert(model_bytes, batch)
        if [e.shape for e in expected] != [g.shape for g in got]:
            raise RuntimeError(f"output shapes differ: {[e.shape for e in expected]} vs {[g.shape for g in got]}")
        worst = max(worst, *(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True)))
    return worst


def convert_all(out_dir: Path) -> list[Path]:
    """Convert, verify and write all three networks; raise if any disagrees with Keras."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in NETS:
        model = load_keras_net(spec.name)
        model_bytes = convert(model, spec.signature)
        error = max_difference(model, model_bytes, spec.check_shapes)
        if error >= TOLERANCE:
            raise RuntimeError(f"{spec.name}: LiteRT differs from Keras by {error:.2e} (>= {TOLERANCE})")
        path = out_dir / f"mtcnn_{spec.name}.tflite"
        path.write_bytes(model_bytes)
        log.info("%s: %d bytes, max |Keras - LiteRT| = %.1e", path, len(model_bytes), error)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=_DEFAULT_OUT, help="folder for mtcnn_{pnet,rnet,onet}.tflite")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert_all(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
