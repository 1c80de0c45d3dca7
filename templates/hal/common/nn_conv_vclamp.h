/* The clamps of a convolution's fused epilogue (conv.h: nn_conv_epilogue_value after the
 * residual) on a vector, for the SIMD kernels that apply it as they store (x86 conv and
 * winograd, the depthwise vector path of x86 and NEON). The includer defines vec, vset1, vzero
 * and vmax(a, b) / vmin(a, b) as the selects a > b ? a : b and a < b ? a : b, b where the
 * comparison is false (x86's maxps / minps; NEON: a compare and a bit select). Then max(v, 0),
 * max(lo, v) and min(hi, v) are the scalar selects v > 0 ? v : 0, v < lo ? lo : v and
 * v > hi ? hi : v exactly, NaN and signed zeros included. */
#ifndef NN_CONV_VCLAMP_H
#define NN_CONV_VCLAMP_H

static inline vec nn_conv_vclamp(const nn_conv_epilogue *e, vec v)
{
    if (e->clamp & NN_CONV_RELU)
        v = vmax(v, vzero());
    if (e->clamp & NN_CONV_MIN)
        v = vmax(vset1(e->lo), v);
    if (e->clamp & NN_CONV_MAX)
        v = vmin(vset1(e->hi), v);
    return v;
}

#endif /* NN_CONV_VCLAMP_H */
