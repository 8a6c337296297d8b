#!/usr/bin/python3
"""Set-up step (never run by hetal itself): writes the convolutional trunk of a Keras
MobileNetV2 dumped by dump_mobilenet_v2.js as an ONNX graph that OpenCV 4.6's DNN module reads
(opset 10: Clip and Pad bounds as attributes). The classifier head is dropped; the outputs are
the global-average-pooled activations of the layers the manifest lists, named
"<layer>_gap" (N x channels). Height and width are free (multiples of 32 keep every stride-2
stage's padding as exported).

Usage: keras_to_onnx.py MANIFEST.json WEIGHTS.bin OUT.onnx
"""
import json
import math
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(manifest_path, weights_path, out_path):
    manifest = json.load(open(manifest_path))
    raw = open(weights_path, "rb").read()
    weights = {w["name"]: np.frombuffer(raw, dtype=np.float32, count=w["count"], offset=w["offset"]).reshape(w["shape"])
               for w in manifest["weights"]}
    wanted = manifest["layers"]
    nodes, inits = [], []
    channels = {}

    def constant(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array.astype(np.float32)), name))
        return name

    for layer in manifest["topology"]["config"]["layers"]:
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        inputs = [x[0] for x in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            channels[name] = cfg["batch_input_shape"][3]
            input_name = name
            continue
        if kind in ("AveragePooling2D", "Flatten", "Dense", "Dropout"):
            continue  # the classifier head: not part of the features
        x = inputs[0]
        c = channels[x]
        if kind == "ZeroPadding2D":
            (top, bottom), (left, right) = cfg["padding"]
            nodes.append(helper.make_node("Pad", [x], [name], mode="constant",
                                          pads=[0, 0, top, left, 0, 0, bottom, right]))
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            kh, kw = cfg["kernel_size"]
            sh, sw = cfg["strides"]
            if kind == "Conv2D":
                kernel = weights[name + "/kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
                group, c = 1, kernel.shape[0]
            else:
                dk = weights[name + "/depthwise_kernel"]
                group, c = c, c * dk.shape[3]
                kernel = dk.transpose(2, 3, 0, 1).reshape(c, 1, kh, kw)
            if cfg["padding"] == "same":
                # TF's 'same' on an even size: the extra row/column goes at the end.
                pad_h, pad_w = max(kh - sh, 0), max(kw - sw, 0)
                pads = [pad_h // 2, pad_w // 2, pad_h - pad_h // 2, pad_w - pad_w // 2]
            else:
                pads = [0, 0, 0, 0]
            ins = [x, constant(name + "_W", kernel)]
            if cfg.get("use_bias"):
                ins.append(constant(name + "_B", weights[name + "/bias"]))
            nodes.append(helper.make_node("Conv", ins, [name], kernel_shape=[kh, kw], strides=[sh, sw],
                                          pads=pads, group=group))
        elif kind == "BatchNormalization":
            params = [constant(name + suffix, weights[name + "/" + key]) for suffix, key in
                      (("_g", "gamma"), ("_b", "beta"), ("_m", "moving_mean"), ("_v", "moving_variance"))]
            nodes.append(helper.make_node("BatchNormalization", [x] + params, [name], epsilon=cfg["epsilon"]))
        elif kind == "ReLU":
            top = cfg.get("max_value")
            nodes.append(helper.make_node("Clip", [x], [name], min=0.0, max=float(top) if top is not None else 3.4e38))
        elif kind == "Add":
            nodes.append(helper.make_node("Add", inputs, [name]))
        else:
            raise SystemExit(f"keras_to_onnx: unsupported layer {kind} ({name})")
        channels[name] = c

    outputs = []
    for name in wanted:
        if name not in channels:
            raise SystemExit(f"keras_to_onnx: no layer named {name}")
        nodes.append(helper.make_node("GlobalAveragePool", [name], [name + "_pool"]))
        nodes.append(helper.make_node("Flatten", [name + "_pool"], [name + "_gap"], axis=1))
        outputs.append(helper.make_tensor_value_info(name + "_gap", TensorProto.FLOAT, ["N", channels[name]]))
    graph = helper.make_graph(nodes, "mobilenet_v2_features",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)], producer_name="hetal")
    model.ir_version = 5
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    print(f"{out_path}: {len(nodes)} nodes, outputs " + ", ".join(f"{n}_gap ({channels[n]})" for n in wanted))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
