// Helpers shared by gradflow's kernels: 64-bit indexing, grid-stride loops, IEEE infinities
// without <cmath> (NVRTC has no standard headers), warp/block sum reductions, and the
// low-precision element types with their float32 accumulation type.
//
// Every kernel indexes with `index_t` (64-bit), so tensors past 2**31 elements are safe.
// Launchers cap the grid and rely on grid-stride loops to cover any size.
//
// __half and __nv_bfloat16 come from CUDA's cuda_fp16.h and cuda_bf16.h. NVRTC finds them
// through the -I CuPy adds for the CUDA runtime headers (the nvidia-cuda-runtime wheel's
// nvidia/cu13/include, or a toolkit's include/); gradflow.cuda.compiler pre-includes them
// (NVRTC --pre-include) and drops the two lines below, so the source it hands CuPy includes
// nothing; nvcc reads them here. The CPU emulator (tests/emulator/cuda_emulator.h) defines
// both types itself. The toolkit headers guard themselves, so they may stand above the
// once-only guard of this file.
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

#pragma once

typedef long long index_t;

// The type a kernel computes in for elements of type T: float for the 16-bit types, T
// itself otherwise. Kernels load elements with to_acc, do all arithmetic in acc_t<T>, and
// store with from_acc (round to nearest even), so __half and __nv_bfloat16 kernels
// accumulate in float32 and float/double kernels are exactly what they were.
template <typename T>
struct Acc {
    typedef T type;
};
template <>
struct Acc<__half> {
    typedef float type;
};
template <>
struct Acc<__nv_bfloat16> {
    typedef float type;
};
template <typename T>
using acc_t = typename Acc<T>::type;

template <typename T>
__device__ __forceinline__ acc_t<T> to_acc(T v) {
    return v;
}
template <>
__device__ __forceinline__ float to_acc<__half>(__half v) {
    return __half2float(v);
}
template <>
__device__ __forceinline__ float to_acc<__nv_bfloat16>(__nv_bfloat16 v) {
    return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_acc(acc_t<T> v) {
    return v;
}
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) {
    return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Visit i = global thread index, stepping by the whole grid, while i < n.
#define GF_GRID_STRIDE_LOOP(i, n)                                                    \
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < (index_t)(n); \
         i += (index_t)blockDim.x * gridDim.x)

template <typename T>
struct Numeric;

template <>
struct Numeric<float> {
    static __device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000u); }
    static __device__ __forceinline__ float nan() { return __int_as_float(0x7fc00000); }
};

template <>
struct Numeric<double> {
    static __device__ __forceinline__ double neg_inf() {
        return __longlong_as_double(0xfff0000000000000ull);
    }
    static __device__ __forceinline__ double nan() {
        return __longlong_as_double(0x7ff8000000000000ull);
    }
};

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int d = warpSize / 2; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
    return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
    for (int d = warpSize / 2; d > 0; d >>= 1) {
        T other = __shfl_down_sync(0xffffffffu, v, d);
        v = (other > v || other != other) ? other : v;  // NaN wins, as in torch's max
    }
    return v;
}

// The maximum of a row of `cols` elements, read by the 32 lanes of one warp (lane c, c + 32,
// ...) in acc_t<T>, returned to every lane; NaN if the row holds one, -inf if it is empty.
template <typename T, typename A = acc_t<T>>
__device__ __forceinline__ A warp_row_max(const T* __restrict__ row, index_t cols, int lane) {
    A m = Numeric<A>::neg_inf();
    for (index_t c = lane; c < cols; c += warpSize) {
        const A v = to_acc(row[c]);
        m = (v > m || v != v) ? v : m;
    }
    return __shfl_sync(0xffffffffu, warp_max(m), 0);
}

// Sum of `v` over the block, returned to every thread. blockDim.x must be a multiple of 32
// (at most 1024) and every thread of the block must call it.
template <typename T>
__device__ T block_sum(T v) {
    __shared__ T partial[32];
    __shared__ T total;
    const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / warpSize) ? partial[lane] : T(0);
        v = warp_sum(v);
        if (lane == 0) total = v;
    }
    __syncthreads();
    v = total;
    __syncthreads();  // `total` and `partial` are free for the next call
    return v;
}
