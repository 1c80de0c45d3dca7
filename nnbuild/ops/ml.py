"""Numeric ops of domain ai.onnx.ml: ArrayFeatureExtractor, Binarizer, LabelEncoder (number
keys and values) and TreeEnsemble (opset 5). Loop nests written into the network source; the
constant attributes (trees, key tables) go to the weight blob.

String tensors cannot be compiled ahead of time (see nnbuild/conformance/not_compiled.json):
LabelEncoder with string keys or values is refused with that reason.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..codegen.loops import broadcast_loop, c_literal
from ..ir.graph import TensorType
from .index import block
from .registry import Op, register

DOMAIN = "ai.onnx.ml"
NUMERIC = ("f32", "f64", "i64", "i32")


# --- ArrayFeatureExtractor ---------------------------------------------------------------------
@register("ArrayFeatureExtractor", since=1, domain=DOMAIN)
class ArrayFeatureExtractor(Op):
    """z[..., j] = x[..., y[j]] (a 1-D x gives one row: [1, len(y)])"""

    def infer(self, ctx):
        x, y = ctx.types[0], ctx.types[1]
        if y.dtype != dtypes.INT64:
            raise ctx.fail(f"indices {y} must be i64")
        if x.rank == 0:
            raise ctx.fail(f"input {x} must have at least one dim")
        lead = (1,) if x.rank == 1 else x.shape[:-1]
        return [TensorType(x.dtype, lead + (y.size,))]

    def reference(self, node, x, y):
        z = x[..., y.reshape(-1)]
        return [z.reshape((1,) + z.shape) if x.ndim == 1 else z]

    def lower(self, node, ctx):
        x, y, z = node.inputs[0], node.inputs[1], node.outputs[0]
        n, k = ctx.shape(x)[-1], ctx.type(y).size
        rows = ctx.type(z).size // max(k, 1)
        if ctx.type(z).size == 0:
            return
        ctx.emit(block([f"const {ctx.ctype(x)} *x = {ctx.ptr(x)};",
                        f"const int64_t *at = {ctx.ptr(y)};",
                        f"{ctx.ctype(z)} *z = {ctx.ptr(z)};",
                        f"for (size_t j = 0; j < {k}; ++j)",
                        f"    if (at[j] < 0 || at[j] >= {n}) {ctx.shape_error}   "
                        f"/* an index outside the last dim */",
                        f"for (size_t r = 0; r < {rows}; ++r)",
                        f"    for (size_t j = 0; j < {k}; ++j)",
                        f"        z[r * {k} + j] = x[r * {n} + (size_t)at[j]];"]))


# --- Binarizer ---------------------------------------------------------------------------------
@register("Binarizer", since=1, domain=DOMAIN)
class Binarizer(Op):
    """y = x > threshold ? 1 : 0, in x's type"""

    def infer(self, ctx):
        if ctx.types[0].dtype.short not in NUMERIC:
            raise ctx.fail(f"element type {ctx.types[0].dtype} is not supported "
                           f"(supported: {', '.join(NUMERIC)})")
        return [ctx.types[0]]

    def reference(self, node, x):
        return [(x > node.attr("threshold", 0.0)).astype(x.dtype)]

    def lower(self, node, ctx):
        dtype = ctx.type(node.inputs[0]).dtype
        threshold = c_literal(node.attr("threshold", 0.0), dtypes.BY_SHORT["f64"])
        one, zero = c_literal(1, dtype), c_literal(0, dtype)
        broadcast_loop(ctx, node.outputs[0], [node.inputs[0]],
                       lambda v: f"{v[0]} > {threshold} ? {one} : {zero}")


# --- LabelEncoder ------------------------------------------------------------------------------
def _label_table(node, fail) -> tuple:
    """(keys, values, default) as numpy arrays / scalar, for number keys and values."""
    def pick(kind):
        for suffix, dtype in (("floats", np.float32), ("int64s", np.int64)):
            v = node.attr(f"{kind}_{suffix}")
            if v is not None:
                return np.asarray(v, dtype)
        if node.attr(f"{kind}_strings") is not None:
            raise fail(f"{kind} are strings: string tensors cannot be compiled ahead of time "
                       f"(not supported)")
        v = node.attr(f"{kind}_tensor")
        if v is None:
            raise fail(f"no {kind}_* attribute")
        if v.dtype.kind not in "fiu":
            raise fail(f"{kind}_tensor of type {v.dtype} is not supported (strings cannot be "
                       f"compiled ahead of time)")
        return np.asarray(v).reshape(-1)
    keys, values = pick("keys"), pick("values")
    if len(keys) != len(values):
        raise fail(f"{len(keys)} keys but {len(values)} values")
    if node.attr("default_tensor") is not None:
        default = np.asarray(node.attr("default_tensor")).reshape(-1)[0]
    elif values.dtype == np.float32:
        default = node.attr("default_float", -0.0)
    else:
        default = node.attr("default_int64", -1)
    return keys, values, np.asarray(default, values.dtype)


@register("LabelEncoder", since=2, domain=DOMAIN)
class LabelEncoder(Op):
    """y = values[k] where x == keys[k], else the default (number keys and values only)"""

    def infer(self, ctx):
        keys, values, _ = _label_table(ctx.node, ctx.fail)
        x = ctx.types[0]
        if x.dtype.numpy != keys.dtype:
            raise ctx.fail(f"input {x} does not have the keys' type {keys.dtype}")
        return [TensorType(dtypes.from_numpy(values.dtype), x.shape)]

    def reference(self, node, x):
        keys, values, default = _label_table(node, ValueError)
        y = np.full(x.shape, default, values.dtype)
        for k, v in zip(keys, values):
            y[(x == k) | (np.isnan(x) & np.isnan(k) if x.dtype.kind == "f" else False)] = v
        return [y]

    def lower(self, node, ctx):
        keys, values, default = _label_table(node, ValueError)
        x, y = node.inputs[0], node.outputs[0]
        size = ctx.type(x).size
        if size == 0:
            return
        order = np.argsort(keys, kind="stable")      # NaN keys sort last
        nan = np.isnan(keys[order]) if keys.dtype.kind == "f" else np.zeros(len(keys), bool)
        sorted_keys, sorted_values = keys[order][~nan], values[order][~nan]
        xt, yt = ctx.ctype(x), ctx.ctype(y)
        out_dtype = ctx.type(y).dtype
        lines = [f"const {xt} *x = {ctx.ptr(x)};", f"{yt} *y = {ctx.ptr(y)};"]
        if len(sorted_keys):
            lines += [f"const {xt} *keys = {ctx.weight(f'{y}:keys', sorted_keys)};",
                      f"const {yt} *values = {ctx.weight(f'{y}:values', sorted_values)};"]
        lines += [f"for (size_t i = 0; i < {size}; ++i) {{",
                  f"    const {xt} v = x[i];",
                  f"    {yt} out = {c_literal(default, out_dtype)};"]
        if nan.any():
            lines.append(f"    if (v != v) out = {c_literal(values[order][nan][0], out_dtype)};")
        if len(sorted_keys):
            lines += [f"    size_t lo = 0, hi = {len(sorted_keys)};   /* binary search */",
                      "    while (lo < hi) {",
                      "        const size_t mid = lo + (hi - lo) / 2;",
                      "        if (keys[mid] < v) lo = mid + 1;",
                      "        else hi = mid;",
                      "    }",
                      f"    if (lo < {len(sorted_keys)} && keys[lo] == v) out = values[lo];"]
        lines += ["    y[i] = out;", "}"]
        ctx.emit(block(lines))


# --- TreeEnsemble ------------------------------------------------------------------------------
MODES = ("<=", "<", ">=", ">", "==", "!=", "member")
AGGREGATES = ("average", "sum", "min", "max")


class _Trees:
    """The ensemble as flat tables: node n compares x[feature[n]] (``MODES[mode[n]]``) with
    split[n] (or the members[first[n]:first[n + 1]]) and goes to next_true[n] / next_false[n];
    a next < 0 is leaf -next - 1 (weight, target)."""

    def __init__(self, node, fail):
        a = node.attr
        self.split = np.asarray(a("nodes_splits")).reshape(-1)
        self.feature = np.asarray(a("nodes_featureids"), np.int64)
        self.mode = np.asarray(a("nodes_modes")).reshape(-1).astype(np.int64)
        n = len(self.feature)
        if any(len(np.asarray(a(k) if a(k) is not None else [])) != n for k in (
                "nodes_splits", "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
                "nodes_trueleafs", "nodes_falseleafs")):
            raise fail("the nodes_* attributes must all have one entry per node")
        if np.any((self.mode < 0) | (self.mode > 6)):
            raise fail(f"nodes_modes {sorted(set(self.mode.tolist()))} must be 0 to 6")

        def nexts(ids, leafs):
            ids, leafs = np.asarray(a(ids), np.int64), np.asarray(a(leafs), np.int64)
            return np.where(leafs != 0, -ids - 1, ids)
        self.next_true = nexts("nodes_truenodeids", "nodes_trueleafs")
        self.next_false = nexts("nodes_falsenodeids", "nodes_falseleafs")
        self.weight = np.asarray(a("leaf_weights")).reshape(-1)
        self.target = np.asarray(a("leaf_targetids"), np.int64)
        self.n_targets = int(a("n_targets", 0) or 0)
        missing = a("nodes_missing_value_tracks_true")
        self.missing = np.zeros(n, np.int64) if missing is None else np.asarray(missing, np.int64)
        members = a("membership_values")
        members = [] if members is None else np.asarray(members, np.float64).reshape(-1).tolist()
        self.first, values, it = [], [], iter(members)
        for m in self.mode:
            self.first.append(len(values))
            if m == 6:
                for v in it:
                    if np.isnan(v):
                        break
                    values.append(v)
        self.first.append(len(values))
        self.members = np.asarray(values, np.float64)
        roots = np.asarray(a("tree_roots"), np.int64)
        self.roots = np.array([self.next_true[r] if self.next_true[r] < 0 and
                               self.next_true[r] == self.next_false[r] else r for r in roots],
                              np.int64)
        self.aggregate = int(a("aggregate_function", 1))
        if self.aggregate not in range(4):
            raise fail(f"aggregate_function {self.aggregate} must be 0 to 3 "
                       f"({', '.join(AGGREGATES)})")
        if int(a("post_transform", 0)) != 0:
            raise fail(f"post_transform {a('post_transform')} is not supported (supported: 0, "
                       f"none)")
        if len(self.weight) != len(self.target) or np.any(self.target < 0) or \
                np.any(self.target >= self.n_targets):
            raise fail(f"leaf_targetids must be in [0, n_targets {self.n_targets}), one per "
                       f"leaf weight")
        leaves = np.concatenate([self.next_true, self.next_false, self.roots])
        if np.any(leaves >= n) or np.any(-leaves - 1 >= len(self.weight)):
            raise fail("a node or leaf index is out of range")

    def predict(self, row: np.ndarray) -> list:
        """[(weight, target)] of each tree for one sample (numpy)."""
        out = []
        for r in self.roots:
            k = int(r)
            while k >= 0:
                v = row[self.feature[k]]
                m = self.mode[k]
                if m == 6:
                    go = v in self.members[self.first[k]:self.first[k + 1]].tolist()
                else:
                    go = {0: v <= self.split[k], 1: v < self.split[k], 2: v >= self.split[k],
                          3: v > self.split[k], 4: v == self.split[k],
                          5: v != self.split[k]}[int(m)]
                go = go or (bool(self.missing[k]) and np.isnan(v))
                k = int(self.next_true[k] if go else self.next_false[k])
            out.append((self.weight[-k - 1], int(self.target[-k - 1])))
        return out


@register("TreeEnsemble", since=5, domain=DOMAIN)
class TreeEnsemble(Op):
    """y[b, t] = aggregate (average, sum, min, max) of the leaf weights for target t that the
    trees reach for sample x[b]; 0 where no tree reaches target t (as onnxruntime)"""

    def infer(self, ctx):
        x = ctx.types[0]
        if x.dtype.short not in ("f32", "f64") or x.rank != 2:
            raise ctx.fail(f"input {x} must be a f32 / f64 matrix [batch, features]")
        trees = _Trees(ctx.node, ctx.fail)
        if len(trees.feature) and trees.feature.max() >= x.shape[1]:
            raise ctx.fail(f"a node reads feature {trees.feature.max()} of {x.shape[1]}")
        return [TensorType(x.dtype, (x.shape[0], trees.n_targets))]

    def reference(self, node, x):
        trees = _Trees(node, ValueError)
        y = np.zeros((x.shape[0], trees.n_targets), x.dtype)
        for b in range(x.shape[0]):
            seen = set()
            for w, t in trees.predict(x[b]):
                w = x.dtype.type(w)
                if trees.aggregate == 0:
                    y[b, t] += w / x.dtype.type(len(trees.roots))
                elif trees.aggregate == 1:
                    y[b, t] += w
                elif t not in seen:
                    y[b, t] = w
                else:
                    y[b, t] = min(y[b, t], w) if trees.aggregate == 2 else max(y[b, t], w)
                seen.add(t)
        return [y]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        trees = _Trees(node, ValueError)
        batch, features = ctx.shape(x)
        if ctx.type(y).size == 0:
            return
        dtype = ctx.type(x).dtype
        ct, np_t = dtype.ctype, dtype.numpy
        key = f"{y}:trees"

        def ints(name, values):
            return ctx.weight(f"{key}:{name}", np.asarray(values, np.int32))
        used = sorted(set(trees.mode.tolist()))
        cases = []
        for m in used:
            if m == 6:
                cases += ["        case 6:",
                          "            go = false;",
                          "            for (int32_t k = first[n]; k < first[n + 1]; ++k)",
                          "                go = go || v == members[k];",
                          "            break;"]
            else:
                cases += [f"        case {m}:", f"            go = v {MODES[m]} split[n];",
                          "            break;"]
        extreme = trees.aggregate in (2, 3)     # min / max: a target no tree reaches stays 0
        combine = {0: f"*out += w / ({ct}){len(trees.roots)};", 1: "*out += w;",
                   2: "if (!seen[t] || w < *out) *out = w;",
                   3: "if (!seen[t] || w > *out) *out = w;"}[trees.aggregate]
        split = np.nan_to_num(trees.split.astype(np_t), nan=0.0)
        lines = [f"const {ct} *x = {ctx.ptr(x)};", f"{ct} *y = {ctx.ptr(y)};",
                 f"const int32_t *roots = {ints('roots', trees.roots)};",
                 f"const int32_t *feature = {ints('feature', trees.feature)};",
                 f"const int32_t *mode = {ints('mode', trees.mode)};",
                 f"const int32_t *next_true = {ints('true', trees.next_true)};",
                 f"const int32_t *next_false = {ints('false', trees.next_false)};",
                 f"const int32_t *target = {ints('target', trees.target)};",
                 f"const {ct} *split = {ctx.weight(f'{key}:split', split)};",
                 f"const {ct} *weight = {ctx.weight(f'{key}:weight', trees.weight.astype(np_t))};"]
        if 6 in used:
            lines += [f"const int32_t *first = {ints('first', trees.first)};",
                      f"const {ct} *members = "
                      f"{ctx.weight(f'{key}:members', trees.members.astype(np_t))};"]
        missing = bool(trees.missing.any())
        if missing:
            lines.append(f"const int32_t *missing = {ints('missing', trees.missing)};")
        lines += [f"for (size_t b = 0; b < {batch}; ++b) {{",
                  f"    const {ct} *row = x + b * {features};",
                  f"    for (size_t t = 0; t < {trees.n_targets}; ++t)",
                  f"        y[b * {trees.n_targets} + t] = 0;"]
        if extreme:
            lines += [f"    bool seen[{trees.n_targets}] = {{false}};"]
        lines += [
                  f"    for (size_t r = 0; r < {len(trees.roots)}; ++r) {{",
                  "        int32_t n = roots[r];",
                  "        while (n >= 0) {",
                  f"            const {ct} v = row[feature[n]];",
                  "            bool go = false;",
                  "            switch (mode[n]) {"]
        lines += ["    " + c for c in cases]
        lines += ["            default:", "                break;", "            }"]
        if missing:
            lines.append("            if (missing[n] && v != v) go = true;")
        lines += ["            n = go ? next_true[n] : next_false[n];",
                  "        }",
                  f"        const {ct} w = weight[-n - 1];",
                  "        const size_t t = (size_t)target[-n - 1];",
                  f"        {ct} *out = &y[b * {trees.n_targets} + t];",
                  f"        {combine}"] + (["        seen[t] = true;"] if extreme else []) + [
                  "    }",
                  "}"]
        ctx.emit(block(lines))
