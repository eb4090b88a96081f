// 2-D pooling: max (saving the argmax for backward), average, and adaptive average.
//
// Layout: x is (P, H, W) contiguous with P = N*C planes; y is (P, OH, OW). Window (oy, ox)
// starts at row oy*SH - PH and column ox*SW - PW; max pooling steps its taps by the dilation
// (DH, DW). Cells outside the input never count (ceil_mode windows may overhang it).
// The max-pool index is torch's: row * W + col in the input plane.
// Launch: 1-D grid-stride loops, one thread per output element (forward) or per input
// element (backward). Backward kernels gather over the windows that cover an input pixel,
// so they need no atomics and are deterministic.
// Types: float, double, __half, __nv_bfloat16; every comparison and sum is in acc_t<T>
// (float32 for the 16-bit types), each output rounded once.
#include "common.cuh"

template <typename T>
__global__ void maxpool2d_fwd(const T* __restrict__ x, T* __restrict__ y,
                              index_t* __restrict__ argmax, index_t planes, index_t h,
                              index_t w, index_t oh, index_t ow, int kh, int kw, int sh, int sw,
                              int ph, int pw, int dh, int dw) {
    GF_GRID_STRIDE_LOOP(i, planes * oh * ow) {
        const index_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        const index_t y0 = oy * sh - ph, x0 = ox * sw - pw;
        // torch starts from the first in-bounds cell, so an all -inf window points inside.
        index_t first_y = y0, first_x = x0;
        while (first_y < 0) first_y += dh;
        while (first_x < 0) first_x += dw;
        acc_t<T> best = Numeric<acc_t<T>>::neg_inf();
        index_t best_at = first_y * w + first_x;
        const T* src = x + plane * h * w;
        for (int ky = 0; ky < kh; ++ky) {
            const index_t iy = y0 + (index_t)ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const index_t ix = x0 + (index_t)kx * dw;
                if (ix < 0 || ix >= w) continue;
                const acc_t<T> v = to_acc(src[iy * w + ix]);
                if (v > best || v != v) {  // NaN propagates, with its last NaN's index (torch's)
                    best = v;
                    best_at = iy * w + ix;
                }
            }
        }
        y[i] = from_acc<T>(best);
        argmax[i] = best_at;
    }
}

template <typename T>
__global__ void maxpool2d_bwd(const T* __restrict__ gy, const index_t* __restrict__ argmax,
                              T* __restrict__ gx, index_t planes, index_t h, index_t w,
                              index_t oh, index_t ow, int kh, int kw, int sh, int sw, int ph,
                              int pw, int dh, int dw) {
    GF_GRID_STRIDE_LOOP(i, planes * h * w) {
        const index_t ix = i % w, iy = (i / w) % h, plane = i / (w * h);
        const index_t here = iy * w + ix, base = plane * oh * ow;
        acc_t<T> sum = 0;
        for (int ky = 0; ky < kh; ++ky) {
            const index_t ty = iy + ph - (index_t)ky * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const index_t tx = ix + pw - (index_t)kx * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                const index_t o = base + (ty / sh) * ow + tx / sw;
                if (argmax[o] == here) sum += to_acc(gy[o]);
            }
        }
        gx[i] = from_acc<T>(sum);
    }
}

// torch's avg_pool2d divisor for window (oy, ox): `divisor` when positive, else the cells
// of the window inside the padded input (count_pad) or inside the input itself.
__device__ __forceinline__ index_t avg_divisor(index_t oy, index_t ox, index_t h, index_t w,
                                               int kh, int kw, int sh, int sw, int ph, int pw,
                                               int count_pad, index_t divisor) {
    if (divisor > 0) return divisor;
    index_t y0 = oy * sh - ph, x0 = ox * sw - pw;
    index_t y1 = min(y0 + kh, h + ph), x1 = min(x0 + kw, w + pw);
    if (count_pad) return (y1 - y0) * (x1 - x0);
    y0 = max(y0, (index_t)0); x0 = max(x0, (index_t)0);
    y1 = min(y1, h); x1 = min(x1, w);
    return (y1 - y0) * (x1 - x0);
}

template <typename T>
__global__ void avgpool2d_fwd(const T* __restrict__ x, T* __restrict__ y, index_t planes,
                              index_t h, index_t w, index_t oh, index_t ow, int kh, int kw,
                              int sh, int sw, int ph, int pw, int count_pad, index_t divisor) {
    GF_GRID_STRIDE_LOOP(i, planes * oh * ow) {
        const index_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        const index_t y0 = oy * sh - ph, x0 = ox * sw - pw;
        const T* src = x + plane * h * w;
        acc_t<T> sum = 0;
        for (index_t iy = max(y0, (index_t)0); iy < min(y0 + kh, h); ++iy)
            for (index_t ix = max(x0, (index_t)0); ix < min(x0 + kw, w); ++ix)
                sum += to_acc(src[iy * w + ix]);
        y[i] = from_acc<T>(sum / (acc_t<T>)avg_divisor(oy, ox, h, w, kh, kw, sh, sw, ph, pw,
                                                       count_pad, divisor));
    }
}

template <typename T>
__global__ void avgpool2d_bwd(const T* __restrict__ gy, T* __restrict__ gx, index_t planes,
                              index_t h, index_t w, index_t oh, index_t ow, int kh, int kw,
                              int sh, int sw, int ph, int pw, int count_pad, index_t divisor) {
    GF_GRID_STRIDE_LOOP(i, planes * h * w) {
        const index_t ix = i % w, iy = (i / w) % h, plane = i / (w * h);
        // Windows oy with oy*sh - ph <= iy < oy*sh - ph + kh.
        const index_t oy0 = max((index_t)0, (iy + ph - kh + sh) / sh);
        const index_t oy1 = min(oh, (iy + ph) / sh + 1);
        const index_t ox0 = max((index_t)0, (ix + pw - kw + sw) / sw);
        const index_t ox1 = min(ow, (ix + pw) / sw + 1);
        const T* g = gy + plane * oh * ow;
        acc_t<T> sum = 0;
        for (index_t oy = oy0; oy < oy1; ++oy)
            for (index_t ox = ox0; ox < ox1; ++ox)
                sum += to_acc(g[oy * ow + ox]) /
                       (acc_t<T>)avg_divisor(oy, ox, h, w, kh, kw, sh, sw, ph, pw, count_pad,
                                             divisor);
        gx[i] = from_acc<T>(sum);
    }
}

// Adaptive window o of n_out over n_in cells: [floor(o*n_in/n_out), ceil((o+1)*n_in/n_out)).
__device__ __forceinline__ index_t adaptive_start(index_t o, index_t n_in, index_t n_out) {
    return o * n_in / n_out;
}

__device__ __forceinline__ index_t adaptive_end(index_t o, index_t n_in, index_t n_out) {
    return ((o + 1) * n_in + n_out - 1) / n_out;
}

template <typename T>
__global__ void adaptive_avgpool2d_fwd(const T* __restrict__ x, T* __restrict__ y,
                                       index_t planes, index_t h, index_t w, index_t oh,
                                       index_t ow) {
    GF_GRID_STRIDE_LOOP(i, planes * oh * ow) {
        const index_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        const index_t y0 = adaptive_start(oy, h, oh), y1 = adaptive_end(oy, h, oh);
        const index_t x0 = adaptive_start(ox, w, ow), x1 = adaptive_end(ox, w, ow);
        const T* src = x + plane * h * w;
        acc_t<T> sum = 0;
        for (index_t iy = y0; iy < y1; ++iy)
            for (index_t ix = x0; ix < x1; ++ix) sum += to_acc(src[iy * w + ix]);
        y[i] = from_acc<T>(sum / (acc_t<T>)((y1 - y0) * (x1 - x0)));
    }
}

template <typename T>
__global__ void adaptive_avgpool2d_bwd(const T* __restrict__ gy, T* __restrict__ gx,
                                       index_t planes, index_t h, index_t w, index_t oh,
                                       index_t ow) {
    GF_GRID_STRIDE_LOOP(i, planes * h * w) {
        const index_t ix = i % w, iy = (i / w) % h, plane = i / (w * h);
        // The windows covering iy start at or after floor(iy*oh/h) - 1 and stop before
        // floor((iy+1)*oh/h) + 1; the loop checks each candidate.
        const index_t oy0 = max((index_t)0, iy * oh / h - 1);
        const index_t oy1 = min(oh, (iy + 1) * oh / h + 1);
        const index_t ox0 = max((index_t)0, ix * ow / w - 1);
        const index_t ox1 = min(ow, (ix + 1) * ow / w + 1);
        const T* g = gy + plane * oh * ow;
        acc_t<T> sum = 0;
        for (index_t oy = oy0; oy < oy1; ++oy) {
            const index_t y0 = adaptive_start(oy, h, oh), y1 = adaptive_end(oy, h, oh);
            if (iy < y0 || iy >= y1) continue;
            for (index_t ox = ox0; ox < ox1; ++ox) {
                const index_t x0 = adaptive_start(ox, w, ow), x1 = adaptive_end(ox, w, ow);
                if (ix < x0 || ix >= x1) continue;
                sum += to_acc(g[oy * ow + ox]) / (acc_t<T>)((y1 - y0) * (x1 - x0));
            }
        }
        gx[i] = from_acc<T>(sum);
    }
}

template __global__ void maxpool2d_fwd<float>(const float*, float*, index_t*, index_t, index_t,
                                              index_t, index_t, index_t, int, int, int, int, int,
                                              int, int, int);
template __global__ void maxpool2d_fwd<double>(const double*, double*, index_t*, index_t,
                                               index_t, index_t, index_t, index_t, int, int, int,
                                               int, int, int, int, int);
template __global__ void maxpool2d_bwd<float>(const float*, const index_t*, float*, index_t,
                                              index_t, index_t, index_t, index_t, int, int, int,
                                              int, int, int, int, int);
template __global__ void maxpool2d_bwd<double>(const double*, const index_t*, double*, index_t,
                                               index_t, index_t, index_t, index_t, int, int, int,
                                               int, int, int, int, int);
template __global__ void avgpool2d_fwd<float>(const float*, float*, index_t, index_t, index_t,
                                              index_t, index_t, int, int, int, int, int, int,
                                              int, index_t);
template __global__ void avgpool2d_fwd<double>(const double*, double*, index_t, index_t,
                                               index_t, index_t, index_t, int, int, int, int,
                                               int, int, int, index_t);
template __global__ void avgpool2d_bwd<float>(const float*, float*, index_t, index_t, index_t,
                                              index_t, index_t, int, int, int, int, int, int,
                                              int, index_t);
template __global__ void avgpool2d_bwd<double>(const double*, double*, index_t, index_t,
                                               index_t, index_t, index_t, int, int, int, int,
                                               int, int, int, index_t);
template __global__ void adaptive_avgpool2d_fwd<float>(const float*, float*, index_t, index_t,
                                                       index_t, index_t, index_t);
template __global__ void adaptive_avgpool2d_fwd<double>(const double*, double*, index_t,
                                                        index_t, index_t, index_t, index_t);
template __global__ void adaptive_avgpool2d_bwd<float>(const float*, float*, index_t, index_t,
                                                       index_t, index_t, index_t);
template __global__ void adaptive_avgpool2d_bwd<double>(const double*, double*, index_t,
                                                        index_t, index_t, index_t, index_t);
template __global__ void maxpool2d_fwd<__half>(const __half*, __half*, index_t*, index_t, index_t,
                                               index_t, index_t, index_t, int, int, int, int, int,
                                               int, int, int);
template __global__ void maxpool2d_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*,
                                                      index_t*, index_t, index_t, index_t, index_t,
                                                      index_t, int, int, int, int, int, int, int,
                                                      int);
template __global__ void maxpool2d_bwd<__half>(const __half*, const index_t*, __half*, index_t,
                                               index_t, index_t, index_t, index_t, int, int, int,
                                               int, int, int, int, int);
template __global__ void maxpool2d_bwd<__nv_bfloat16>(const __nv_bfloat16*, const index_t*,
                                                      __nv_bfloat16*, index_t, index_t, index_t,
                                                      index_t, index_t, int, int, int, int, int,
                                                      int, int, int);
template __global__ void avgpool2d_fwd<__half>(const __half*, __half*, index_t, index_t, index_t,
                                               index_t, index_t, int, int, int, int, int, int, int,
                                               index_t);
template __global__ void avgpool2d_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, index_t,
                                                      index_t, index_t, index_t, index_t, int, int,
                                                      int, int, int, int, int, index_t);
template __global__ void avgpool2d_bwd<__half>(const __half*, __half*, index_t, index_t, index_t,
                                               index_t, index_t, int, int, int, int, int, int, int,
                                               index_t);
template __global__ void avgpool2d_bwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, index_t,
                                                      index_t, index_t, index_t, index_t, int, int,
                                                      int, int, int, int, int, index_t);
template __global__ void adaptive_avgpool2d_fwd<__half>(const __half*, __half*, index_t, index_t,
                                                        index_t, index_t, index_t);
template __global__ void adaptive_avgpool2d_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*,
                                                               index_t, index_t, index_t, index_t,
                                                               index_t);
template __global__ void adaptive_avgpool2d_bwd<__half>(const __half*, __half*, index_t, index_t,
                                                        index_t, index_t, index_t);
template __global__ void adaptive_avgpool2d_bwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*,
                                                               index_t, index_t, index_t, index_t,
                                                               index_t);
