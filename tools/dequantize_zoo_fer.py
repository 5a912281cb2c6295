"""The OpenCV-zoo RAF-DB expression model with its int8 weights dequantised to float32 and its activations left
in float (no quantise/dequantise steps): the first step of `tools/zoo_fer_to_litert.py`, or on its own an ONNX
file OpenCV runs twice as fast as the int8 graph on CPUs without VNNI (AMD EPYC here), on batches of faces.

Its outputs differ from the int8 graph's only by the activations' rounding; `tools/compare_second_opinion.py`
measures how much on `wild_faces_dev` (models/README.md has the figures).

Build-time only: needs the `onnx` package (`pip install onnx`), which FER Cam does not need at run time.
    python tools/dequantize_zoo_fer.py [IN_int8.onnx] [OUT_fp32.onnx]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
IN = ROOT / "models" / "fer_mobilefacenet_2022july_int8.onnx"
OUT = Path("fer_mobilefacenet_2022july_fp32.onnx")


def dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    alias: dict[str, str] = {}  # a quantised tensor's name -> the float tensor that stands for it
    nodes, weights = [], {}

    def name(tensor: str) -> str:
        return alias.get(tensor, tensor)

    def real(q: str, scale: str, zero: str) -> np.ndarray:
        """A quantised initialiser as float32 (per-tensor or per-output-channel scale)."""
        s, z = init[scale].astype(np.float32), init[zero].astype(np.float32)
        shape = (-1,) + (1,) * (init[q].ndim - 1) if s.ndim else ()
        return ((init[q].astype(np.float32) - z.reshape(shape)) * s.reshape(shape)).astype(np.float32)

    def constant(tensor_name: str, value: np.ndarray) -> str:
        weights[tensor_name] = numpy_helper.from_array(value.astype(np.float32), tensor_name)
        return tensor_name

    for node in graph.node:
        i, o = list(node.input), list(node.output)
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            alias[o[0]] = name(i[0])  # the float value flows on under the quantised name
        elif node.op_type == "QLinearConv":
            w = constant(f"{o[0]}_w", real(i[3], i[4], i[5]))
            ins = [name(i[0]), w]
            if len(i) > 8:  # int32 bias, scaled by input scale x weight scale
                scale = init[i[1]].astype(np.float32) * init[i[4]].astype(np.float32)
                ins.append(constant(f"{o[0]}_b", init[i[8]].astype(np.float32) * scale))
            nodes.append(helper.make_node("Conv", ins, [o[0]], name=node.name, **attributes(node)))
        elif node.op_type == "QLinearMatMul":
            w = constant(f"{o[0]}_w", real(i[3], i[4], i[5]))
            nodes.append(helper.make_node("MatMul", [name(i[0]), w], [o[0]], name=node.name))
        elif node.op_type == "QLinearAdd":
            b = name(i[3]) if i[3] not in init else constant(f"{o[0]}_b", real(i[3], i[4], i[5]))
            nodes.append(helper.make_node("Add", [name(i[0]), b], [o[0]], name=node.name))
        else:
            node_copy = onnx.NodeProto()
            node_copy.CopyFrom(node)
            node_copy.ClearField("input")
            node_copy.input.extend(name(x) for x in i)
            nodes.append(node_copy)
    output = graph.output[0].name
    if name(output) != output:  # the last DequantizeLinear became an alias: name the float result again
        nodes.append(helper.make_node("Identity", [name(output)], [output]))
    used = {x for n in nodes for x in n.input}
    kept = [numpy_helper.from_array(v, k) for k, v in init.items() if k in used and v.dtype == np.float32]
    data = helper.make_tensor_value_info(graph.input[0].name, onnx.TensorProto.FLOAT, ["N", 3, 112, 112])
    label = helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, ["N", 7])
    new = helper.make_graph(nodes, "fer_mobilefacenet_fp32", [data], [label], kept + list(weights.values()))
    result = helper.make_model(new, opset_imports=[helper.make_opsetid("", 11)], producer_name="fercam")
    result.ir_version = 6
    onnx.checker.check_model(result)
    return result


def attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def main(argv: list[str]) -> int:
    src, dst = (Path(argv[0]), Path(argv[1])) if len(argv) == 2 else (IN, OUT)
    onnx.save(dequantize(onnx.load(str(src))), str(dst))
    print(f"{dst}: {dst.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
