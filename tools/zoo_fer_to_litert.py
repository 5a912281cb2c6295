"""Make `models/fer_mobilefacenet_2022july.tflite` from the zoo's `fer_mobilefacenet_2022july_int8.onnx`: the
network dequantised to float32 (`tools/dequantize_zoo_fer.py`), rebuilt op by op in TensorFlow and converted to
LiteRT, so the app runs it on XNNPACK like its other models.

The LiteRT model takes (N, 112, 112, 3) float32 BGR pixels 0-255 (the aligned faces as OpenCV gives them):
the zoo's normalisation ((x - 127.5) / 127.5) is inside, and its BGR -> RGB swap is folded into the first
convolution's weights. It has two named outputs: `logits`, the same (N, 7) RAF-DB logits as the ONNX graph, and
`features`, the (N, 512) penultimate features its last layer reads (what the combined reading's rule reads beside
the probabilities); the tool checks both against the ONNX graph on random faces before it writes the file.

Build-time only: needs the train extra (TensorFlow and `onnx`).
    PYTHONPATH=. python tools/zoo_fer_to_litert.py [IN_int8.onnx] [OUT.tflite] [--weights float16|int8]

`--weights` writes a variant for `tools/compare_second_opinion.py --litert` to measure, not the shipped file:
float16 weights, or int8 weights with float activations (LiteRT's dynamic-range quantisation, the int8 graph's
own weights quantised again). Their outputs differ from the ONNX graph's by more than the float check allows, so
the check is skipped for them; the comparison measures how much.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dequantize_zoo_fer import dequantize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IN = ROOT / "models" / "fer_mobilefacenet_2022july_int8.onnx"
OUT = ROOT / "models" / "fer_mobilefacenet_2022july.tflite"
SIZE = 112


def initializers(model: onnx.ModelProto) -> dict:
    """The graph's constant tensors (weights, biases, slopes) as arrays, by name."""
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def run_nodes(model: onnx.ModelProto, values: dict, nodes=None, weights: dict | None = None) -> dict:
    """Run the ONNX graph's Conv/PRelu/Add/Flatten/MatMul `nodes` (default: all of them, in order) in TensorFlow on
    `values` (tensors by name, the nodes' inputs among them) and return `values` with every node's output added.
    `weights`: every initializer by name (default: `initializers(model)`), for a caller that runs the graph many
    times or trains some of them as tf.Variables (`tools/zoo_last_layers.py`)."""
    graph = model.graph
    init = initializers(model) if weights is None else weights
    first_conv = next(n for n in graph.node if n.op_type == "Conv")

    def conv(x, node):
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        w = init[node.input[1]]
        if node is first_conv:
            w = w[:, ::-1]  # the model reads RGB; we give it BGR
        bias = init[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
        stride, pads, group = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]), a.get("group", 1)
        if any(pads):
            x = tf.pad(x, [[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]])
        strides = [1, stride[0], stride[1], 1]
        if group == 1:
            y = tf.nn.conv2d(x, tf.transpose(w, (2, 3, 1, 0)), strides, "VALID")
        elif group == w.shape[0] and w.shape[1] == 1:
            y = tf.nn.depthwise_conv2d(x, tf.transpose(w, (2, 3, 0, 1)), strides, "VALID")
        else:
            raise ValueError(f"{node.name}: grouped convolution with {group} groups is not handled")
        return tf.nn.bias_add(y, bias)

    def prelu(x, slope):
        alpha = tf.reshape(tf.cast(slope, tf.float32), [-1])
        return tf.nn.relu(x) + (-alpha) * tf.nn.relu(-x)  # the pattern the converter turns into one PRELU

    for node in graph.node if nodes is None else nodes:
        i = [values.get(name) for name in node.input]
        if node.op_type == "Conv":
            out = conv(i[0], node)
        elif node.op_type == "PRelu":
            out = prelu(i[0], init[node.input[1]])
        elif node.op_type == "Add":
            out = i[0] + (i[1] if i[1] is not None else init[node.input[1]])
        elif node.op_type == "Flatten":
            out = tf.reshape(i[0], [-1, int(np.prod(i[0].shape[1:]))])
        elif node.op_type == "MatMul":
            out = tf.matmul(i[0], init[node.input[1]])
        elif node.op_type == "Identity":
            out = i[0]
        else:
            raise ValueError(f"{node.op_type}: not an op this tool handles")
        values[node.output[0]] = out
    return values


def normalised(faces):
    """BGR pixels 0-255 as the zoo network's input: its normalisation ((x - 127.5) / 127.5)."""
    return (faces - 127.5) * (1 / 127.5)


def build(model: onnx.ModelProto):
    """A tf.function over NHWC BGR pixels that runs the ONNX graph's nodes and returns {"logits": the graph's
    output, "features": the input of its last MatMul}."""
    graph = model.graph

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="faces")])
    def run(faces):
        values = run_nodes(model, {graph.input[0].name: normalised(faces)})
        return {"logits": values[graph.output[0].name], "features": values[feature_tensor(model)]}

    return run


def feature_tensor(model: onnx.ModelProto) -> str:
    """The name of the penultimate features: the input of the graph's last MatMul (its classifier layer)."""
    return [n for n in model.graph.node if n.op_type == "MatMul"][-1].input[0]


def convert(model: onnx.ModelProto, weights: str = "float32") -> bytes:
    """The LiteRT model, saved through a SavedModel so that it keeps its signature: inputs and outputs by name;
    `weights` float32 (shipped), float16 or int8 (dynamic range)."""
    module = tf.Module()
    module.run = build(model)
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures={"serving_default": module.run.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if weights != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16] if weights == "float16" else []
        return converter.convert()


def check(tflite: bytes, model: onnx.ModelProto) -> dict[str, float]:
    """Largest difference of each output between the LiteRT model and OpenCV running the float ONNX graph, on
    random faces, the LiteRT outputs read by their signature names (the contract `fercam.second_opinion` declares)."""
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    faces = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    net = cv2.dnn.readNetFromONNX(np.frombuffer(model.SerializeToString(), np.uint8))
    net.setInput(cv2.dnn.blobFromImages(list(faces), 1 / 127.5, (SIZE, SIZE), (127.5,) * 3, swapRB=True))
    producer = next(n for n in model.graph.node if feature_tensor(model) in n.output)
    features, logits = net.forward([f"onnx_node!{producer.name}", net.getLayerNames()[-1]])
    expected = {"logits": logits, "features": features.reshape(len(faces), -1)}
    got = Interpreter(model_content=tflite).get_signature_runner()(faces=faces.astype(np.float32))
    return {name: float(np.abs(got[name] - value).max()) for name, value in expected.items()}


def main(argv: list[str]) -> int:
    weights = argv[argv.index("--weights") + 1] if "--weights" in argv else "float32"
    if weights not in ("float32", "float16", "int8"):
        print(f"--weights must be float32, float16 or int8, not {weights}", file=sys.stderr)
        return 2
    paths = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] != "--weights")]
    src, dst = (Path(paths[0]), Path(paths[1])) if len(paths) == 2 else (IN, OUT)
    if weights != "float32" and dst == OUT:
        print("a variant is for measuring: give it a path of its own, not the shipped file's", file=sys.stderr)
        return 2
    model = dequantize(onnx.load(str(src)))
    tflite = convert(model, weights)
    differences = check(tflite, model)
    if weights == "float32" and max(differences.values()) > 1e-3:
        print(f"LiteRT and ONNX outputs differ by {differences}: not written", file=sys.stderr)
        return 1
    dst.write_bytes(tflite)
    within = ", ".join(f"{name} within {value:.1e}" for name, value in differences.items())
    print(f"{dst}: {len(tflite) / 1e6:.2f} MB, {within} of the ONNX graph")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
