"""The benchmark set's networks, built with onnx.helper and seeded numpy weights (no torch), so
anyone can make them again, bit for bit:

    resnet18()       ResNet-18, 1x3x224x224 -> 1000 (BasicBlocks, BatchNorm, max pool)
    mobilenet_v2()   MobileNetV2 1.0, 1x3x224x224 -> 1000 (inverted residuals, depthwise, ReLU6)
    bert_encoder()   BERT-style encoder: token + position embeddings, 4 layers, hidden 256,
                     4 heads, FFN 1024 (GELU), sequence 128; int64 token ids -> 1x128x256
    lstm()           one LSTM layer, input 128, hidden 256, sequence 64, batch 1 -> last hidden
    mlp()            784 -> 1024 -> 1024 -> 10 with ReLU, batch 1

Weights are He-scaled normal draws and BatchNorm statistics near 1 and 0, so activations stay
in a normal range and results can be compared with onnxruntime at the model tolerance.
``BUILDERS`` maps each name to its builder; ``feeds(model)`` makes seeded inputs for a model.
Importable from tests (``sys.path`` gets benchmarks/) and used by benchmarks/run.py.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
VOCAB = 1000          # bert_encoder's token ids are in [0, VOCAB)


class _Graph:
    """Nodes and seeded initializers of one network under construction."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def const(self, hint: str, array) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def normal(self, hint: str, shape, std: float) -> str:
        return self.const(hint, (self.rng.standard_normal(shape) * std).astype(np.float32))

    def op(self, op: str, inputs: list, hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    # --- layers ---------------------------------------------------------------------------
    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int = 1,
                groups: int = 1, act: str | None = "relu") -> str:
        fan_in = cin // groups * k * k
        w = self.normal("w", (cout, cin // groups, k, k), math.sqrt(2.0 / fan_in))
        y = self.op("Conv", [x, w], "conv", kernel_shape=[k, k], strides=[stride, stride],
                    pads=[k // 2] * 4, group=groups)
        r = self.rng
        bn = [self.const("gamma", r.uniform(0.5, 1.0, cout).astype(np.float32)),
              self.const("beta", r.uniform(-0.1, 0.1, cout).astype(np.float32)),
              self.const("mean", r.uniform(-0.1, 0.1, cout).astype(np.float32)),
              self.const("var", r.uniform(0.8, 1.2, cout).astype(np.float32))]
        y = self.op("BatchNormalization", [y] + bn, "bn", epsilon=1e-5)
        if act == "relu":
            return self.op("Relu", [y])
        if act == "relu6":
            return self.op("Clip", [y, self.const("zero", np.float32(0)),
                                    self.const("six", np.float32(6))], "relu6")
        return y

    def dense(self, x: str, cin: int, cout: int) -> str:
        """x [..., cin] -> [..., cout] (MatMul + Add)."""
        w = self.normal("w", (cin, cout), 1.0 / math.sqrt(cin))
        b = self.normal("b", (cout,), 0.02)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def classifier(self, x: str, channels: int, classes: int = 1000) -> str:
        x = self.op("Flatten", [self.op("GlobalAveragePool", [x], "gap")], axis=1)
        w = self.normal("fc_w", (classes, channels), 1.0 / math.sqrt(channels))
        b = self.normal("fc_b", (classes,), 0.01)
        return self.op("Gemm", [x, w, b], "logits", transB=1)

    def layer_norm(self, x: str, width: int) -> str:
        return self.op("LayerNormalization", [
            x, self.const("ln_g", np.ones(width, np.float32)),
            self.const("ln_b", np.zeros(width, np.float32))], "ln", axis=-1, epsilon=1e-12)

    def model(self, name: str, inputs: list, output: str, shape: list) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs,
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="nnbuild-benchmarks")
        model.ir_version = 8                 # what older onnxruntime releases read
        onnx.checker.check_model(model)
        return model


def _image_input(name: str = "data"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, 224, 224])


def resnet18(seed: int = 0) -> onnx.ModelProto:
    g = _Graph(seed)
    x = g.conv_bn("data", 3, 64, 7, stride=2)
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = g.conv_bn(x, cin, cout, 3, stride)
            y = g.conv_bn(y, cout, cout, 3, act=None)
            shortcut = x if stride == 1 and cin == cout else g.conv_bn(x, cin, cout, 1, stride,
                                                                       act=None)
            x = g.op("Relu", [g.op("Add", [y, shortcut])])
            cin = cout
    return g.model("resnet18", [_image_input()], g.classifier(x, 512), [1, 1000])


def mobilenet_v2(seed: int = 0) -> onnx.ModelProto:
    g = _Graph(seed)
    x = g.conv_bn("data", 3, 32, 3, stride=2, act="relu6")
    cin = 32
    for expand, cout, repeats, first_stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                                                (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                                                (6, 320, 1, 1)]:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            hidden = cin * expand
            y = g.conv_bn(x, cin, hidden, 1, act="relu6") if expand != 1 else x
            y = g.conv_bn(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")
            y = g.conv_bn(y, hidden, cout, 1, act=None)
            x = g.op("Add", [x, y]) if stride == 1 and cin == cout else y
            cin = cout
    x = g.conv_bn(x, cin, 1280, 1, act="relu6")
    return g.model("mobilenet_v2", [_image_input()], g.classifier(x, 1280), [1, 1000])


def bert_encoder(layers: int = 4, hidden: int = 256, heads: int = 4, ffn: int = 1024,
                 seq: int = 128, seed: int = 0) -> onnx.ModelProto:
    g = _Graph(seed)
    head = hidden // heads
    tokens = g.normal("tok_emb", (VOCAB, hidden), 0.5)
    positions = g.normal("pos_emb", (1, seq, hidden), 0.5)
    x = g.op("Add", [g.op("Gather", [tokens, "input_ids"], "embed", axis=0), positions])
    x = g.layer_norm(x, hidden)
    split_shape = g.const("split_shape", np.array([1, seq, heads, head], np.int64))
    merge_shape = g.const("merge_shape", np.array([1, seq, hidden], np.int64))
    scale = g.const("scale", np.float32(1.0 / math.sqrt(head)))
    for _ in range(layers):
        def heads_of(t, perm):
            return g.op("Transpose", [g.op("Reshape", [t, split_shape])], perm=perm)
        q = heads_of(g.dense(x, hidden, hidden), [0, 2, 1, 3])        # 1 x H x S x D
        k = heads_of(g.dense(x, hidden, hidden), [0, 2, 3, 1])        # 1 x H x D x S
        v = heads_of(g.dense(x, hidden, hidden), [0, 2, 1, 3])
        scores = g.op("Mul", [g.op("MatMul", [q, k]), scale])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]),
                                   merge_shape])
        x = g.layer_norm(g.op("Add", [x, g.dense(context, hidden, hidden)]), hidden)
        h = g.dense(x, hidden, ffn)                                   # GELU, erf form
        gelu = g.op("Mul", [g.op("Mul", [h, g.op("Add", [
            g.op("Erf", [g.op("Div", [h, g.const("sqrt2", np.float32(math.sqrt(2.0)))])]),
            g.const("one", np.float32(1.0))])]), g.const("half", np.float32(0.5))])
        x = g.layer_norm(g.op("Add", [x, g.dense(gelu, ffn, hidden)]), hidden)
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, seq])
    return g.model("bert_encoder", [ids], x, [1, seq, hidden])


def lstm(inputs: int = 128, hidden: int = 256, seq: int = 64, seed: int = 0) -> onnx.ModelProto:
    g = _Graph(seed)
    std = 1.0 / math.sqrt(hidden)
    w = g.normal("W", (1, 4 * hidden, inputs), std)
    r = g.normal("R", (1, 4 * hidden, hidden), std)
    b = g.normal("B", (1, 8 * hidden), std)
    out = "y_h"
    g.nodes.append(helper.make_node("LSTM", ["x", w, r, b], ["", out], name="lstm",
                                    hidden_size=hidden))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, 1, inputs])
    return g.model("lstm", [x], out, [1, 1, hidden])


def mlp(seed: int = 1) -> onnx.ModelProto:
    g = _Graph(seed)
    x, sizes = "x", [784, 1024, 1024, 10]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = g.normal("w", (b, a), 1.0 / math.sqrt(a))
        x = g.op("Gemm", [x, w, g.normal("b", (b,), 0.1)], "fc", transB=1)
        if i < len(sizes) - 2:
            x = g.op("Relu", [x])
    return g.model("mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])], x,
                   [1, 10])


BUILDERS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2, "bert_encoder": bert_encoder,
            "lstm": lstm, "mlp": mlp}


def feeds(model: onnx.ModelProto, seed: int = 0) -> dict:
    """Seeded inputs: standard normal floats, token ids in [0, VOCAB)."""
    rng = np.random.default_rng(seed)
    out = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value for d in t.shape.dim]
        out[vi.name] = (rng.integers(0, VOCAB, shape).astype(dtype)
                        if np.issubdtype(dtype, np.integer)
                        else rng.standard_normal(shape).astype(dtype))
    return out
