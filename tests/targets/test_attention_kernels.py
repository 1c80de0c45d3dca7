"""The attention kernel of every target, on layouts and edge shapes, against onnxruntime.

recognize-attention (-O2) turns MatMul -> scale -> optional mask Add -> Softmax -> MatMul into
nnbuild::Attention, reading q, K^T and v through their head-split transposes. The x86 kernel
(templates/hal/x86-avx2/attention.c, also built for x86-avx512) vectorises by layout: K^T
contiguous along keys (32 and 8 keys per pass, then scalar), or each key contiguous along its
depth (8 dot products at once, a scalar tail when the depth is not a multiple of 8); a strided
q row is gathered first; the output runs 32 and 8 columns at a time when v and y are contiguous
along them; the softmax uses a vector exp. Each case below is one graph; every case must match
onnxruntime within the op tolerance on every target this CPU runs, and be bit-identical at 1
and 3 threads (rows are split between threads, never a sum).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

import nnbuild
from helpers import check_at_thread_counts, make_model, random_inputs, target_param

F = np.float32

# name: (batch, heads, sq, skv, d, dv, layout, mask shape or None)
#   "heads": q, k, v given as [batch, seq, heads, depth] and split by Transposes (BERT's export:
#            K^T read with each key contiguous along its depth), the output merged back;
#   "plain": q [.., sq, d], kt [.., d, skv] (keys contiguous), v [.., skv, dv];
#   "q_cols": q given transposed ([.., d, sq], read through a Transpose: a strided q row).
CASES = {
    "bert_like": (1, 4, 32, 32, 64, 64, "heads", None),
    "heads_depth_tail": (2, 3, 9, 19, 20, 20, "heads", None),
    "heads_short_keys": (1, 2, 5, 3, 8, 8, "heads", None),
    "plain_causal": (2, 3, 40, 40, 16, 36, "plain", (1, 1, 40, 40)),
    "plain_key_tail": (1, 2, 7, 45, 12, 5, "plain", (1, 2, 1, 45)),
    "plain_long": (1, 1, 3, 300, 33, 70, "plain", None),
    "q_cols": (1, 2, 11, 17, 24, 9, "q_cols", None),
}


def _case(name, batch, heads, sq, skv, d, dv, layout, mask, rng):
    t = lambda x, y, perm, label: helper.make_node("Transpose", [x], [y], name=f"{name}_{label}",
                                                   perm=perm)
    nodes, inputs, inits = [], {}, {f"{name}_c": np.array(1 / np.sqrt(d), F)}
    if layout == "heads":
        inputs.update({f"{name}_q": (F, [batch, sq, heads, d]), f"{name}_k": (F, [batch, skv, heads, d]),
                       f"{name}_v": (F, [batch, skv, heads, dv])})
        nodes += [t(f"{name}_q", f"{name}_qh", [0, 2, 1, 3], "split_q"),
                  t(f"{name}_k", f"{name}_kt", [0, 2, 3, 1], "split_k"),
                  t(f"{name}_v", f"{name}_vh", [0, 2, 1, 3], "split_v")]
        q, kt, v = f"{name}_qh", f"{name}_kt", f"{name}_vh"
    else:
        if layout == "q_cols":
            inputs[f"{name}_qc"] = (F, [batch, heads, d, sq])
            nodes.append(t(f"{name}_qc", f"{name}_q", [0, 1, 3, 2], "q_t"))
        else:
            inputs[f"{name}_q"] = (F, [batch, heads, sq, d])
        inputs.update({f"{name}_kt": (F, [batch, heads, d, skv]),
                       f"{name}_v": (F, [batch, heads, skv, dv])})
        q, kt, v = f"{name}_q", f"{name}_kt", f"{name}_v"
    nodes += [helper.make_node("MatMul", [q, kt], [f"{name}_s"], name=f"{name}_qk"),
              helper.make_node("Mul", [f"{name}_s", f"{name}_c"], [f"{name}_t"], name=f"{name}_scale")]
    scores = f"{name}_t"
    if mask is not None:
        inits[f"{name}_mask"] = np.where(rng.random(mask) < 0.3, F(-1e4), F(0)).astype(F)
        nodes.append(helper.make_node("Add", [scores, f"{name}_mask"], [f"{name}_u"],
                                      name=f"{name}_masked"))
        scores = f"{name}_u"
    nodes += [helper.make_node("Softmax", [scores], [f"{name}_p"], name=f"{name}_softmax", axis=-1),
              helper.make_node("MatMul", [f"{name}_p", v], [f"{name}_o"], name=f"{name}_pv")]
    if layout == "heads":
        nodes.append(t(f"{name}_o", f"{name}_y", [0, 2, 1, 3], "merge"))
    else:
        nodes.append(helper.make_node("Identity", [f"{name}_o"], [f"{name}_y"], name=f"{name}_out"))
    return nodes, inputs, inits


def attention_cases_model():
    rng = np.random.default_rng(11)
    nodes, inputs, inits = [], {}, {}
    for name, case in CASES.items():
        n, i, w = _case(name, *case, rng)
        nodes += n
        inputs.update(i)
        inits.update(w)
    return make_model(nodes, inputs, [f"{name}_y" for name in CASES], inits)


def test_every_case_becomes_one_attention_node():
    optimized = nnbuild.optimize(nnbuild.translate(attention_cases_model()), opt_level=2)
    fused = [n for n in optimized.nodes if n.op == "Attention"]
    assert len(fused) == len(CASES)
    assert not any(n.op in ("Softmax", "MatMul") for n in optimized.nodes)


@target_param()
def test_attention_layouts_match_onnxruntime_at_any_thread_count(target, tmp_path):
    model = attention_cases_model()
    feeds = {k: v * 2 for k, v in random_inputs(model).items()}     # peaked softmax rows too
    check_at_thread_counts(model, str(tmp_path), target, feeds=feeds, opt_level=2)
