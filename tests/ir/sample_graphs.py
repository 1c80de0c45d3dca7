"""IR graphs that exercise every feature of the text and JSON forms, built in Python so the
round-trip tests do not depend on the parser they check."""
from __future__ import annotations

import numpy as np

from nnbuild import dtypes
from nnbuild.ir import Graph, Node, TensorType
from nnbuild.ir.graph import splat

try:
    import ml_dtypes
    BF16 = ml_dtypes.bfloat16
except ImportError:  # pragma: no cover
    BF16 = None

F32 = dtypes.FLOAT32

# Names a model may use that the text form has to quote or otherwise keep intact.
ODD_NAMES = ["gpu_0/data_0", "a b", 'say "hi"', "0.weight", "1e5", "inf", "nan", "12",
             "-1.x", "_", "back\\slash", "new\nline", "tab\there", "#hash", "%x", "@c",
             "a,b", "x::y", "ünïcödé", "{braces}", "(parens)", "[1,2]", "a=b", ""]
ODD_NAMES.remove("")       # the empty string means "omitted"; it cannot name a value


def constant_cases() -> dict:
    """name -> array: small and large (> SMALL_CONSTANT elements) of several dtypes, one-value
    fills, scalars, empty tensors and the awkward float values."""
    rng = np.random.default_rng(0)
    cases = {
        "f32_small": np.array([[0.5, -1.25], [3.0, 1e-7]], np.float32),
        "f32_large": rng.standard_normal((5, 7)).astype(np.float32),
        "f32_special": np.array([np.inf, -np.inf, np.nan, -0.0, 3.4028235e38, 1e-45], np.float32),
        "f32_scalar": np.array(2.5, np.float32),
        "f32_empty": np.zeros((0, 3), np.float32),
        "f32_splat": splat(0.1, np.float32, (3, 4)),
        "f32_splat_nan": splat(np.nan, np.float32, (2, 2)),
        "f16_small": np.array([1.5, -65504.0, np.inf, 6e-8], np.float16),
        "f16_large": rng.standard_normal(40).astype(np.float16),
        "f16_splat": splat(-2.0, np.float16, (8,)),
        "f64_small": np.array([0.1, 1 / 3, -1e300], np.float64),
        "f64_large": rng.standard_normal((3, 3, 3)),
        "i64_small": np.array([-(1 << 63), (1 << 63) - 1, 0], np.int64),
        "i64_large": np.arange(-50, 50, dtype=np.int64).reshape(10, 10),
        "i64_splat": splat(-1, np.int64, (4, 1, 2)),
        "i64_scalar": np.array(7, np.int64),
        "i32_small": np.array([-(1 << 31), (1 << 31) - 1], np.int32),
        "i8_small": np.array([-128, 127], np.int8),
        "u8_large": np.arange(40, dtype=np.uint8),
        "u64_small": np.array([(1 << 64) - 1], np.uint64),
        "bool_small": np.array([True, False, True]),
        "bool_large": rng.integers(0, 2, (4, 5)).astype(bool),
        "bool_splat": splat(True, np.bool_, (2, 3)),
    }
    if BF16 is not None:
        cases["bf16_small"] = np.array([1.5, -2.0, 3e38], BF16)
        cases["bf16_large"] = np.arange(20).astype(BF16)
        cases["bf16_splat"] = splat(0.5, BF16, (2, 2))
    return cases


def attribute_cases() -> dict:
    """Every kind of attribute value the frontend produces, plus bools."""
    return {
        "int": 3, "negative": -7, "big": (1 << 62), "zero": 0,
        "float": 0.5, "float_whole": 1.0, "float_tiny": 1e-5, "float_huge": 1.5e20,
        "float_inf": float("inf"), "float_neg_inf": float("-inf"),
        "string": "NOTSET", "string_odd": 'a "quoted" \\ string\nwith {braces}, [brackets] #',
        "string_empty": "",
        "ints": [1, -2, 3], "floats": [0.25, -1.0, 2e-3], "strings": ["a", "b c", ""],
        "empty_list": [],
        "tensor": np.array([1, 2, 3], np.int64),
        "tensor_f32": np.array([[0.5, 1.5]], np.float32),
        "tensor_scalar": np.array(1.0, np.float32),
        "tensor_large": np.arange(30, dtype=np.float32).reshape(5, 6),
        "tensor_bool": np.array([True, False]),
        "flag": True,
    }


def feature_graph() -> Graph:
    """One graph with every feature: odd names, constants of every kind, attributes of every
    kind, a custom domain, multiple outputs, omitted inputs and outputs, fused sources."""
    g = Graph(name="feature test", opsets={"": 17, "com.microsoft": 1})

    def value(name, dtype=F32, shape=(2, 3)):
        g.types[name] = TensorType(dtype, tuple(shape))
        return name

    g.inputs = [value("gpu_0/data_0"), value("a b"), value('say "hi"', dtypes.INT64, (3,))]
    for name, array in constant_cases().items():
        g.add_constant(name, array)
    g.nodes = [
        Node("Add", ("gpu_0/data_0", "a b"), (value("sum 1"),), {}, ("add/1",)),
        Node("Attrs", ("sum 1", "f32_small", "i64_small"), (value("0.weight"),),
             attribute_cases(), ("attrs",), "com.microsoft"),
        # omitted optional input and output; the node stands for three fused ONNX nodes
        Node("Clip", ("0.weight", "", "f32_scalar"), (value("clipped"),), {},
             ("conv1", "bn 1", 'relu "1"')),
        Node("Dropout", ("clipped",), (value("dropped"), ""), {"seed": 0}, ()),
        Node("Split", ("dropped",), (value("left", shape=(2, 1)), "", value("right", shape=(2, 1))),
             {"axis": 1}, ("split",)),
        Node("Identity", ("left",), (value("out,1", shape=(2, 1)),), {}, ("",)),
    ]
    g.outputs = ["out,1", "right", "i64_splat", "gpu_0/data_0"]
    return g


def odd_name_graph(name: str) -> Graph:
    """``name`` used as graph name, input, constant, node output, op source and output."""
    g = Graph(name=name, opsets={"": 13})
    x, c, y = name, name + "/c", name + "/y"
    g.inputs = [x]
    g.types[x] = TensorType(F32, (2,))
    g.add_constant(c, np.array([1.0, 2.0], np.float32))
    g.types[y] = TensorType(F32, (2,))
    g.nodes = [Node("Add", (x, c), (y,), {"mode": name}, (name, name + "#2"))]
    g.outputs = [y, x]
    return g


def symbolic_graph() -> Graph:
    """Symbolic dims (allowed in the IR until codegen), including ones that need quoting."""
    g = Graph(name="symbolic")
    g.inputs = ["x"]
    g.types["x"] = TensorType(F32, ("N", "seq len", "3", 4, "inf"))
    g.types["y"] = TensorType(F32, ("N", "seq len", "3", 4, "inf"))
    g.nodes = [Node("Relu", ("x",), ("y",))]
    g.outputs = ["y"]
    return g
