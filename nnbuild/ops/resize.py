"""Resize (opsets 10-19) and Upsample (opsets 7-9, rewritten into Resize).

Every output coordinate maps to input taps at compile time, axis by axis: one tap for nearest,
two for linear, four for cubic, with weights. The coordinate arithmetic follows onnxruntime
(float32, and an axis whose scale is exactly 1 is copied), so results match it. The kernel is
a loop nest over the output reading small per-axis tables of offsets and weights; nearest
without extrapolation is a plain gather copy (``movement.copy_nest``), for every element type.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import TensorType
from .movement import Axis, _block, copy_nest, index_expr, known, offset_ctype, offset_table, \
    strides_of, value_literal
from .index import load as load_as_compute
from .registry import Op, register

MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                    "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize")
# "simple" is opset 10 / Upsample rounding: ceil when downscaling, else truncate.
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")
POLICIES = ("stretch", "not_larger", "not_smaller")
F = np.float32


@dataclass
class Taps:
    """How one output axis reads the input: ``index[out, taps]`` input positions, their
    ``weight[out, taps]`` (None for nearest), ``valid[out]`` (None unless extrapolating)."""
    index: np.ndarray
    weight: np.ndarray | None = None
    valid: np.ndarray | None = None


# --- coordinates and taps ---------------------------------------------------------------------
def original_coordinate(mode, out_len, in_len, scale, roi_start=0.0, roi_end=1.0, ft=F,
                        from_scales=False):
    """Input coordinate of every output index, in the arithmetic of ``ft``. With ``scales``
    given, align_corners divides by the unrounded resized length scale * in_len (as the
    reference does: it differs from out_len when downsampling by a non-integer factor)."""
    x = np.arange(out_len, dtype=ft)
    s, lo, li, half, one = ft(scale), ft(out_len), ft(in_len), ft(0.5), ft(1)
    if mode == "asymmetric":
        return x / s
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if out_len > 1 else np.zeros_like(x)
    if mode == "tf_half_pixel_for_nn":
        return (x + half) / s
    if mode == "align_corners":
        resized = ft(float(s) * float(li)) if from_scales else lo
        return x * (li - one) / (resized - one) if out_len > 1 and resized != one \
            else np.zeros_like(x)
    if mode == "tf_crop_and_resize":
        start, end = ft(roi_start), ft(roi_end)
        if out_len > 1:
            return start * (li - one) + (x * (end - start) * (li - one)) / (lo - one)
        return np.full_like(x, ft(0.5 * (float(start) + float(end)) * (float(li) - 1)))
    if mode == "half_pixel_symmetric":
        adjustment = lo / (s * li)
        offset = li / ft(2) * (one - adjustment)
        return offset + (x + half) / s - half
    return (x + half) / s - half                                   # half_pixel


def _round_half_away(x):
    x = x.astype(np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def nearest_index(x, mode, scale, in_len):
    if mode == "round_prefer_floor":
        i = np.where(x == np.trunc(x) + F(0.5), np.floor(x), _round_half_away(x))
    elif mode == "round_prefer_ceil":
        i = _round_half_away(x)
    elif mode == "floor":
        i = np.floor(x)
    elif mode == "ceil":
        i = np.ceil(x)
    else:                                                          # simple
        i = np.ceil(x) if scale < 1 else np.trunc(x)
    return np.clip(i.astype(np.int64), 0, in_len - 1)


def linear_taps(x, in_len, ft):
    v = np.clip(x, ft(0), ft(in_len - 1))
    lo = np.minimum(v.astype(np.int64), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    w_lo, w_hi = np.abs(v - hi.astype(ft)), np.abs(v - lo.astype(ft))
    same = lo == hi
    w_lo, w_hi = np.where(same, ft(0.5), w_lo), np.where(same, ft(0.5), w_hi)
    return np.stack([lo, hi], 1), np.stack([w_lo, w_hi], 1).astype(ft)


def cubic_taps(x, in_len, a, exclude_outside, ft):
    floor = np.floor(x)
    s = np.abs(x - floor)
    a = ft(a)
    one, two = ft(1), ft(2)
    t0, t1, t2, t3 = s + one, s, one - s, two - s
    c = np.stack([((a * t0 - ft(5) * a) * t0 + ft(8) * a) * t0 - ft(4) * a,
                  ((a + two) * t1 - (a + ft(3))) * t1 * t1 + one,
                  ((a + two) * t2 - (a + ft(3))) * t2 * t2 + one,
                  ((a * t3 - ft(5) * a) * t3 + ft(8) * a) * t3 - ft(4) * a], 1).astype(ft)
    raw = floor.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    if exclude_outside:
        c = np.where((raw >= 0) & (raw < in_len), c, ft(0))
        c = (c / c.sum(1, keepdims=True, dtype=ft)).astype(ft)
    return np.clip(raw, 0, in_len - 1), c


# --- the op -------------------------------------------------------------------------------------
@register("Resize", since=10)
class Resize(Op):
    """y = x resized by ``scales`` or to ``sizes`` (modes nearest, linear, cubic)."""
    def canonicalize(self, node, version, graph):
        if version >= 11:
            return [node]
        attrs = dict(node.attrs, coordinate_transformation_mode="asymmetric", nearest_mode="simple")
        return [node.replace(inputs=(node.inputs[0], "", node.inputs[1]), attrs=attrs)]

    # -- attributes and output shape --
    def settings(self, node, fail) -> dict:
        a = node.attrs
        s = dict(mode=a.get("mode", "nearest"),
                 coord=a.get("coordinate_transformation_mode", "half_pixel"),
                 nearest=a.get("nearest_mode", "round_prefer_floor"),
                 policy=a.get("keep_aspect_ratio_policy", "stretch"),
                 cubic_a=float(a.get("cubic_coeff_a", -0.75)),
                 exclude=int(a.get("exclude_outside", 0)),
                 extrapolation=float(a.get("extrapolation_value", 0.0)))
        for key, allowed in (("mode", MODES), ("coord", COORDINATE_MODES),
                             ("nearest", NEAREST_MODES), ("policy", POLICIES)):
            if s[key] not in allowed:
                raise fail(f"{key} {s[key]!r} is not supported (supported: {', '.join(allowed)})")
        if int(a.get("antialias", 0)):
            raise fail("antialias=1 is not supported")
        return s

    def covered_axes(self, node, rank) -> list:
        """The axes scales / sizes / roi give values for (attribute ``axes``, else all)."""
        axes = node.attr("axes")
        return list(range(rank)) if axes is None else [int(v) % rank for v in axes]

    def geometry(self, node, in_shape, roi, scales, sizes, fail) -> tuple:
        """(output shape, float32 scale per axis, (roi start, end) per axis)."""
        rank = len(in_shape)
        axes = self.covered_axes(node, rank)
        scale = [F(1)] * rank
        out = list(in_shape)
        if scales is not None and scales.size:
            given = [F(v) for v in scales.reshape(-1)]
            if len(given) != len(axes) or min(given) <= 0:
                raise fail(f"scales {[float(v) for v in given]} must be {len(axes)} "
                           f"positive values")
            for a, s in zip(axes, given):
                scale[a], out[a] = s, int(s * F(in_shape[a]))
        elif sizes is not None and sizes.size:
            given = [int(v) for v in sizes.reshape(-1)]
            if len(given) != len(axes) or min(given) < 0:
                raise fail(f"sizes {given} must be {len(axes)} non-negative values")
            ratios = [F(n) / F(in_shape[a]) if in_shape[a] else F(1) for a, n in zip(axes, given)]
            policy = node.attr("keep_aspect_ratio_policy", "stretch")
            for a, n, r in zip(axes, given, ratios):
                if policy == "stretch":
                    scale[a], out[a] = r, n
                else:
                    r = min(ratios) if policy == "not_larger" else max(ratios)
                    scale[a], out[a] = r, int(_round_half_away(np.array(r * F(in_shape[a]))))
        else:
            raise fail("needs scales or sizes known at compile time")
        box = [(0.0, 1.0)] * rank
        if roi is not None and roi.size:
            values = [float(v) for v in roi.reshape(-1)]
            if len(values) != 2 * len(axes):
                raise fail(f"roi needs {2 * len(axes)} values, has {len(values)}")
            for k, a in enumerate(axes):
                box[a] = (values[k], values[k + len(axes)])
        return tuple(out), scale, box

    def _inputs(self, node, values) -> list:
        """[roi, scales, sizes] through ``values(name)``; roi only where it is used."""
        names = list(node.inputs) + [""] * (4 - len(node.inputs))
        if node.attr("coordinate_transformation_mode") != "tf_crop_and_resize":
            names[1] = ""
        return [values(n) if n else None for n in names[1:4]]

    def infer(self, ctx):
        x = ctx.types[0]
        s = self.settings(ctx.node, ctx.fail)
        used = {1: s["coord"] == "tf_crop_and_resize", 2: True, 3: True}
        runtime = [i for i in (1, 2, 3) if used[i] and ctx.runtime(i) and ctx.types[i].size]
        if runtime:                       # read at run time: the declared shape, checked
            what = {1: "roi", 2: "scales", 3: "sizes"}[runtime[0]]
            shape = ctx.declared(0, runtime[0], what)
            covered = self.covered_axes(ctx.node, x.rank)
            if len(shape) != x.rank or any(shape[a] != x.shape[a] for a in range(x.rank)
                                           if a not in covered):
                raise ctx.fail(f"the declared output shape {list(shape)} is no resize of {x}")
            if s["mode"] != "nearest" and x.dtype.short != "f32":
                raise ctx.fail(f"{s['mode']} Resize with {what} known only at run time "
                               f"supports f32, not {x.dtype} (nearest takes every type)")
            return [TensorType(x.dtype, shape)]
        args = [ctx.value(i, what) if used[i] and ctx.has(i) and ctx.types[i].size else None
                for i, what in ((1, "roi"), (2, "scales"), (3, "sizes"))]
        out, _, _ = self.geometry(ctx.node, x.shape, *args, ctx.fail)
        if s["mode"] != "nearest" and x.dtype.short not in ("f32", "f64"):
            raise ctx.fail(f"{s['mode']} Resize supports f32 and f64, not {x.dtype} "
                           f"(nearest takes every type)")
        return [TensorType(x.dtype, out)]

    # -- the per-axis plan shared by the reference and the kernel --
    def taps(self, node, dtype, in_shape, roi, scales, sizes) -> tuple:
        """(output shape, [Taps or None (copied axis)] per axis, settings)."""
        s = self.settings(node, ValueError)
        if s["coord"] != "tf_crop_and_resize":
            roi = None
        out, scale, box = self.geometry(node, in_shape, roi, scales, sizes, ValueError)
        ft = np.float64 if np.dtype(dtype) == np.float64 and s["mode"] != "nearest" else F
        plan = []
        for k, (n_in, n_out) in enumerate(zip(in_shape, out)):
            if scale[k] == 1 or n_out == 0 or n_in == 0:
                plan.append(None)
                continue
            x = original_coordinate(s["coord"], n_out, n_in, scale[k], *box[k], ft=ft,
                                    from_scales=scales is not None and scales.size > 0)
            valid = None
            if s["coord"] == "tf_crop_and_resize":
                valid = (x >= 0) & (x <= ft(n_in - 1))
                valid = None if valid.all() else valid
            if s["mode"] == "nearest":
                taps = Taps(nearest_index(x, s["nearest"], scale[k], n_in)[:, None])
            elif s["mode"] == "linear":
                taps = Taps(*linear_taps(x, n_in, ft))
            else:
                taps = Taps(*cubic_taps(x, n_in, s["cubic_a"], s["exclude"], ft))
            taps.valid = valid
            plan.append(taps)
        return out, plan, s

    def reference(self, node, x, roi=None, scales=None, sizes=None):
        out, plan, s = self.taps(node, x.dtype, x.shape, roi, scales, sizes)
        y = x if s["mode"] == "nearest" else x.astype(plan_dtype(plan, x.dtype))
        for k in reversed(range(x.ndim)):           # innermost axis first, as the kernel nests
            taps = plan[k]
            if taps is None:
                continue
            if taps.weight is None:
                y = np.take(y, taps.index[:, 0], axis=k)
                continue
            shape = [1] * y.ndim
            shape[k] = out[k]
            acc = None
            for t in range(taps.index.shape[1]):
                term = taps.weight[:, t].reshape(shape) * np.take(y, taps.index[:, t], axis=k)
                acc = term if acc is None else acc + term
            y = acc
        mask = np.ones(out, bool)
        for k, taps in enumerate(plan):
            if taps is not None and taps.valid is not None:
                shape = [1] * len(out)
                shape[k] = out[k]
                mask = mask & taps.valid.reshape(shape)
        y = np.where(mask, y, np.asarray(s["extrapolation"]).astype(y.dtype))
        return [np.asarray(y).astype(x.dtype)]

    def flops(self, node, graph):
        s = self.settings(node, ValueError)
        taps = {"nearest": 0, "linear": 2, "cubic": 4}[s["mode"]]
        return 2 * taps * graph.types[node.outputs[0]].size

    # -- values known only at run time: tap tables computed by the network --
    def runtime_layout(self, node, graph, known) -> list:
        """[(axis, taps, offsets byte offset, weights byte offset or None, inside byte offset
        or None)] of the run-time tables in the scratch buffer, and the total bytes; empty
        when roi / scales / sizes are known at compile time (``known(name)``)."""
        s = self.settings(node, ValueError)
        names = self._inputs(node, lambda n: n if graph.types[n].size else None)
        if all(n is None or known(n) is not None for n in names):
            return [], 0
        x, y = graph.types[node.inputs[0]].shape, graph.types[node.outputs[0]].shape
        taps = {"nearest": 1, "linear": 2, "cubic": 4}[s["mode"]]
        layout, size = [], 0
        for a in self.covered_axes(node, len(x)):
            if y[a] == 0 or x[a] == y[a] == 1:
                continue    # nothing to compute, or a copy whatever the scale (the one tap
                            # clamps to 0 and the weights sum to 1; inside: coordinate 0)
            offsets, size = size, size + 8 * taps * y[a]
            weights = None if taps == 1 else size
            size += 0 if taps == 1 else -(-4 * taps * y[a] // 8) * 8
            inside = size if s["coord"] == "tf_crop_and_resize" else None
            size += 0 if inside is None else -(-y[a] // 8) * 8
            layout.append((a, taps, offsets, weights, inside))
        return layout, size

    def scratch_bytes(self, node, graph):
        return self.runtime_layout(node, graph, lambda n: graph.constants.get(n))[1]

    def _lower_runtime(self, node, ctx, layout) -> None:
        """Scales or sizes (or roi) read at run time: the scale per axis is computed and the
        output shape it gives checked against the declared one, then each resized axis
        gets its tap tables (``nn_resize_axis`` in src/nn_resize.h) and the loop nest of the
        compile-time kernel reads them."""
        x, y = node.inputs[0], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        s = self.settings(node, ValueError)
        roi, scales, sizes = self._inputs(node, lambda n: n if ctx.type(n).size else None)
        axes, rank = self.covered_axes(node, len(shape)), len(shape)
        ctx.helper("resize")

        def read(name, k):
            value = ctx.known(name)
            if value is not None:
                return f"{float(np.asarray(value, F).reshape(-1)[k])!r}f"
            return f"(float){load_as_compute(ctx, ctx.type(name).dtype, f'{ctx.ptr(name)}[{k}]')}"
        ones = ", ".join(["1.0f"] * rank)
        lines = [f"float scale[{rank}] = {{{ones}}};", "int ok = 1;"]
        if scales:
            for k, a in enumerate(axes):
                lines += [f"scale[{a}] = {read(scales, k)};",
                          f"ok = ok && scale[{a}] > 0.0f && "
                          f"(int64_t)(scale[{a}] * {float(shape[a])!r}f) == {out[a]};"]
        else:
            given = ctx.known(sizes)
            n = [f"(int64_t){ctx.ptr(sizes)}[{k}]" if given is None
                 else str(int(np.asarray(given).reshape(-1)[k])) for k in range(len(axes))]
            ratio = [f"(float){n[k]} / {float(shape[a])!r}f" if shape[a] else "1.0f"
                     for k, a in enumerate(axes)]
            if s["policy"] == "stretch":
                for k, a in enumerate(axes):
                    lines += [f"scale[{a}] = {ratio[k]};", f"ok = ok && {n[k]} == {out[a]};"]
            else:
                pick = "<" if s["policy"] == "not_larger" else ">"
                lines.append(f"float r = {ratio[0]};")
                lines += [f"if ({ratio[k]} {pick} r) r = {ratio[k]};" for k in range(1, len(axes))]
                for a in axes:
                    lines += [f"scale[{a}] = r;",
                              f"ok = ok && (int64_t)nn_round_half_away((double)(r * "
                              f"{float(shape[a])!r}f)) == {out[a]};"]
        lines.append(ctx.check_statement("ok", f"run-time scales / sizes give the declared "
                                               f"{list(out)}"))
        box = {a: ("0.0f", "1.0f") for a in range(rank)}
        if roi:
            box.update({a: (read(roi, k), read(roi, k + len(axes))) for k, a in enumerate(axes)})
        codes = (f"NN_{s['mode'].upper()}", f"NN_{s['coord'].upper()}",
                 f"NN_{s['nearest'].upper()}", s["exclude"], int(bool(scales)))
        lines.append(f"const nn_resize_mode m = {{{', '.join(str(c) for c in codes)}, "
                     f"{float(F(s['cubic_a']))!r}f}};")
        if layout:
            lines.append(f"unsigned char *tables = {ctx.scratch('unsigned char')};")
        plan, xs, ys = [None] * rank, strides_of(shape), strides_of(out)
        for a, taps, offsets, weights, inside in layout:
            plan[a] = RuntimeTaps(taps, f"offsets{a}", None if weights is None else f"weights{a}",
                                  None if inside is None else f"inside{a}")
            lines.append(f"int64_t *offsets{a} = (int64_t *)(tables + {offsets});")
            if weights is not None:
                lines.append(f"float *weights{a} = (float *)(tables + {weights});")
            if inside is not None:
                lines.append(f"uint8_t *inside{a} = tables + {inside};")
            lines.append(f"nn_resize_axis(&m, {shape[a]}, {out[a]}, scale[{a}], "
                         f"{box[a][0]}, {box[a][1]}, {xs[a]}, {plan[a].offsets}, "
                         f"{plan[a].weights or 'NULL'}, {plan[a].valid or 'NULL'});")
        if not layout:
            lines.append("(void)m;                  /* every axis is copied */")
        if ctx.type(y).size:
            lines += _interpolate(ctx, x, y, out, plan, xs, ys, s["extrapolation"],
                                  emit=False).split("\n")
        ctx.emit(_block(lines))

    # -- the kernel --
    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        names = self._inputs(node, lambda n: n if ctx.type(n).size else None)
        if any(n is not None and ctx.known(n) is None for n in names):
            self._lower_runtime(node, ctx, self.runtime_layout(node, ctx.graph, ctx.known)[0])
            return
        if ctx.type(y).size == 0:
            return
        args = self._inputs(node, lambda n: known(ctx, n) if ctx.type(n).size else None)
        in_shape = ctx.shape(x)
        out, plan, s = self.taps(node, ctx.type(x).dtype.numpy, in_shape, *args)
        xs, ys = strides_of(in_shape), strides_of(out)
        if all(t is None or (t.weight is None and t.valid is None) for t in plan):
            copy_nest(ctx, y, x, [Axis(n, ys[k], xs[k]) if t is None else
                                  Axis(n, ys[k], table=tuple(int(i) * xs[k] for i in t.index[:, 0]))
                                  for k, (n, t) in enumerate(zip(out, plan))], hint="resize_rows")
            return
        _interpolate(ctx, x, y, out, plan, xs, ys, s["extrapolation"])


def plan_dtype(plan, dtype):
    for t in plan:
        if t is not None and t.weight is not None:
            return t.weight.dtype
    return dtype


@dataclass
class RuntimeTaps:
    """Taps of one axis computed at run time: C pointers to ``count`` element offsets per
    output position, their weights (None for nearest) and inside flags (None)."""
    count: int
    offsets: str
    weights: str | None = None
    valid: str | None = None
    weight = None                 # no compile-time weights (see plan_dtype)


def _interpolate(ctx, x, y, out, plan, xs, ys, extrapolation, emit: bool = True):
    """A loop nest whose body sums weighted taps: at each resized axis, pointers into the
    tables give the tap offsets (a[0], a[1], ...) and weights (wa[0], ...) of that position.
    Returns the block instead of emitting it when ``emit`` is false."""
    dtype = ctx.type(y).dtype
    wtype = "double" if plan_dtype(plan, np.float32) == np.float64 else "float"
    # Loop axes: copied axes merge with copied neighbours; resized axes stay on their own.
    loops = []                      # [size, dst stride, src stride, taps or None]
    for k, (n, taps) in enumerate(zip(out, plan)):
        prev = loops[-1] if loops else None
        if taps is None and n == 1:
            continue
        if taps is None and prev is not None and prev[3] is None \
                and prev[1] == ys[k] * n and prev[2] == xs[k] * n:
            prev[0], prev[1], prev[2] = prev[0] * n, ys[k], xs[k]
        else:
            loops.append([n, ys[k], xs[k], taps])
    lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};"]
    indent, letters, valid, resized, closing = "", iter("abcdefgh"), [], [], []
    var = [f"i{k}" if n > 1 else None for k, (n, _, _, _) in enumerate(loops)]
    for k, (n, _, src, taps) in enumerate(loops):
        opens = taps is not None and n > 1
        if n > 1:
            brace = " {" if opens else ""
            lines.append(f"{indent}for (size_t i{k} = 0; i{k} < {n}; ++i{k}){brace}")
            indent += "    "
            closing.append(indent[:-4] + "}" if opens else None)
        if taps is None:
            continue
        letter = next(letters)
        count = taps.count if isinstance(taps, RuntimeTaps) else taps.index.shape[1]
        at = "" if n == 1 else f" + {count} * i{k}" if count > 1 else f" + i{k}"
        if isinstance(taps, RuntimeTaps):
            lines.append(f"{indent}const int64_t *{letter} = {taps.offsets}{at};")
            if taps.weights:
                lines.append(f"{indent}const float *w{letter} = {taps.weights}{at};")
            if taps.valid:
                valid.append(f"{taps.valid}[{var[k] or 0}]")
            resized.append((letter, count, taps.weights is not None))
            continue
        offsets = (taps.index * src).reshape(-1)
        table = offset_table(ctx, offsets, "resize_offsets")
        lines.append(f"{indent}const {offset_ctype(offsets)} *{letter} = {table}{at};")
        if taps.weight is not None:
            weights = ctx.table(wtype, taps.weight.reshape(-1), "resize_weights")
            lines.append(f"{indent}const {wtype} *w{letter} = {weights}{at};")
        if taps.valid is not None:
            inside = ctx.table("uint8_t", taps.valid.astype(np.uint8), "resize_inside")
            valid.append(f"{inside}[{var[k] or 0}]")
        resized.append((letter, count, taps.weight is not None))
    base = index_expr(0, [(v, src) for v, (_, _, src, t) in zip(var, loops) if v and t is None])
    y_index = index_expr(0, [(v, dst) for v, (_, dst, _, _) in zip(var, loops) if v])
    terms = _weighted_terms(resized, [] if base == "0" else [base])
    value = f"\n{indent}        + ".join(terms)        # one line per outermost tap
    if valid:
        outside = value_literal(extrapolation, dtype)
        value = f"{' && '.join(valid)} ? {value if len(terms) == 1 else f'({value})'} : {outside}"
    lines.append(f"{indent}y[{y_index}] = {value};")
    lines += [c for c in reversed(closing) if c]
    if not emit:
        return _block(lines)
    ctx.emit(_block(lines))


def _weighted_terms(resized, offsets, depth=0) -> list:
    """The terms of: sum over taps of w * (the same for the next resized axis), down to
    x[offsets]."""
    if depth == len(resized):
        return [f"x[{' + '.join(offsets) or '0'}]"]
    letter, count, weighted = resized[depth]
    terms = []
    for t in range(count):
        inner = _weighted_terms(resized, offsets + [f"{letter}[{t}]"], depth + 1)
        inner_text = " + ".join(inner)
        if not weighted:
            terms.append(inner_text)
        else:
            inner_text = f"({inner_text})" if len(inner) > 1 else inner_text
            terms.append(f"w{letter}[{t}] * {inner_text}")
    return terms


# --- Upsample -------------------------------------------------------------------------------------
@register("Upsample", since=7)
class Upsample(Resize):
    """Opsets 7-9: y = x scaled up by ``scales`` (attribute, then input); becomes a Resize with
    asymmetric coordinates and opset-10 rounding."""
    def canonicalize(self, node, version, graph):
        scales = node.inputs[1] if len(node.inputs) > 1 else ""
        if not scales:
            scales = graph.unique_name(f"{node.outputs[0]}_scales")
            graph.add_constant(scales, np.array(node.attrs.get("scales", []), np.float32))
        mode = node.attrs.get("mode", "nearest")
        attrs = {"mode": "linear" if mode == "bilinear" else mode,
                 "coordinate_transformation_mode": "asymmetric", "nearest_mode": "simple"}
        return [node.replace(op="Resize", inputs=(node.inputs[0], "", scales), attrs=attrs)]
