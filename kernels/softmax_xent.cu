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
// Types: T (float, double, __half, __nv_bfloat16) is the logits' and class weights' type,
// and that of the per-row loss and weight and of the gradient; the log-sum-exp and all
// arithmetic are in A = acc_t<T> (float32 for the 16-bit types), as are lse, the weight
// total and the upstream scale the backward pass reads.
#include "common.cuh"

template <typename T, typename A = acc_t<T>>
__global__ void softmax_xent_fwd(const T* __restrict__ logits, const index_t* __restrict__ target,
                                 const T* __restrict__ weight, T* __restrict__ loss,
                                 T* __restrict__ row_weight, A* __restrict__ lse_out,
                                 index_t rows, index_t classes, index_t ignore_index,
                                 int has_weight, double smoothing) {
    const int lane = threadIdx.x % warpSize;
    const index_t warps = (index_t)gridDim.x * (blockDim.x / warpSize);
    for (index_t r = ((index_t)blockIdx.x * blockDim.x + threadIdx.x) / warpSize; r < rows;
         r += warps) {
        const T* z = logits + r * classes;
        const A m = warp_row_max(z, classes, lane);
        A sum_exp = A(0), w_sum = A(0), w_gap = A(0);  // gap: sum_c w_c * (m - z_c)
        for (index_t c = lane; c < classes; c += warpSize) {
            const A wc = has_weight ? to_acc(weight[c]) : A(1), zc = to_acc(z[c]);
            sum_exp += exp(zc - m);
            w_sum += wc;
            w_gap += wc * (m - zc);
        }
        sum_exp = __shfl_sync(0xffffffffu, warp_sum(sum_exp), 0);
        w_sum = __shfl_sync(0xffffffffu, warp_sum(w_sum), 0);
        w_gap = __shfl_sync(0xffffffffu, warp_sum(w_gap), 0);
        if (lane == 0) {
            const A log_sum = log(sum_exp), lse = m + log_sum;
            const index_t t = target[r];
            A l = A(0), wt = A(0);
            if (t != ignore_index) {
                if (t < 0 || t >= classes) {
                    l = Numeric<A>::nan();
                } else {
                    wt = has_weight ? to_acc(weight[t]) : A(1);
                    l = (A)(1.0 - smoothing) * wt * (lse - to_acc(z[t])) +
                        (A)(smoothing / (double)classes) * (w_gap + w_sum * log_sum);
                }
            }
            loss[r] = from_acc<T>(l);
            row_weight[r] = from_acc<T>(wt);
            lse_out[r] = lse;
        }
    }
}

// d loss_r / d z_rc = (1 - eps) * w_t * (p_c - [c == t]) + eps / C * (W * p_c - w_c), with
// p = softmax(row) and W = sum_c w_c, times the upstream scale of row r.
template <typename T, typename A = acc_t<T>>
__global__ void softmax_xent_bwd(const T* __restrict__ logits, const index_t* __restrict__ target,
                                 const T* __restrict__ weight, const A* __restrict__ lse,
                                 const A* __restrict__ weight_total, const A* __restrict__ scale,
                                 index_t scale_stride, T* __restrict__ grad, index_t rows,
                                 index_t classes, index_t ignore_index, int has_weight,
                                 double smoothing) {
    GF_GRID_STRIDE_LOOP(i, rows * classes) {
        const index_t r = i / classes, c = i % classes, t = target[r];
        if (t == ignore_index || t < 0 || t >= classes) {
            grad[i] = from_acc<T>(A(0));
            continue;
        }
        const A p = exp(to_acc(logits[i]) - lse[r]);
        const A wt = has_weight ? to_acc(weight[t]) : A(1);
        const A wc = has_weight ? to_acc(weight[c]) : A(1);
        const A hard = (A)(1.0 - smoothing) * wt * (p - (c == t ? A(1) : A(0)));
        const A soft = (A)(smoothing / (double)classes) * (weight_total[0] * p - wc);
        grad[i] = from_acc<T>((hard + soft) * scale[r * scale_stride]);
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
template __global__ void softmax_xent_fwd<__half>(const __half*, const index_t*, const __half*,
                                                  __half*, __half*, float*, index_t, index_t,
                                                  index_t, int, double);
template __global__ void softmax_xent_fwd<__nv_bfloat16>(const __nv_bfloat16*, const index_t*,
                                                         const __nv_bfloat16*, __nv_bfloat16*,
                                                         __nv_bfloat16*, float*, index_t,
                                                         index_t, index_t, int, double);
template __global__ void softmax_xent_bwd<__half>(const __half*, const index_t*, const __half*,
                                                  const float*, const float*, const float*,
                                                  index_t, __half*, index_t, index_t, index_t,
                                                  int, double);
template __global__ void softmax_xent_bwd<__nv_bfloat16>(const __nv_bfloat16*, const index_t*,
                                                         const __nv_bfloat16*, const float*,
                                                         const float*, const float*, index_t,
                                                         __nv_bfloat16*, index_t, index_t,
                                                         index_t, int, double);
