// Fused recurrent cells, one time step, forward and backward: the gate nonlinearities and the
// cell update of LSTM and GRU, and the tanh/relu cell of a plain RNN. The GEMMs around them
// (input projection, recurrent projection) run on cuBLAS; each kernel here replaces the chain
// of elementwise ops between two GEMMs. Each is the twin of the function of the same name in
// gradflow/ops/rnn_arrays.py (the readable reference).
//
// Layout: every array is contiguous with rows n = 0..N-1 and hidden units j = 0..H-1. Gate
// arrays are (N, G*H), gate k of unit j of row n at n*G*H + k*H + j, in torch's gate order:
// LSTM (G = 4) i, f, g, o; GRU (G = 3) r, z, n. States c_prev, c, h_prev, h are (N, H), element
// (n, j) at n*H + j. `act` holds the activated gates, laid out as the gates (the backward pass
// reads them instead of recomputing the nonlinearities).
//   LSTM: i, f, o = sigmoid(.), g = tanh(.); c = f*c_prev + i*g; h = o*tanh(c).
//   GRU:  r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r*gh_n),
//         h = (1 - z)*n + z*h_prev = n + z*(h_prev - n); gh holds b_hh, so r scales b_hn.
//   RNN:  h = tanh(pre) or relu(pre), pre (N, H) (the twin's `gates`).
// Launch: one thread per (n, j), a 1-D grid-stride loop over N*H; n = i / H, j = i % H.
#include "common.cuh"

// sigmoid(x) = (1 + tanh(x/2)) / 2, as the twin computes it: no overflow for large |x|.
template <typename T>
__device__ __forceinline__ T sigmoid(T x) {
    return tanh(x * T(0.5)) * T(0.5) + T(0.5);
}

template <typename T>
__global__ void lstm_cell_fwd(const T* __restrict__ gates, const T* __restrict__ c_prev,
                              T* __restrict__ h, T* __restrict__ c, T* __restrict__ act,
                              index_t n, index_t hidden) {
    GF_GRID_STRIDE_LOOP(e, n * hidden) {
        const index_t j = e % hidden, at = (e / hidden) * 4 * hidden + j;
        const T i = sigmoid(gates[at]), f = sigmoid(gates[at + hidden]);
        const T g = tanh(gates[at + 2 * hidden]), o = sigmoid(gates[at + 3 * hidden]);
        const T cell = f * c_prev[e] + i * g;
        c[e] = cell;
        h[e] = o * tanh(cell);
        act[at] = i;
        act[at + hidden] = f;
        act[at + 2 * hidden] = g;
        act[at + 3 * hidden] = o;
    }
}

// dc = g_c + g_h*o*(1 - tanh(c)^2); gate gradients through each activation's derivative
// (sigmoid' = s*(1 - s), tanh' = 1 - t^2); g_c_prev = dc*f.
template <typename T>
__global__ void lstm_cell_bwd(const T* __restrict__ g_h, const T* __restrict__ g_c,
                              const T* __restrict__ act, const T* __restrict__ c_prev,
                              const T* __restrict__ c, T* __restrict__ g_gates,
                              T* __restrict__ g_c_prev, index_t n, index_t hidden) {
    GF_GRID_STRIDE_LOOP(e, n * hidden) {
        const index_t j = e % hidden, at = (e / hidden) * 4 * hidden + j;
        const T i = act[at], f = act[at + hidden], g = act[at + 2 * hidden];
        const T o = act[at + 3 * hidden];
        const T tc = tanh(c[e]), gh = g_h[e];
        const T dc = g_c[e] + gh * o * (T(1) - tc * tc);
        g_gates[at] = dc * g * i * (T(1) - i);
        g_gates[at + hidden] = dc * c_prev[e] * f * (T(1) - f);
        g_gates[at + 2 * hidden] = dc * i * (T(1) - g * g);
        g_gates[at + 3 * hidden] = gh * tc * o * (T(1) - o);
        g_c_prev[e] = dc * f;
    }
}

template <typename T>
__global__ void gru_cell_fwd(const T* __restrict__ gi, const T* __restrict__ gh,
                             const T* __restrict__ h_prev, T* __restrict__ h,
                             T* __restrict__ act, index_t n, index_t hidden) {
    GF_GRID_STRIDE_LOOP(e, n * hidden) {
        const index_t j = e % hidden, at = (e / hidden) * 3 * hidden + j;
        const T r = sigmoid(gi[at] + gh[at]);
        const T z = sigmoid(gi[at + hidden] + gh[at + hidden]);
        const T nn = tanh(gi[at + 2 * hidden] + r * gh[at + 2 * hidden]);
        h[e] = nn + z * (h_prev[e] - nn);
        act[at] = r;
        act[at + hidden] = z;
        act[at + 2 * hidden] = nn;
    }
}

// dn = g_h*(1 - z)*(1 - n^2), dz = g_h*(h_prev - n)*z*(1 - z), dr = dn*gh_n*r*(1 - r);
// g_gi = (dr, dz, dn), g_gh = (dr, dz, dn*r), g_h_prev = g_h*z.
template <typename T>
__global__ void gru_cell_bwd(const T* __restrict__ g_h, const T* __restrict__ act,
                             const T* __restrict__ gh_n, const T* __restrict__ h_prev,
                             T* __restrict__ g_gi, T* __restrict__ g_gh,
                             T* __restrict__ g_h_prev, index_t n, index_t hidden) {
    GF_GRID_STRIDE_LOOP(e, n * hidden) {
        const index_t j = e % hidden, at = (e / hidden) * 3 * hidden + j;
        const T r = act[at], z = act[at + hidden], nn = act[at + 2 * hidden], g = g_h[e];
        const T dn = g * (T(1) - z) * (T(1) - nn * nn);
        const T dz = g * (h_prev[e] - nn) * z * (T(1) - z);
        const T dr = dn * gh_n[e] * r * (T(1) - r);
        g_gi[at] = dr;
        g_gi[at + hidden] = dz;
        g_gi[at + 2 * hidden] = dn;
        g_gh[at] = dr;
        g_gh[at + hidden] = dz;
        g_gh[at + 2 * hidden] = dn * r;
        g_h_prev[e] = g * z;
    }
}

// relu keeps NaN (torch's relu propagates it); tanh does by itself.
template <typename T>
__global__ void rnn_cell_fwd(const T* __restrict__ pre, T* __restrict__ h, index_t size,
                             int relu) {
    GF_GRID_STRIDE_LOOP(e, size) {
        const T x = pre[e];
        h[e] = relu ? (x < T(0) ? T(0) : x) : tanh(x);
    }
}

// g_pre = g_h*(1 - h^2) for tanh, g_h*(h > 0) for relu, from the output h.
template <typename T>
__global__ void rnn_cell_bwd(const T* __restrict__ g_h, const T* __restrict__ h,
                             T* __restrict__ g_pre, index_t size, int relu) {
    GF_GRID_STRIDE_LOOP(e, size) {
        const T y = h[e];
        g_pre[e] = relu ? (y > T(0) ? g_h[e] : T(0)) : g_h[e] * (T(1) - y * y);
    }
}

template __global__ void lstm_cell_fwd<float>(const float*, const float*, float*, float*, float*,
                                              index_t, index_t);
template __global__ void lstm_cell_fwd<double>(const double*, const double*, double*, double*,
                                               double*, index_t, index_t);
template __global__ void lstm_cell_bwd<float>(const float*, const float*, const float*,
                                              const float*, const float*, float*, float*,
                                              index_t, index_t);
template __global__ void lstm_cell_bwd<double>(const double*, const double*, const double*,
                                               const double*, const double*, double*, double*,
                                               index_t, index_t);
template __global__ void gru_cell_fwd<float>(const float*, const float*, const float*, float*,
                                             float*, index_t, index_t);
template __global__ void gru_cell_fwd<double>(const double*, const double*, const double*,
                                              double*, double*, index_t, index_t);
template __global__ void gru_cell_bwd<float>(const float*, const float*, const float*,
                                             const float*, float*, float*, float*, index_t,
                                             index_t);
template __global__ void gru_cell_bwd<double>(const double*, const double*, const double*,
                                              const double*, double*, double*, double*, index_t,
                                              index_t);
template __global__ void rnn_cell_fwd<float>(const float*, float*, index_t, int);
template __global__ void rnn_cell_fwd<double>(const double*, double*, index_t, int);
template __global__ void rnn_cell_bwd<float>(const float*, const float*, float*, index_t, int);
template __global__ void rnn_cell_bwd<double>(const double*, const double*, double*, index_t,
                                              int);
