// Convolution lowering: im2col and its adjoint col2im, for a cuBLAS matrix product through
// CuPy (gradflow/ops/conv.py does the product and chunks the batch to bound the buffer).
//
// Layout: x is (N, C, H, W) contiguous; cols is (N, C*KH*KW, OH*OW) contiguous, its rows
// ordered (c, ky, kx) like a flattened (O, C, KH, KW) weight, or with `batch_inner` set
// (C*KH*KW, N, OH*OW): then the columns of the whole batch form one (C*KH*KW, N*OH*OW)
// matrix, and the convolution is a single matrix product. Output pixel (oy, ox) and tap
// (ky, kx) read input row oy*SH - PT + ky*DH and column ox*SW - PL + kx*DW; reads outside
// the input give `pad_value`.
// Launch: 1-D grid-stride loops, one thread per output element, 64-bit indices.
// Types: float, double, __half, __nv_bfloat16; im2col is a copy, col2im sums in acc_t<T>
// (float32 for the 16-bit types) and rounds once; `pad_value` arrives as acc_t<T>.
#include "common.cuh"

template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, index_t n, index_t c,
                       index_t h, index_t w, index_t oh, index_t ow, int kh, int kw, int sh,
                       int sw, int pt, int pl, int dh, int dw, acc_t<T> pad_value,
                       int batch_inner) {
    const index_t total = n * c * kh * kw * oh * ow;
    const T pad = from_acc<T>(pad_value);
    GF_GRID_STRIDE_LOOP(i, total) {
        index_t rest = i;
        const index_t ox = rest % ow; rest /= ow;
        const index_t oy = rest % oh; rest /= oh;
        index_t sample = 0;
        if (batch_inner) { sample = rest % n; rest /= n; }
        const int kx = (int)(rest % kw); rest /= kw;
        const int ky = (int)(rest % kh); rest /= kh;
        const index_t plane = batch_inner ? sample * c + rest : rest;  // sample * c + channel
        const index_t iy = oy * sh - pt + (index_t)ky * dh;
        const index_t ix = ox * sw - pl + (index_t)kx * dw;
        cols[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(plane * h + iy) * w + ix]
                                                           : pad;
    }
}

// The adjoint of im2col, written as a gather: each input pixel sums the column entries that
// read it, so no atomics are needed and the result is deterministic.
template <typename T>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ x, index_t n, index_t c,
                       index_t h, index_t w, index_t oh, index_t ow, int kh, int kw, int sh,
                       int sw, int pt, int pl, int dh, int dw, int batch_inner) {
    const index_t total = n * c * h * w;
    const index_t taps = (index_t)kh * kw, pixels = oh * ow;
    GF_GRID_STRIDE_LOOP(i, total) {
        const index_t ix = i % w, iy = (i / w) % h, plane = i / (w * h);
        // cols row of tap 0 for this (sample, channel), and the step between taps' rows
        const index_t sample = plane / c, channel = plane % c;
        const index_t first = batch_inner ? channel * taps * n + sample : plane * taps;
        const index_t step = batch_inner ? n : 1;
        acc_t<T> sum = 0;
        for (int ky = 0; ky < kh; ++ky) {
            const index_t ty = iy + pt - (index_t)ky * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            const index_t oy = ty / sh;
            for (int kx = 0; kx < kw; ++kx) {
                const index_t tx = ix + pl - (index_t)kx * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                const index_t row = first + ((index_t)ky * kw + kx) * step;
                sum += to_acc(cols[row * pixels + oy * ow + tx / sw]);
            }
        }
        x[i] = from_acc<T>(sum);
    }
}

template __global__ void im2col<float>(const float*, float*, index_t, index_t, index_t, index_t,
                                       index_t, index_t, int, int, int, int, int, int, int, int,
                                       float, int);
template __global__ void im2col<double>(const double*, double*, index_t, index_t, index_t,
                                        index_t, index_t, index_t, int, int, int, int, int, int,
                                        int, int, double, int);
template __global__ void col2im<float>(const float*, float*, index_t, index_t, index_t, index_t,
                                       index_t, index_t, int, int, int, int, int, int, int, int,
                                       int);
template __global__ void col2im<double>(const double*, double*, index_t, index_t, index_t,
                                        index_t, index_t, index_t, int, int, int, int, int, int,
                                        int, int, int);
template __global__ void im2col<__half>(const __half*, __half*, index_t, index_t, index_t,
                                        index_t, index_t, index_t, int, int, int, int, int, int,
                                        int, int, float, int);
template __global__ void im2col<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, index_t,
                                               index_t, index_t, index_t, index_t, index_t, int,
                                               int, int, int, int, int, int, int, float, int);
template __global__ void col2im<__half>(const __half*, __half*, index_t, index_t, index_t,
                                        index_t, index_t, index_t, int, int, int, int, int, int,
                                        int, int, int);
template __global__ void col2im<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, index_t,
                                               index_t, index_t, index_t, index_t, index_t, int,
                                               int, int, int, int, int, int, int, int);
