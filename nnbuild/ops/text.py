"""TfIdfVectorizer (opset 9): n-gram counts of integer token rows against a compile-time pool,
weighted TF, IDF or TFIDF.

The pool (``pool_int64s``, grouped by n-gram length as ``ngram_counts`` says) becomes three
tables in the network source (the items of every n-gram, where each starts, its length and its
output column); the kernel is a loop nest. Counting follows onnxruntime: an n-gram of n >= 2
items is matched once per skip distance d = 1 .. max_skip_count + 1 (items d apart), a unigram
once; only lengths in [min_gram_length, max_gram_length] count. Weights are indexed by output
column. String pools (``pool_strings``) cannot be compiled ahead of time and are refused.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import block
from .registry import Op, register

MODES = ("TF", "IDF", "TFIDF")


def pool_ngrams(node) -> list:
    """[(items tuple, output column)] in pool order."""
    pool = [int(v) for v in node.attr("pool_int64s", [])]
    starts = [int(v) for v in node.attr("ngram_counts", [])] + [len(pool)]
    columns = [int(v) for v in node.attr("ngram_indexes", [])]
    grams = []
    for i in range(len(starts) - 1):
        n = i + 1
        for at in range(starts[i], starts[i + 1], n):
            grams.append(tuple(pool[at:at + n]))
    return list(zip(grams, columns))


def _counts(row, grams, lo, hi, max_skip, width) -> np.ndarray:
    out = np.zeros(width, np.float32)
    for d in range(1, max_skip + 2):
        for items, column in grams:
            n = len(items)
            if not lo <= n <= hi or (n == 1 and d > 1):
                continue
            for s in range(len(row) - d * (n - 1)):
                if tuple(int(v) for v in row[s:s + d * (n - 1) + 1:d]) == items:
                    out[column] += 1
    return out


@register("TfIdfVectorizer", since=9)
class TfIdfVectorizer(Op):
    """y[r, column of g] = how often pool n-gram g occurs in row r (skips allowed), weighted"""

    def _check(self, ctx):
        node, x = ctx.node, ctx.types[0]
        if node.attrs.get("pool_strings"):
            raise ctx.fail("pool_strings: string tensors cannot be compiled (supported: "
                           "pool_int64s)")
        if x.dtype not in (dtypes.INT32, dtypes.INT64):
            raise ctx.fail(f"element type {x.dtype} is not supported (supported: i32, i64)")
        if x.rank not in (1, 2):
            raise ctx.fail(f"input {x} must be [C] or [N, C]")
        if node.attr("mode", "TF") not in MODES:
            raise ctx.fail(f"mode {node.attr('mode')!r} is not supported (supported: "
                           f"{', '.join(MODES)})")
        lo, hi = node.attr("min_gram_length", 1), node.attr("max_gram_length", 1)
        if not 1 <= lo <= hi or node.attr("max_skip_count", 0) < 0:
            raise ctx.fail(f"gram lengths [{lo}, {hi}] and max_skip_count must be positive "
                           f"and ordered")
        grams = pool_ngrams(node)
        columns = node.attr("ngram_indexes", [])
        if len(grams) != len(columns) or not columns or min(columns) < 0:
            raise ctx.fail(f"ngram_indexes ({len(columns)}) must give a column >= 0 to each of "
                           f"the pool's {len(grams)} n-grams")
        weights = node.attr("weights", [])
        if weights and len(weights) != len(columns):
            raise ctx.fail(f"weights ({len(weights)}) must match ngram_indexes "
                           f"({len(columns)})")

    def _width(self, node) -> int:
        return int(max(node.attr("ngram_indexes"))) + 1

    def infer(self, ctx):
        self._check(ctx)
        x, width = ctx.types[0], self._width(ctx.node)
        return [TensorType(dtypes.FLOAT32, (width,) if x.rank == 1 else (x.shape[0], width))]

    def reference(self, node, x):
        grams, width = pool_ngrams(node), self._width(node)
        args = (node.attr("min_gram_length", 1), node.attr("max_gram_length", 1),
                node.attr("max_skip_count", 0), width)
        rows = x.reshape(-1, x.shape[-1]) if x.size or x.ndim == 2 else x.reshape(1, -1)
        y = np.stack([_counts(r, grams, *args) for r in rows]) if len(rows) else \
            np.zeros((0, width), np.float32)
        weights = np.asarray(node.attr("weights", [1.0] * width), np.float32)[:width]
        weights = np.pad(weights, (0, width - len(weights)))
        mode = node.attr("mode", "TF")
        if mode == "IDF":
            y = np.where(y > 0, weights, 0).astype(np.float32)
        elif mode == "TFIDF":
            y = (y * weights).astype(np.float32)
        return [y.reshape(width) if x.ndim == 1 else y]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x)
        rows, length = (1, shape[0]) if len(shape) == 1 else shape
        width = self._width(node)
        if rows * width == 0:
            return
        lo, hi = node.attr("min_gram_length", 1), node.attr("max_gram_length", 1)
        grams = [(items, col) for items, col in pool_ngrams(node) if lo <= len(items) <= hi]
        lines = [f"const {ctx.ctype(x)} *x = {ctx.ptr(x)};", f"float *y = {ctx.ptr(y)};",
                 f"for (size_t e = 0; e < {rows * width}; ++e)", "    y[e] = 0.0f;"]
        if grams and length:
            starts = np.cumsum([0] + [len(g) for g, _ in grams])[:-1]
            items = ctx.table("int64_t", [v for g, _ in grams for v in g], "tfidf_items")
            first = ctx.table("int32_t", starts, "tfidf_start")
            size = ctx.table("int32_t", [len(g) for g, _ in grams], "tfidf_length")
            column = ctx.table("int32_t", [c for _, c in grams], "tfidf_column")
            lines += [f"for (size_t r = 0; r < {rows}; ++r) {{",
                      f"    const {ctx.ctype(x)} *row = x + r * {length};",
                      f"    for (size_t d = 1; d <= {node.attr('max_skip_count', 0) + 1}; ++d)"
                      "   /* distance between items */",
                      f"        for (size_t g = 0; g < {len(grams)}; ++g) {{",
                      f"            const size_t n = (size_t){size}[g];",
                      "            if (n == 1 && d > 1)   /* a unigram counts once */",
                      "                continue;",
                      f"            const int64_t *gram = {items} + {first}[g];",
                      f"            for (size_t s = 0; s + d * (n - 1) < {length}; ++s) {{",
                      "                size_t k = 0;",
                      "                while (k < n && (int64_t)row[s + k * d] == gram[k])",
                      "                    ++k;",
                      "                if (k == n)",
                      f"                    y[r * {width} + (size_t){column}[g]] += 1.0f;",
                      "            }", "        }", "}"]
        mode, weights = node.attr("mode", "TF"), node.attr("weights", [])
        if mode == "IDF" or mode == "TFIDF" and weights:
            w = f"{ctx.table('float', weights, 'tfidf_weight')}[e % {width}]" if weights \
                else "1.0f"
            value = f"y[e] > 0.0f ? {w} : 0.0f" if mode == "IDF" else f"y[e] * {w}"
            lines += [f"for (size_t e = 0; e < {rows * width}; ++e)   /* {mode} weighting */",
                      f"    y[e] = {value};"]
        ctx.emit(block(lines))
