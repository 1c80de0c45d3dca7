/* Normalization kernels. Statistics take two passes (mean, then squared deviations) in
 * double, so large means do not cancel the variance away. */
#include "norm.h"

void NN_FN(batchnorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                          const float *mean, const float *var, float epsilon, size_t batch,
                          size_t channels, size_t inner) {
    for (size_t n = 0; n < batch; ++n) {
        for (size_t c = 0; c < channels; ++c) {
            const float s = scale[c] / sqrtf(var[c] + epsilon);
            const float t = bias[c] - mean[c] * s;
            for (size_t i = 0; i < inner; ++i)
                y[i] = x[i] * s + t;
            x += inner;
            y += inner;
        }
    }
}

/* Mean and 1 / sqrt(variance + epsilon) of x[0..size). */
static void moments(const float *x, size_t size, float epsilon, float *mean, float *inv_std) {
    double sum = 0;
    for (size_t i = 0; i < size; ++i)
        sum += x[i];
    const double m = sum / (double)size;
    double squares = 0;
    for (size_t i = 0; i < size; ++i) {
        const double d = x[i] - m;
        squares += d * d;
    }
    *mean = (float)m;
    *inv_std = (float)(1.0 / sqrt(squares / (double)size + epsilon));
}

void NN_FN(instancenorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                             float epsilon, size_t batch, size_t channels, size_t inner) {
    for (size_t n = 0; n < batch; ++n) {
        for (size_t c = 0; c < channels; ++c) {
            float m, r;
            moments(x, inner, epsilon, &m, &r);
            const float s = r * scale[c];
            const float t = bias[c] - m * s;
            for (size_t i = 0; i < inner; ++i)
                y[i] = x[i] * s + t;
            x += inner;
            y += inner;
        }
    }
}

void NN_FN(layernorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                          float *mean, float *inv_std_dev, float epsilon, size_t rows,
                          size_t size) {
    for (size_t row = 0; row < rows; ++row) {
        float m, r;
        moments(x, size, epsilon, &m, &r);
        if (mean) mean[row] = m;
        if (inv_std_dev) inv_std_dev[row] = r;
        if (bias) {
            for (size_t i = 0; i < size; ++i)
                y[i] = (x[i] - m) * r * scale[i] + bias[i];
        } else {
            for (size_t i = 0; i < size; ++i)
                y[i] = (x[i] - m) * r * scale[i];
        }
        x += size;
        y += size;
    }
}

void NN_FN(lrn_f32)(const float *x, float *y, size_t batch, size_t channels, size_t inner,
                    size_t size, float alpha, float beta, float bias) {
    const size_t before = (size - 1) / 2, after = size - 1 - before;
    const float alpha_over_size = alpha / (float)size;
    for (size_t n = 0; n < batch; ++n) {
        const float *xn = x + n * channels * inner;
        float *yn = y + n * channels * inner;
        for (size_t c = 0; c < channels; ++c) {
            const size_t lo = c < before ? 0 : c - before;
            const size_t hi = c + after < channels ? c + after : channels - 1;
            for (size_t i = 0; i < inner; ++i) {
                double squares = 0;
                for (size_t k = lo; k <= hi; ++k) {
                    const float v = xn[k * inner + i];
                    squares += (double)v * v;
                }
                const float base = bias + alpha_over_size * (float)squares;
                yn[c * inner + i] = xn[c * inner + i] * powf(base, -beta);
            }
        }
    }
}

/* One line of n elements `stride` apart; inlined with stride 1 for the common case. */
static inline void softmax_line(const float *x, float *y, size_t n, size_t stride, bool log_of) {
    float top = -INFINITY;
    for (size_t i = 0; i < n; ++i)
        top = x[i * stride] > top ? x[i * stride] : top;
    double sum = 0;
    if (log_of) {
        for (size_t i = 0; i < n; ++i)
            sum += expf(x[i * stride] - top);
        const double shift = (double)top + log(sum);
        for (size_t i = 0; i < n; ++i)
            y[i * stride] = (float)(x[i * stride] - shift);
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        const float e = expf(x[i * stride] - top);
        y[i * stride] = e;
        sum += e;
    }
    const float scale = (float)(1.0 / sum);
    for (size_t i = 0; i < n; ++i)
        y[i * stride] *= scale;
}

static void softmax_lines(const float *x, float *y, size_t outer, size_t n, size_t inner,
                          bool log_of) {
    for (size_t o = 0; o < outer; ++o, x += n * inner, y += n * inner) {
        if (inner == 1) {
            softmax_line(x, y, n, 1, log_of);
            continue;
        }
        for (size_t j = 0; j < inner; ++j)
            softmax_line(x + j, y + j, n, inner, log_of);
    }
}

void NN_FN(softmax_f32)(const float *x, float *y, size_t outer, size_t n, size_t inner) {
    softmax_lines(x, y, outer, n, inner, false);
}

void NN_FN(logsoftmax_f32)(const float *x, float *y, size_t outer, size_t n, size_t inner) {
    softmax_lines(x, y, outer, n, inner, true);
}
