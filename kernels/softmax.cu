// Softmax along the rows of a contiguous (R, C) array, forward and backward: the softmax of
// attention scores (torch.nn.functional.softmax and scaled_dot_product_attention).
//
// Layout: x, y, gy, gx (R, C) contiguous; the launcher moves the softmax dim last.
// Forward: y = exp(x - m) / sum_c exp(x_c - m), m the row's maximum (NaN if the row has one).
// With `safe`, a row whose maximum is -inf (every entry masked out) gives zeros instead of
// NaN, as attention's softmax does in torch; without it, such a row is NaN, as F.softmax's.
// Backward: gx = y * (gy - sum_c gy_c * y_c).
// Launch: one warp per row (block of 256 = 8 rows, grid-stride over rows): the row is read
// twice forward (max, then the sum) and written once; backward reads y and gy twice.
// Types: T (float, double, __half, __nv_bfloat16) in and out; the maximum, the sums and all
// arithmetic are in A = acc_t<T> (float32 for the 16-bit types).
#include "common.cuh"

template <typename T, typename A = acc_t<T>>
__global__ void softmax_fwd(const T* __restrict__ x, T* __restrict__ y, index_t rows,
                            index_t cols, int safe) {
    const int lane = threadIdx.x % warpSize;
    const index_t warps = (index_t)gridDim.x * (blockDim.x / warpSize);
    for (index_t r = ((index_t)blockIdx.x * blockDim.x + threadIdx.x) / warpSize; r < rows;
         r += warps) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        const A m = warp_row_max(xr, cols, lane);
        if (safe && m == Numeric<A>::neg_inf()) {
            for (index_t c = lane; c < cols; c += warpSize) yr[c] = from_acc<T>(A(0));
            continue;
        }
        A total = A(0);
        for (index_t c = lane; c < cols; c += warpSize) total += exp(to_acc(xr[c]) - m);
        total = __shfl_sync(0xffffffffu, warp_sum(total), 0);
        const A inv = A(1) / total;
        for (index_t c = lane; c < cols; c += warpSize)
            yr[c] = from_acc<T>(exp(to_acc(xr[c]) - m) * inv);
    }
}

template <typename T, typename A = acc_t<T>>
__global__ void softmax_bwd(const T* __restrict__ y, const T* __restrict__ gy,
                            T* __restrict__ gx, index_t rows, index_t cols) {
    const int lane = threadIdx.x % warpSize;
    const index_t warps = (index_t)gridDim.x * (blockDim.x / warpSize);
    for (index_t r = ((index_t)blockIdx.x * blockDim.x + threadIdx.x) / warpSize; r < rows;
         r += warps) {
        const T* yr = y + r * cols;
        const T* gr = gy + r * cols;
        A dot = A(0);
        for (index_t c = lane; c < cols; c += warpSize) dot += to_acc(gr[c]) * to_acc(yr[c]);
        dot = __shfl_sync(0xffffffffu, warp_sum(dot), 0);
        for (index_t c = lane; c < cols; c += warpSize)
            gx[r * cols + c] = from_acc<T>(to_acc(yr[c]) * (to_acc(gr[c]) - dot));
    }
}

template __global__ void softmax_fwd<float>(const float*, float*, index_t, index_t, int);
template __global__ void softmax_fwd<double>(const double*, double*, index_t, index_t, int);
template __global__ void softmax_fwd<__half>(const __half*, __half*, index_t, index_t, int);
template __global__ void softmax_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*,
                                                    index_t, index_t, int);
template __global__ void softmax_bwd<float>(const float*, const float*, float*, index_t,
                                            index_t);
template __global__ void softmax_bwd<double>(const double*, const double*, double*, index_t,
                                             index_t);
template __global__ void softmax_bwd<__half>(const __half*, const __half*, __half*, index_t,
                                             index_t);
template __global__ void softmax_bwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                    __nv_bfloat16*, index_t, index_t);
