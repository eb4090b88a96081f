// Batch normalization over (N, C, S) inputs, S = H*W (or 1 for (N, C) inputs).
//
// Layout: x, y, gy, gx are (N, C, S) contiguous; per-channel vectors are (C,).
// Statistics: one block per channel; each thread sums its strided share, in double, then the
// block reduces. The mean comes first and the variance is the mean of squared deviations
// from it (two passes over the channel: no cancellation, unlike E[x^2] - E[x]^2).
// Launch: bn_stats and bn_grad_sums: grid C, block a multiple of 32 (the launcher uses 512);
// bn_grad_input: a 1-D grid-stride loop over N*C*S.
// Types: T (float, double, __half, __nv_bfloat16) is the activations' type (x, y, gy, gx);
// every per-channel vector (statistics, running averages, scale and shift, weight, sums) is
// A = acc_t<T>, float32 for the 16-bit types, and all arithmetic is in A (sums in double).
#include "common.cuh"

// Per-channel mean and 1/sqrt(var + eps) of a training batch; when `running_mean` is given,
// also the running averages' update (the unbiased variance goes into `running_var`).
template <typename T, typename A = acc_t<T>>
__global__ void bn_stats(const T* __restrict__ x, A* __restrict__ mean, A* __restrict__ invstd,
                         A* __restrict__ running_mean, A* __restrict__ running_var, index_t n,
                         index_t c, index_t s, double momentum, double eps, int update) {
    const index_t channel = blockIdx.x, count = n * s;
    double sum = 0.0;
    for (index_t j = threadIdx.x; j < count; j += blockDim.x)
        sum += (double)to_acc(x[((j / s) * c + channel) * s + j % s]);
    const double mu = block_sum(sum) / (double)count;
    double squares = 0.0;
    for (index_t j = threadIdx.x; j < count; j += blockDim.x) {
        const double d = (double)to_acc(x[((j / s) * c + channel) * s + j % s]) - mu;
        squares += d * d;
    }
    const double var = block_sum(squares) / (double)count;
    if (threadIdx.x == 0) {
        mean[channel] = (A)mu;
        invstd[channel] = (A)(1.0 / sqrt(var + eps));
        if (update) {
            const double unbiased = count > 1 ? var * count / (double)(count - 1) : var;
            running_mean[channel] =
                (A)((1.0 - momentum) * (double)running_mean[channel] + momentum * mu);
            running_var[channel] =
                (A)((1.0 - momentum) * (double)running_var[channel] + momentum * unbiased);
        }
    }
}

// y = x * scale[c] + shift[c]: the normalisation and affine map folded per channel.
template <typename T, typename A = acc_t<T>>
__global__ void bn_apply(const T* __restrict__ x, const A* __restrict__ scale,
                         const A* __restrict__ shift, T* __restrict__ y, index_t n, index_t c,
                         index_t s) {
    GF_GRID_STRIDE_LOOP(i, n * c * s) {
        const index_t channel = (i / s) % c;
        y[i] = from_acc<T>(to_acc(x[i]) * scale[channel] + shift[channel]);
    }
}

// Per-channel sums of gy and of gy * xhat, xhat = (x - mean) * invstd: the bias and weight
// gradients, and the two terms the input gradient subtracts.
template <typename T, typename A = acc_t<T>>
__global__ void bn_grad_sums(const T* __restrict__ gy, const T* __restrict__ x,
                             const A* __restrict__ mean, const A* __restrict__ invstd,
                             A* __restrict__ sum_gy, A* __restrict__ sum_gy_xhat, index_t n,
                             index_t c, index_t s) {
    const index_t channel = blockIdx.x, count = n * s;
    const double mu = (double)mean[channel], inv = (double)invstd[channel];
    double g_sum = 0.0, gx_sum = 0.0;
    for (index_t j = threadIdx.x; j < count; j += blockDim.x) {
        const index_t at = ((j / s) * c + channel) * s + j % s;
        const double g = (double)to_acc(gy[at]);
        g_sum += g;
        gx_sum += g * ((double)to_acc(x[at]) - mu) * inv;
    }
    g_sum = block_sum(g_sum);
    gx_sum = block_sum(gx_sum);
    if (threadIdx.x == 0) {
        sum_gy[channel] = (A)g_sum;
        sum_gy_xhat[channel] = (A)gx_sum;
    }
}

// gx = weight * invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), means over N*S.
template <typename T, typename A = acc_t<T>>
__global__ void bn_grad_input(const T* __restrict__ gy, const T* __restrict__ x,
                              const A* __restrict__ mean, const A* __restrict__ invstd,
                              const A* __restrict__ weight, const A* __restrict__ sum_gy,
                              const A* __restrict__ sum_gy_xhat, T* __restrict__ gx, index_t n,
                              index_t c, index_t s, int has_weight) {
    const A inv_count = A(1) / (A)(n * s);
    GF_GRID_STRIDE_LOOP(i, n * c * s) {
        const index_t channel = (i / s) % c;
        const A inv = invstd[channel];
        const A xhat = (to_acc(x[i]) - mean[channel]) * inv;
        const A w = has_weight ? weight[channel] : A(1);
        gx[i] = from_acc<T>(w * inv * (to_acc(gy[i]) - sum_gy[channel] * inv_count -
                                       xhat * sum_gy_xhat[channel] * inv_count));
    }
}

template __global__ void bn_stats<float>(const float*, float*, float*, float*, float*, index_t,
                                         index_t, index_t, double, double, int);
template __global__ void bn_stats<double>(const double*, double*, double*, double*, double*,
                                          index_t, index_t, index_t, double, double, int);
template __global__ void bn_apply<float>(const float*, const float*, const float*, float*,
                                         index_t, index_t, index_t);
template __global__ void bn_apply<double>(const double*, const double*, const double*, double*,
                                          index_t, index_t, index_t);
template __global__ void bn_grad_sums<float>(const float*, const float*, const float*,
                                             const float*, float*, float*, index_t, index_t,
                                             index_t);
template __global__ void bn_grad_sums<double>(const double*, const double*, const double*,
                                              const double*, double*, double*, index_t,
                                              index_t, index_t);
template __global__ void bn_grad_input<float>(const float*, const float*, const float*,
                                              const float*, const float*, const float*,
                                              const float*, float*, index_t, index_t, index_t,
                                              int);
template __global__ void bn_grad_input<double>(const double*, const double*, const double*,
                                               const double*, const double*, const double*,
                                               const double*, double*, index_t, index_t,
                                               index_t, int);
template __global__ void bn_stats<__half>(const __half*, float*, float*, float*, float*, index_t,
                                          index_t, index_t, double, double, int);
template __global__ void bn_stats<__nv_bfloat16>(const __nv_bfloat16*, float*, float*, float*,
                                                 float*, index_t, index_t, index_t, double,
                                                 double, int);
template __global__ void bn_apply<__half>(const __half*, const float*, const float*, __half*,
                                          index_t, index_t, index_t);
template __global__ void bn_apply<__nv_bfloat16>(const __nv_bfloat16*, const float*, const float*,
                                                 __nv_bfloat16*, index_t, index_t, index_t);
template __global__ void bn_grad_sums<__half>(const __half*, const __half*, const float*,
                                              const float*, float*, float*, index_t, index_t,
                                              index_t);
template __global__ void bn_grad_sums<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                     const float*, const float*, float*, float*,
                                                     index_t, index_t, index_t);
template __global__ void bn_grad_input<__half>(const __half*, const __half*, const float*,
                                               const float*, const float*, const float*,
                                               const float*, __half*, index_t, index_t, index_t,
                                               int);
template __global__ void bn_grad_input<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const float*, const float*, const float*,
                                                      const float*, const float*,
                                                      __nv_bfloat16*, index_t, index_t, index_t,
                                                      int);
