"""RNN, GRU and LSTM match onnxruntime: every direction, optional inputs (B, sequence_lens,
initial_h / initial_c, peepholes), weights constant (pre-packed at compile time) or given at
run time, layout 1 (batch first; onnxruntime lacks it, so it runs the same values in layout
0), GRU's linear_before_reset, LSTM's input_forget, clip, activations with alpha / beta; and bad
attributes are clear errors."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.errors import ModelError
from nnbuild.testing import assert_close
from helpers import (check_against_onnxruntime, check_at_thread_counts, make_model,
                     onnxruntime_outputs, random_inputs, target_param)

F32 = np.float32
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
S, N, I, H = 4, 3, 5, 6          # steps, batch, input size, hidden size


def recurrent_model(op, optional=(), runtime=(), layout=0, outputs=None, **attrs):
    """One ``op`` node over X [S, N, I] (layout 0) with the named optional inputs; weights are
    initializers except those named in ``runtime``."""
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    g = GATES[op]
    rng = np.random.default_rng(len(op) + dirs)
    state = [dirs, N, H] if layout == 0 else [N, dirs, H]
    shapes = {"X": [S, N, I] if layout == 0 else [N, S, I], "W": [dirs, g * H, I],
              "R": [dirs, g * H, H], "B": [dirs, 2 * g * H], "initial_h": state,
              "initial_c": state, "P": [dirs, 3 * H]}
    names = [n if n in ("X", "W", "R") or n in optional else "" for n in INPUTS]
    while not names[-1]:
        names.pop()
    inputs, inits = {}, {}
    for n in filter(None, names):
        if n == "sequence_lens":
            inits[n] = np.array([S, 1, S - 1][:N], np.int32)
        elif n in ("X", "initial_h", "initial_c") or n in runtime:
            inputs[n] = (F32, shapes[n])
        else:
            inits[n] = (0.5 * rng.standard_normal(shapes[n])).astype(F32)
    outputs = outputs or (["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"])
    node = helper.make_node(op, names, outputs, hidden_size=H, layout=layout, **attrs)
    return make_model([node], inputs, [o for o in outputs if o], inits, opset=14)


def check_layout1(op, optional, cache_dir, **attrs):
    """Our batch-first node against onnxruntime's run of the same node in layout 0."""
    model = recurrent_model(op, optional, layout=1, **attrs)
    feeds = random_inputs(model)
    expected = onnxruntime_outputs(recurrent_model(op, optional, layout=0, **attrs),
                                   {k: v.transpose(1, 0, 2) for k, v in feeds.items()})
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for name, value in expected.items():
        value = value.transpose(2, 0, 1, 3) if value.ndim == 4 else value.transpose(1, 0, 2)
        assert_close(actual[name], value, what=name)


ALL_OPTIONAL = {"RNN": ("B", "sequence_lens", "initial_h"),
                "GRU": ("B", "sequence_lens", "initial_h"),
                "LSTM": ("B", "sequence_lens", "initial_h", "initial_c", "P")}


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_every_direction_with_every_optional_input(op, direction, cache_dir):
    check_against_onnxruntime(recurrent_model(op, ALL_OPTIONAL[op], direction=direction),
                              cache_dir)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@target_param()
def test_defaults_only_x_w_r(op, target, cache_dir):
    check_against_onnxruntime(recurrent_model(op), cache_dir, target=target)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_weights_given_at_run_time(op, cache_dir):
    """W, R and B as graph inputs: packed and summed at run time."""
    model = recurrent_model(op, ALL_OPTIONAL[op], runtime=("W", "R", "B", "P"),
                            direction="bidirectional", clip=1.5)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_layout_1_is_batch_first(op, direction, cache_dir):
    check_layout1(op, ALL_OPTIONAL[op], cache_dir, direction=direction)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_gru_linear_before_reset(direction, cache_dir):
    check_against_onnxruntime(recurrent_model("GRU", ALL_OPTIONAL["GRU"], direction=direction,
                                              linear_before_reset=1), cache_dir)


@pytest.mark.parametrize("attrs", [dict(clip=0.5), dict(input_forget=1)],
                         ids=["clip", "input_forget"])
def test_lstm_clip_and_input_forget(attrs, cache_dir):
    check_against_onnxruntime(recurrent_model("LSTM", ALL_OPTIONAL["LSTM"], **attrs), cache_dir)


@pytest.mark.parametrize("op,attrs", [
    ("RNN", dict(activations=["Relu"])),
    ("RNN", dict(activations=["LeakyRelu"], activation_alpha=[0.2])),
    ("RNN", dict(activations=["Elu"])),
    ("RNN", dict(activations=["Softsign"])),
    ("RNN", dict(activations=["Softplus"])),
    ("RNN", dict(activations=["ThresholdedRelu"], activation_alpha=[0.2])),
    ("RNN", dict(activations=["Affine"], activation_alpha=[0.5], activation_beta=[0.1])),
    ("GRU", dict(activations=["HardSigmoid", "ScaledTanh"], activation_alpha=[0.3, 0.7],
                 activation_beta=[0.4, 1.5])),
    ("LSTM", dict(activations=["HardSigmoid", "Tanh", "Tanh", "Sigmoid", "Elu", "Softsign"],
                  activation_alpha=[0.3, 0.8], activation_beta=[0.4],
                  direction="bidirectional")),
], ids=lambda v: v if isinstance(v, str) else "-".join(v["activations"]))
def test_activations_with_alpha_and_beta(op, attrs, cache_dir):
    check_against_onnxruntime(recurrent_model(op, ("B",), **attrs), cache_dir)


def test_only_the_last_state_requested(cache_dir):
    """Y omitted (empty output name), only Y_h and Y_c."""
    check_against_onnxruntime(recurrent_model("LSTM", ("B",), outputs=["", "Y_h", "Y_c"],
                                              direction="reverse"), cache_dir)


@pytest.mark.parametrize("attrs,message", [
    (dict(direction="sideways"), "direction 'sideways' is not one of"),
    (dict(activations=["Swish"]), "activation 'Swish' is not supported"),
    (dict(activations=["Tanh", "Tanh"]), "2 activations given, RNN takes 1 per direction"),
    (dict(layout=2), "layout 2 is not 0 or 1"),
])
def test_bad_attributes_are_model_errors(attrs, message):
    with pytest.raises(ModelError, match=message):
        nnbuild.translate(recurrent_model("RNN", **attrs))


def test_reference_matches_onnxruntime():
    """The numpy reference (constant folding) agrees with onnxruntime."""
    from nnbuild.ops import registry
    model = recurrent_model("GRU", ALL_OPTIONAL["GRU"], direction="bidirectional")
    feeds = random_inputs(model)
    expected = onnxruntime_outputs(model, feeds)
    from onnx import numpy_helper
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer} | feeds
    graph = nnbuild.translate(model)
    node = graph.nodes[0]
    actual = registry.get(node).reference(node, *[values.get(n) for n in node.inputs])
    for got, name in zip(actual, ["Y", "Y_h"]):
        assert_close(got, expected[name], what=name)


@pytest.mark.parametrize("op, batch, hidden", [
    ("LSTM", 1, 300),     # GEMV: R's 1200 rows end in a partial panel, its depth spans 2 KC blocks
    ("GRU", 2, 37),       # GEMV per batch row, both of GRU's products (z r, then the candidate)
    ("RNN", 5, 40),       # more batch rows than GEMV_MAX_BATCH: the GEMM
])
@target_param()
def test_per_step_product_matches_onnxruntime_at_any_thread_count(op, batch, hidden, target,
                                                                  tmp_path):
    """Gh = R H runs as one matrix-vector product per batch row up to GEMV_MAX_BATCH rows, as a
    GEMM beyond: both on the packed R, both bit-identical at 1 and 3 threads."""
    rng = np.random.default_rng(batch)
    g, steps, inputs = GATES[op], 3, 7
    inits = {"W": (rng.standard_normal([1, g * hidden, inputs]) / np.sqrt(inputs)).astype(F32),
             "R": (rng.standard_normal([1, g * hidden, hidden]) / np.sqrt(hidden)).astype(F32),
             "B": rng.standard_normal([1, 2 * g * hidden]).astype(F32)}
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hidden)
    model = make_model([node], {"X": (F32, [steps, batch, inputs])}, ["Y", "Y_h"], inits, opset=14)
    check_at_thread_counts(model, str(tmp_path), target, label=op)


@target_param()
def test_default_lstm_cell_activations_over_their_range(target, tmp_path):
    """The default LSTM cell's sigmoid and tanh (hal/recurrent.c; vector exp, an odd polynomial
    below 0.625 on x86) against float64 numpy: with W four identity blocks and no R or bias, one
    step gives c = sig(x) tanh(x) and h = sig(x) tanh(c) for every value x of X, swept from
    -100 to 100, through tiny magnitudes and across the polynomial's edge."""
    hidden, batch = 203, 3
    sweep = np.concatenate([np.linspace(-100, 100, 301), np.geomspace(1e-8, 20, 77),
                            -np.geomspace(1e-8, 20, 77), np.linspace(0.6, 0.65, 21),
                            -np.linspace(0.6, 0.65, 21), [0.0, -0.0, 88.5, -88.5, -87.0]])
    x = np.resize(sweep, batch * hidden).reshape(1, batch, hidden).astype(F32)
    eye = np.eye(hidden, dtype=F32)
    inits = {"W": np.concatenate([eye] * 4)[None], "R": np.zeros([1, 4 * hidden, hidden], F32)}
    node = helper.make_node("LSTM", ["X", "W", "R"], ["", "Y_h", "Y_c"], hidden_size=hidden)
    model = make_model([node], {"X": (F32, [1, batch, hidden])}, ["Y_h", "Y_c"], inits, opset=14)
    out = nnbuild.compile(model, cache_dir=str(tmp_path), target=target).run({"X": x})
    v = x.astype(np.float64)[0]
    sig = 1 / (1 + np.exp(-v))
    c = sig * np.tanh(v)
    assert_close(out["Y_c"][0], c.astype(F32), what=f"{target} c")
    assert_close(out["Y_h"][0], (sig * np.tanh(c)).astype(F32), what=f"{target} h")
    assert np.abs(out["Y_c"][0] - c).max() < 1e-6
