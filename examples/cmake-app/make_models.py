"""Write the two models of this example into models/ (seeded, so the files are reproducible).

    python make_models.py [OUT_DIR]

models/classifier.onnx: the quick-start image classifier (../make_example_model.py),
    input "image" f32[1,3,32,32] -> "probs" f32[1,10].
models/scorer.onnx: a small MLP with a symbolic batch, input "features" f32[N,16] ->
    "scores" f32[N,3]; CMakeLists.txt binds N with SHAPES "features=4x16".
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_example_model import make_classifier  # noqa: E402


def make_scorer(seed: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)
             for name, shape in (("fc1.w", (16, 32)), ("fc1.b", (32,)),
                                 ("fc2.w", (32, 3)), ("fc2.b", (3,)))]
    nodes = [
        helper.make_node("MatMul", ["features", "fc1.w"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "fc1.b"], ["h1"], name="fc1.bias"),
        helper.make_node("Tanh", ["h1"], ["h2"], name="tanh"),
        helper.make_node("MatMul", ["h2", "fc2.w"], ["s0"], name="fc2"),
        helper.make_node("Add", ["s0", "fc2.b"], ["scores"], name="fc2.bias"),
    ]
    graph = helper.make_graph(
        nodes, "scorer",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="nnbuild-example")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "models")
    os.makedirs(out, exist_ok=True)
    for name, model in (("classifier", make_classifier()), ("scorer", make_scorer())):
        path = os.path.join(out, f"{name}.onnx")
        onnx.save(model, path)
        print(f"wrote {path}")
