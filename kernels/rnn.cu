// Fused recurrent cells, one time step, forward and backward: the gate nonlinearities and the
// cell update of LSTM and GRU, and the tanh/relu cell of a plain RNN. The GEMMs around them
// (input projection, recurrent projection) run on cuBLAS; each kernel here replaces the chain
// of elementwise ops between two GEMMs. Each is the twin of the function of the same name in
// gradflow/ops/rnn_arrays.py (the readable reference).
//
// Layout: every array is contiguous and feature-major, hidden units j = 0..H-1 by rows of the
// batch n = 0..N-1 (the layout ops/rnn.py keeps, where W @ h is one GEMM per step). States
// c_prev, c, h_prev, h are (H, N), element (j, n) at e = j*N + n. Gate arrays are (G*H, N),
// the G gates' (H, N) blocks one after the other: gate k of element e at k*H*N + e, in torch's
// gate order: LSTM (G = 4) i, f, g, o; GRU (G = 3) r, z, n. `act` holds the activated gates,
// laid out as the gates (the backward pass reads them instead of recomputing the
// nonlinearities).
//   LSTM: i, f, o = sigmoid(.), g = tanh(.); c = f*c_prev + i*g; h = o*tanh(c).
//   GRU:  r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r*gh_n),
//         h = (1 - z)*n + z*h_prev = n + z*(h_prev - n); gh holds b_hh, so r scales b_hn.
//   RNN:  h = tanh(pre) or relu(pre), pre (H, N) (the twin's `gates`).
// Launch: one thread per element e, a 1-D grid-stride loop over H*N; `size` = H*N is also the
// distance between two gates' blocks.
// Types: float, double, __half, __nv_bfloat16; each kernel loads to A = acc_t<T> (float32
// for the 16-bit types), computes there and rounds each stored value once.
#include "common.cuh"

// sigmoid(x) = (1 + tanh(x/2)) / 2, as the twin computes it: no overflow for large |x|.
template <typename A>
__device__ __forceinline__ A sigmoid(A x) {
    return tanh(x * A(0.5)) * A(0.5) + A(0.5);
}

template <typename T>
__global__ void lstm_cell_fwd(const T* __restrict__ gates, const T* __restrict__ c_prev,
                              T* __restrict__ h, T* __restrict__ c, T* __restrict__ act,
                              index_t size) {
    GF_GRID_STRIDE_LOOP(e, size) {
        typedef acc_t<T> A;
        const A i = sigmoid(to_acc(gates[e])), f = sigmoid(to_acc(gates[e + size]));
        const A g = tanh(to_acc(gates[e + 2 * size]));
        const A o = sigmoid(to_acc(gates[e + 3 * size]));
        const A cell = f * to_acc(c_prev[e]) + i * g;
        c[e] = from_acc<T>(cell);
        h[e] = from_acc<T>(o * tanh(cell));
        act[e] = from_acc<T>(i);
        act[e + size] = from_acc<T>(f);
        act[e + 2 * size] = from_acc<T>(g);
        act[e + 3 * size] = from_acc<T>(o);
    }
}

// dc = g_c + g_h*o*(1 - tanh(c)^2); gate gradients through each activation's derivative
// (sigmoid' = s*(1 - s), tanh' = 1 - t^2); g_c_prev = dc*f.
template <typename T>
__global__ void lstm_cell_bwd(const T* __restrict__ g_h, const T* __restrict__ g_c,
                              const T* __restrict__ act, const T* __restrict__ c_prev,
                              const T* __restrict__ c, T* __restrict__ g_gates,
                              T* __restrict__ g_c_prev, index_t size) {
    GF_GRID_STRIDE_LOOP(e, size) {
        typedef acc_t<T> A;
        const A i = to_acc(act[e]), f = to_acc(act[e + size]);
        const A g = to_acc(act[e + 2 * size]), o = to_acc(act[e + 3 * size]);
        const A tc = tanh(to_acc(c[e])), gh = to_acc(g_h[e]);
        const A dc = to_acc(g_c[e]) + gh * o * (A(1) - tc * tc);
        g_gates[e] = from_acc<T>(dc * g * i * (A(1) - i));
        g_gates[e + size] = from_acc<T>(dc * to_acc(c_prev[e]) * f * (A(1) - f));
        g_gates[e + 2 * size] = from_acc<T>(dc * i * (A(1) - g * g));
        g_gates[e + 3 * size] = from_acc<T>(gh * tc * o * (A(1) - o));
        g_c_prev[e] = from_acc<T>(dc * f);
    }
}

template <typename T>
__global__ void gru_cell_fwd(const T* __restrict__ gi, const T* __restrict__ gh,
                             const T* __restrict__ h_prev, T* __restrict__ h,
                             T* __restrict__ act, index_t size) {
    GF_GRID_STRIDE_LOOP(e, size) {
        typedef acc_t<T> A;
        const A r = sigmoid(to_acc(gi[e]) + to_acc(gh[e]));
        const A z = sigmoid(to_acc(gi[e + size]) + to_acc(gh[e + size]));
        const A nn = tanh(to_acc(gi[e + 2 * size]) + r * to_acc(gh[e + 2 * size]));
        h[e] = from_acc<T>(nn + z * (to_acc(h_prev[e]) - nn));
        act[e] = from_acc<T>(r);
        act[e + size] = from_acc<T>(z);
        act[e + 2 * size] = from_acc<T>(nn);
    }
}

// dn = g_h*(1 - z)*(1 - n^2), dz = g_h*(h_prev - n)*z*(1 - z), dr = dn*gh_n*r*(1 - r);
// g_gi = (dr, dz, dn), g_gh = (dr, dz, dn*r), g_h_prev = g_h*z.
template <typename T>
__global__ void gru_cell_bwd(const T* __restrict__ g_h, const T* __restrict__ act,
                             const T* __restrict__ gh_n, const T* __restrict__ h_prev,
                             T* __restrict__ g_gi, T* __restrict__ g_gh,
                             T* __restrict__ g_h_prev, index_t size) {
    GF_GRID_STRIDE_LOOP(e, size) {
        typedef acc_t<T> A;
        const A r = to_acc(act[e]), z = to_acc(act[e + size]);
        const A nn = to_acc(act[e + 2 * size]), g = to_acc(g_h[e]);
        const A dn = g * (A(1) - z) * (A(1) - nn * nn);
        const A dz = g * (to_acc(h_prev[e]) - nn) * z * (A(1) - z);
        const A dr = dn * to_acc(gh_n[e]) * r * (A(1) - r);
        g_gi[e] = from_acc<T>(dr);
        g_gi[e + size] = from_acc<T>(dz);
        g_gi[e + 2 * size] = from_acc<T>(dn);
        g_gh[e] = from_acc<T>(dr);
        g_gh[e + size] = from_acc<T>(dz);
        g_gh[e + 2 * size] = from_acc<T>(dn * r);
        g_h_prev[e] = from_acc<T>(g * z);
    }
}

// relu keeps NaN (torch's relu propagates it); tanh does by itself.
template <typename T>
__global__ void rnn_cell_fwd(const T* __restrict__ pre, T* __restrict__ h, index_t size,
                             int relu) {
    GF_GRID_STRIDE_LOOP(e, size) {
        const acc_t<T> x = to_acc(pre[e]);
        h[e] = from_acc<T>(relu ? (x < 0 ? acc_t<T>(0) : x) : tanh(x));
    }
}

// g_pre = g_h*(1 - h^2) for tanh, g_h*(h > 0) for relu, from the output h.
template <typename T>
__global__ void rnn_cell_bwd(const T* __restrict__ g_h, const T* __restrict__ h,
                             T* __restrict__ g_pre, index_t size, int relu) {
    GF_GRID_STRIDE_LOOP(e, size) {
        typedef acc_t<T> A;
        const A y = to_acc(h[e]), g = to_acc(g_h[e]);
        g_pre[e] = from_acc<T>(relu ? (y > A(0) ? g : A(0)) : g * (A(1) - y * y));
    }
}

template __global__ void lstm_cell_fwd<float>(const float*, const float*, float*, float*, float*,
                                              index_t);
template __global__ void lstm_cell_fwd<double>(const double*, const double*, double*, double*,
                                               double*, index_t);
template __global__ void lstm_cell_bwd<float>(const float*, const float*, const float*,
                                              const float*, const float*, float*, float*,
                                              index_t);
template __global__ void lstm_cell_bwd<double>(const double*, const double*, const double*,
                                               const double*, const double*, double*, double*,
                                               index_t);
template __global__ void gru_cell_fwd<float>(const float*, const float*, const float*, float*,
                                             float*, index_t);
template __global__ void gru_cell_fwd<double>(const double*, const double*, const double*,
                                              double*, double*, index_t);
template __global__ void gru_cell_bwd<float>(const float*, const float*, const float*,
                                             const float*, float*, float*, float*, index_t);
template __global__ void gru_cell_bwd<double>(const double*, const double*, const double*,
                                              const double*, double*, double*, double*, index_t);
template __global__ void rnn_cell_fwd<float>(const float*, float*, index_t, int);
template __global__ void rnn_cell_fwd<double>(const double*, double*, index_t, int);
template __global__ void rnn_cell_bwd<float>(const float*, const float*, float*, index_t, int);
template __global__ void rnn_cell_bwd<double>(const double*, const double*, double*, index_t,
                                              int);
template __global__ void lstm_cell_fwd<__half>(const __half*, const __half*, __half*, __half*,
                                               __half*, index_t);
template __global__ void lstm_cell_fwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                      __nv_bfloat16*, __nv_bfloat16*,
                                                      __nv_bfloat16*, index_t);
template __global__ void lstm_cell_bwd<__half>(const __half*, const __half*, const __half*,
                                               const __half*, const __half*, __half*, __half*,
                                               index_t);
template __global__ void lstm_cell_bwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const __nv_bfloat16*, __nv_bfloat16*,
                                                      __nv_bfloat16*, index_t);
template __global__ void gru_cell_fwd<__half>(const __half*, const __half*, const __half*, __half*,
                                              __half*, index_t);
template __global__ void gru_cell_fwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                     const __nv_bfloat16*, __nv_bfloat16*,
                                                     __nv_bfloat16*, index_t);
template __global__ void gru_cell_bwd<__half>(const __half*, const __half*, const __half*,
                                              const __half*, __half*, __half*, __half*, index_t);
template __global__ void gru_cell_bwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                     const __nv_bfloat16*, const __nv_bfloat16*,
                                                     __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*,
                                                     index_t);
template __global__ void rnn_cell_fwd<__half>(const __half*, __half*, index_t, int);
template __global__ void rnn_cell_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, index_t,
                                                     int);
template __global__ void rnn_cell_bwd<__half>(const __half*, const __half*, __half*, index_t, int);
template __global__ void rnn_cell_bwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                     __nv_bfloat16*, index_t, int);
