// Depthwise 2-D convolution (groups == in_channels, as in MobileNet): forward, input gradient
// and weight gradient computed directly, without im2col's (C*kh*kw, N*oh*ow) buffer and a
// batched product of g tiny matrices.
//
// Layout: x and gx are (N, C, H, W), the weight and gw (C*M, 1, KH, KW), y and gy
// (N, C*M, OH, OW), all contiguous; M is the channel multiplier, so output channel o reads
// input channel o / M. Output pixel (oy, ox) and tap (ky, kx) read input row
// oy*SH - PT + ky*DH and column ox*SW - PL + kx*DW; reads outside the input are zero.
// Types: T (float, double, __half, __nv_bfloat16) in and out; loads through to_acc, sums and
// products in A = acc_t<T> (float32 for the 16-bit types), each result rounded once.
// Launch: depthwise2d_fwd and depthwise2d_bwd_input: 1-D grid-stride loops, one thread per
// output (resp. input) element, 64-bit indices; the input gradient is a gather over the
// outputs that read a pixel, so no atomics. depthwise2d_bwd_weight: one block per weight
// entry (o, ky, kx), in a block-stride loop when the grid is capped; blockDim a multiple of 32
// (the launcher uses 256). Each thread sums a strided share of the N*OH*OW products, then the
// block reduces (block_sum): a fixed order, so the result is deterministic.
#include "common.cuh"

template <typename T, typename Acc = acc_t<T>>
__global__ void depthwise2d_fwd(const T* __restrict__ x, const T* __restrict__ w,
                                T* __restrict__ y, index_t n, index_t c, index_t h, index_t wd,
                                index_t oh, index_t ow, int m, int kh, int kw, int sh, int sw,
                                int pt, int pl, int dh, int dw) {
    const index_t outs = c * m;
    GF_GRID_STRIDE_LOOP(i, n * outs * oh * ow) {
        const index_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);  // sample*outs+o
        const index_t o = plane % outs, sample = plane / outs;
        const T* image = x + (sample * c + o / m) * h * wd;
        const T* taps = w + o * kh * kw;
        Acc sum = Acc(0);
        for (int ky = 0; ky < kh; ++ky) {
            const index_t iy = oy * sh - pt + (index_t)ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const index_t ix = ox * sw - pl + (index_t)kx * dw;
                if (ix < 0 || ix >= wd) continue;
                sum += to_acc(image[iy * wd + ix]) * to_acc(taps[ky * kw + kx]);
            }
        }
        y[i] = from_acc<T>(sum);
    }
}

// gx[n, ch, iy, ix] = sum over the M outputs o of channel ch and the taps (ky, kx) whose
// window reads (iy, ix): gy[n, o, oy, ox] * w[o, ky, kx].
template <typename T, typename Acc = acc_t<T>>
__global__ void depthwise2d_bwd_input(const T* __restrict__ gy, const T* __restrict__ w,
                                      T* __restrict__ gx, index_t n, index_t c, index_t h,
                                      index_t wd, index_t oh, index_t ow, int m, int kh, int kw,
                                      int sh, int sw, int pt, int pl, int dh, int dw) {
    const index_t outs = c * m;
    GF_GRID_STRIDE_LOOP(i, n * c * h * wd) {
        const index_t ix = i % wd, iy = (i / wd) % h, plane = i / (wd * h);  // sample*c + ch
        const index_t ch = plane % c, sample = plane / c;
        Acc sum = Acc(0);
        for (int j = 0; j < m; ++j) {
            const index_t o = ch * m + j;
            const T* grads = gy + (sample * outs + o) * oh * ow;
            const T* taps = w + o * kh * kw;
            for (int ky = 0; ky < kh; ++ky) {
                const index_t ty = iy + pt - (index_t)ky * dh;
                if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
                const index_t oy = ty / sh;
                for (int kx = 0; kx < kw; ++kx) {
                    const index_t tx = ix + pl - (index_t)kx * dw;
                    if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                    sum += to_acc(grads[oy * ow + tx / sw]) * to_acc(taps[ky * kw + kx]);
                }
            }
        }
        gx[i] = from_acc<T>(sum);
    }
}

// gw[o, ky, kx] = sum over samples and output pixels of gy[n, o, oy, ox] times the input
// pixel that tap (ky, kx) of (oy, ox) reads.
template <typename T, typename Acc = acc_t<T>>
__global__ void depthwise2d_bwd_weight(const T* __restrict__ x, const T* __restrict__ gy,
                                       T* __restrict__ gw, index_t n, index_t c, index_t h,
                                       index_t wd, index_t oh, index_t ow, int m, int kh, int kw,
                                       int sh, int sw, int pt, int pl, int dh, int dw) {
    const index_t outs = c * m, taps = (index_t)kh * kw, pixels = oh * ow;
    const index_t count = n * pixels;
    for (index_t e = blockIdx.x; e < outs * taps; e += gridDim.x) {  // uniform per block
        const int kx = (int)(e % kw), ky = (int)((e / kw) % kh);
        const index_t o = e / taps;
        const T* image = x + (o / m) * h * wd;  // sample 0's input channel of o
        const T* grads = gy + o * pixels;       // sample 0's output channel o
        Acc sum = Acc(0);
        for (index_t j = threadIdx.x; j < count; j += blockDim.x) {
            const index_t ox = j % ow, oy = (j / ow) % oh, sample = j / pixels;
            const index_t iy = oy * sh - pt + (index_t)ky * dh;
            const index_t ix = ox * sw - pl + (index_t)kx * dw;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            sum += to_acc(grads[sample * outs * pixels + oy * ow + ox]) *
                   to_acc(image[sample * c * h * wd + iy * wd + ix]);
        }
        sum = block_sum(sum);
        if (threadIdx.x == 0) gw[e] = from_acc<T>(sum);
    }
}

template __global__ void depthwise2d_fwd<float>(const float*, const float*, float*, index_t,
                                                index_t, index_t, index_t, index_t, index_t,
                                                int, int, int, int, int, int, int, int, int);
template __global__ void depthwise2d_fwd<double>(const double*, const double*, double*,
                                                 index_t, index_t, index_t, index_t, index_t,
                                                 index_t, int, int, int, int, int, int, int,
                                                 int, int);
template __global__ void depthwise2d_bwd_input<float>(const float*, const float*, float*,
                                                      index_t, index_t, index_t, index_t,
                                                      index_t, index_t, int, int, int, int,
                                                      int, int, int, int, int);
template __global__ void depthwise2d_bwd_input<double>(const double*, const double*, double*,
                                                       index_t, index_t, index_t, index_t,
                                                       index_t, index_t, int, int, int, int,
                                                       int, int, int, int, int);
template __global__ void depthwise2d_bwd_weight<float>(const float*, const float*, float*,
                                                       index_t, index_t, index_t, index_t,
                                                       index_t, index_t, int, int, int, int,
                                                       int, int, int, int, int);
template __global__ void depthwise2d_bwd_weight<double>(const double*, const double*, double*,
                                                        index_t, index_t, index_t, index_t,
                                                        index_t, index_t, int, int, int, int,
                                                        int, int, int, int, int);
template __global__ void depthwise2d_fwd<__half>(const __half*, const __half*, __half*,
    index_t, index_t, index_t, index_t, index_t, index_t, int, int, int, int, int, int, int,
    int, int);
template __global__ void depthwise2d_fwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*,
    index_t, index_t, index_t, index_t, index_t, index_t, int, int, int, int, int, int, int,
    int, int);
template __global__ void depthwise2d_bwd_input<__half>(const __half*, const __half*, __half*,
    index_t, index_t, index_t, index_t, index_t, index_t, int, int, int, int, int, int, int,
    int, int);
template __global__ void depthwise2d_bwd_input<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*,
    index_t, index_t, index_t, index_t, index_t, index_t, int, int, int, int, int, int, int,
    int, int);
template __global__ void depthwise2d_bwd_weight<__half>(const __half*, const __half*, __half*,
    index_t, index_t, index_t, index_t, index_t, index_t, int, int, int, int, int, int, int,
    int, int);
template __global__ void depthwise2d_bwd_weight<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*,
    index_t, index_t, index_t, index_t, index_t, index_t, int, int, int, int, int, int, int,
    int, int);
