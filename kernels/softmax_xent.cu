// Fused softmax cross-entropy over rows of logits, with class weights, ignore_index and
// label smoothing (torch.nn.functional.cross_entropy with class-index targets).
//
// Layout: logits (R, C) contiguous, one row per sample; target (R,) int64; weight (C,).
// Row r with target t and weights w (all ones without `has_weight`), lse = logsumexp(row):
//   loss_r = (1 - eps) * w_t * (lse - z_t) + eps / C * sum_c w_c * (lse - z_c)
// The launcher reduces the rows (mean divides by sum_r w_t over rows not ignored).
// Ignored rows give loss 0 and weight 0; a target outside [0, C) gives NaN, so a bad label
// is loud without a host round-trip.
// Launch: forward, one warp per row (block of 256 = 8 rows, grid-stride over rows); backward,
// a 1-D grid-stride loop over R*C.
#include "common.cuh"

template <typename T>
__global__ void softmax_xent_fwd(const T* __restrict__ logits, const index_t* __restrict__ target,
                                 const T* __restrict__ weight, T* __restrict__ loss,
                                 T* __restrict__ row_weight, T* __restrict__ lse_out,
                                 index_t rows, index_t classes, index_t ignore_index,
                                 int has_weight, double smoothing) {
    const int lane = threadIdx.x % warpSize;
    const index_t warps = (index_t)gridDim.x * (blockDim.x / warpSize);
    for (index_t r = ((index_t)blockIdx.x * blockDim.x + threadIdx.x) / warpSize; r < rows;
         r += warps) {
        const T* z = logits + r * classes;
        T m = Numeric<T>::neg_inf();
        for (index_t c = lane; c < classes; c += warpSize) m = (z[c] > m || z[c] != z[c]) ? z[c] : m;
        m = __shfl_sync(0xffffffffu, warp_max(m), 0);
        T sum_exp = T(0), w_sum = T(0), w_gap = T(0);  // gap: sum_c w_c * (m - z_c)
        for (index_t c = lane; c < classes; c += warpSize) {
            const T wc = has_weight ? weight[c] : T(1);
            sum_exp += exp(z[c] - m);
            w_sum += wc;
            w_gap += wc * (m - z[c]);
        }
        sum_exp = __shfl_sync(0xffffffffu, warp_sum(sum_exp), 0);
        w_sum = __shfl_sync(0xffffffffu, warp_sum(w_sum), 0);
        w_gap = __shfl_sync(0xffffffffu, warp_sum(w_gap), 0);
        if (lane == 0) {
            const T log_sum = log(sum_exp), lse = m + log_sum;
            const index_t t = target[r];
            T l = T(0), wt = T(0);
            if (t != ignore_index) {
                if (t < 0 || t >= classes) {
                    l = Numeric<T>::nan();
                } else {
                    wt = has_weight ? weight[t] : T(1);
                    l = (T)(1.0 - smoothing) * wt * (lse - z[t]) +
                        (T)(smoothing / (double)classes) * (w_gap + w_sum * log_sum);
                }
            }
            loss[r] = l;
            row_weight[r] = wt;
            lse_out[r] = lse;
        }
    }
}

// d loss_r / d z_rc = (1 - eps) * w_t * (p_c - [c == t]) + eps / C * (W * p_c - w_c), with
// p = softmax(row) and W = sum_c w_c, times the upstream scale of row r.
template <typename T>
__global__ void softmax_xent_bwd(const T* __restrict__ logits, const index_t* __restrict__ target,
                                 const T* __restrict__ weight, const T* __restrict__ lse,
                                 const T* __restrict__ weight_total, const T* __restrict__ scale,
                                 index_t scale_stride, T* __restrict__ grad, index_t rows,
                                 index_t classes, index_t ignore_index, int has_weight,
                                 double smoothing) {
    GF_GRID_STRIDE_LOOP(i, rows * classes) {
        const index_t r = i / classes, c = i % classes, t = target[r];
        if (t == ignore_index || t < 0 || t >= classes) {
            grad[i] = T(0);
            continue;
        }
        const T p = exp(logits[i] - lse[r]);
        const T wt = has_weight ? weight[t] : T(1), wc = has_weight ? weight[c] : T(1);
        const T hard = (T)(1.0 - smoothing) * wt * (p - (c == t ? T(1) : T(0)));
        const T soft = (T)(smoothing / (double)classes) * (weight_total[0] * p - wc);
        grad[i] = (hard + soft) * scale[r * scale_stride];
    }
}

template __global__ void softmax_xent_fwd<float>(const float*, const index_t*, const float*,
                                                 float*, float*, float*, index_t, index_t,
                                                 index_t, int, double);
template __global__ void softmax_xent_fwd<double>(const double*, const index_t*, const double*,
                                                  double*, double*, double*, index_t, index_t,
                                                  index_t, int, double);
template __global__ void softmax_xent_bwd<float>(const float*, const index_t*, const float*,
                                                 const float*, const float*, const float*,
                                                 index_t, float*, index_t, index_t, index_t, int,
                                                 double);
template __global__ void softmax_xent_bwd<double>(const double*, const index_t*, const double*,
                                                  const double*, const double*, const double*,
                                                  index_t, double*, index_t, index_t, index_t,
                                                  int, double);
