"""QuantizeLinear / DequantizeLinear (per tensor, per axis), DynamicQuantizeLinear,
MatMulInteger and QLinearMatMul match onnxruntime."""
import numpy as np
from onnx import helper

from helpers import check_against_onnxruntime, make_model

F32, U8, I8 = np.float32, np.uint8, np.int8


def test_quantize_dequantize_per_tensor_and_axis(cache_dir):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("QuantizeLinear", ["x", "s_axis", "z_axis"], ["q_axis"], axis=1),
             helper.make_node("DequantizeLinear", ["q_axis", "s_axis", "z_axis"], ["dq_axis"],
                              axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"])]
    inits = {"s": np.array(0.05, F32), "z": np.array(-3, I8),
             "s_axis": np.array([0.02, 0.1, 0.5], F32), "z_axis": np.array([0, 128, 250], U8)}
    x = np.random.default_rng(11).standard_normal((2, 3, 4)).astype(F32) * 4
    x[0, 0, :2] = [0.025, 0.075]          # halfway cases round to even
    model = make_model(nodes, {"x": (F32, [2, 3, 4])}, ["q", "q_axis", "dq_axis", "dq"],
                       initializers=inits, opset=13)
    check_against_onnxruntime(model, cache_dir, {"x": x})


def test_dynamic_quantize_and_integer_matmuls(cache_dir):
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["mmi"]),
             helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                              ["qmm"])]
    inits = {"az": np.array(3, U8), "bz": np.array(120, U8), "as": np.array(0.02, F32),
             "bs": np.array(0.03, F32), "ys": np.array(0.1, F32), "yz": np.array(100, U8)}
    rng = np.random.default_rng(12)
    feeds = {"x": rng.standard_normal((3, 4)).astype(F32),
             "a": rng.integers(0, 256, (2, 3, 5)).astype(U8),
             "b": rng.integers(0, 256, (5, 4)).astype(U8)}
    model = make_model(nodes, {"x": (F32, [3, 4]), "a": (U8, [2, 3, 5]), "b": (U8, [5, 4])},
                       ["xq", "xs", "xz", "mmi", "qmm"], initializers=inits, opset=13)
    check_against_onnxruntime(model, cache_dir, feeds)
