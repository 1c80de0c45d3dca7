/* Normalization kernels: batch, instance and layer normalization, local response
 * normalization, softmax and log-softmax. Means, variances and sums of exponentials are
 * accumulated in double (16 partial sums added in a fixed order); the per-element work is in
 * float, exp and log from nn_vmath.h (1 ulp). Each kernel splits its planes / rows / lines
 * over the thread pool; results are bit-identical at every thread count. Outputs must not
 * overlap inputs. */
#ifndef NN_NORM_H
#define NN_NORM_H

#include "nn_hal.h"

/* x is [batch][channels][inner]:
 * y = (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c] */
void NN_FN(batchnorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                          const float *mean, const float *var, float epsilon, size_t batch,
                          size_t channels, size_t inner);

/* x is [batch][channels][inner]; each (n, c) plane is normalised to mean 0 and variance 1,
 * then y = normalised * scale[c] + bias[c] */
void NN_FN(instancenorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                             float epsilon, size_t batch, size_t channels, size_t inner);

/* x is [rows][size]; each row is normalised, then y = normalised * scale[i] + bias[i].
 * bias, mean and inv_std_dev may be NULL; mean and inv_std_dev receive one value per row. */
void NN_FN(layernorm_f32)(const float *x, float *y, const float *scale, const float *bias,
                          float *mean, float *inv_std_dev, float epsilon, size_t rows,
                          size_t size);

/* x is [batch][channels][inner]: y = x / (bias + alpha / size * sum of x^2 over the `size`
 * channels around c) ^ beta. The window's squares are summed in float from its lowest
 * channel; the power is exp(-beta * ln(base)) (relative error about (1 + |beta ln base|) ulp). */
void NN_FN(lrn_f32)(const float *x, float *y, size_t batch, size_t channels, size_t inner,
                    size_t size, float alpha, float beta, float bias);

/* x is [outer][n][inner]; softmax (log-softmax) over the n elements of each (outer, inner)
 * line, with the line's maximum subtracted first. */
void NN_FN(softmax_f32)(const float *x, float *y, size_t outer, size_t n, size_t inner);
void NN_FN(logsoftmax_f32)(const float *x, float *y, size_t outer, size_t n, size_t inner);

#endif /* NN_NORM_H */
