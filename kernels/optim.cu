// Fused optimizer updates: one kernel per rule reads a parameter, its gradient and its state
// once and writes them back, instead of one array op per term of the rule. Each is the twin
// of the NumPy update function of the same name in gradflow/optim (the readable reference).
//
// Layout: every array is the parameter's size n, contiguous. Hyperparameters are read from
// `hp`, this parameter's row of a small device table of doubles that the optimizer rewrites
// before each step (learning rate, step-dependent factors such as bias corrections); flags
// arrive by value. So a step captured in a CUDA graph replays with the current learning
// rate and step count instead of the ones it was captured with, and no device value is ever
// read back. Launch: 1-D grid-stride loop over n.
// Types: float, double, __half, __nv_bfloat16. The parameter, its gradient and its state share
// the element type T (as torch's fused optimizers keep a bfloat16 parameter's state in
// bfloat16); each kernel loads them to acc_t<T> (float32 for the 16-bit types), updates in
// that type and rounds each stored value once. gradflow's AMP keeps parameters in float32
// (autocast casts them per op, as PyTorch's does), so these are for models made 16-bit.
#include "common.cuh"

// The gradient an update follows, the twin of `decayed_grad` in gradflow/optim/optimizer.py:
// negated when maximizing, plus weight_decay * param (L2 decay); with `decoupled` (AdamW) the
// decay shrinks `param` by lr * weight_decay instead and leaves the gradient as it is.
// A is the computing type, acc_t of the element type.
template <typename A>
__device__ __forceinline__ A decayed_grad(A g, A& param, double weight_decay, int maximize,
                                          int decoupled = 0, double lr = 0.0) {
    A d = maximize ? -g : g;
    if (weight_decay != 0.0) {
        if (decoupled) param *= (A)(1.0 - lr * weight_decay);
        else d += (A)weight_decay * param;
    }
    return d;
}

template <typename T>
__global__ void sgd_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                           index_t n, const double* __restrict__ hp, int nesterov, int maximize,
                           int first_step) {
    typedef acc_t<T> A;
    const double lr = hp[0], momentum = hp[1], dampening = hp[2], weight_decay = hp[3];
    GF_GRID_STRIDE_LOOP(i, n) {
        A param = to_acc(p[i]);
        A d = decayed_grad(to_acc(g[i]), param, weight_decay, maximize);
        if (momentum != 0.0) {
            const A b = first_step ? d : (A)momentum * to_acc(buf[i]) + (A)(1.0 - dampening) * d;
            buf[i] = from_acc<T>(b);
            d = nesterov ? d + (A)momentum * b : b;
        }
        p[i] = from_acc<T>(param - (A)lr * d);
    }
}

// hp: lr, beta1, beta2, eps, weight_decay, bias1 = 1 - beta1**step,
// bias2_sqrt = sqrt(1 - beta2**step).
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, T* __restrict__ v_max, index_t n,
                            const double* __restrict__ hp, int amsgrad, int maximize,
                            int decoupled) {
    typedef acc_t<T> A;
    const double lr = hp[0], beta1 = hp[1], beta2 = hp[2], eps = hp[3], weight_decay = hp[4],
                 bias1 = hp[5], bias2_sqrt = hp[6];
    GF_GRID_STRIDE_LOOP(i, n) {
        A param = to_acc(p[i]);
        const A d = decayed_grad(to_acc(g[i]), param, weight_decay, maximize, decoupled, lr);
        const A m_old = to_acc(m[i]);
        const A m_i = m_old + (A)(1.0 - beta1) * (d - m_old);
        A v_i = (A)beta2 * to_acc(v[i]) + (A)(1.0 - beta2) * d * d;
        m[i] = from_acc<T>(m_i);
        v[i] = from_acc<T>(v_i);
        if (amsgrad) {
            const A v_old = to_acc(v_max[i]);
            v_i = v_old > v_i ? v_old : v_i;
            v_max[i] = from_acc<T>(v_i);
        }
        const A denom = sqrt(v_i) / (A)bias2_sqrt + (A)eps;
        p[i] = from_acc<T>(param - (A)(lr / bias1) * (m_i / denom));
    }
}

template <typename T>
__global__ void rmsprop_update(T* __restrict__ p, const T* __restrict__ g,
                               T* __restrict__ square_avg, T* __restrict__ grad_avg,
                               T* __restrict__ buf, index_t n, const double* __restrict__ hp,
                               int centered, int maximize) {
    typedef acc_t<T> A;
    // hp: lr, alpha, eps, weight_decay, momentum (0 without a momentum buffer)
    const double lr = hp[0], alpha = hp[1], eps = hp[2], weight_decay = hp[3],
                 momentum = hp[4];
    GF_GRID_STRIDE_LOOP(i, n) {
        A param = to_acc(p[i]);
        const A d = decayed_grad(to_acc(g[i]), param, weight_decay, maximize);
        const A sq = (A)alpha * to_acc(square_avg[i]) + (A)(1.0 - alpha) * d * d;
        square_avg[i] = from_acc<T>(sq);
        A var = sq;
        if (centered) {
            const A ga_old = to_acc(grad_avg[i]);
            const A ga = ga_old + (A)(1.0 - alpha) * (d - ga_old);
            grad_avg[i] = from_acc<T>(ga);
            var -= ga * ga;
        }
        const A avg = sqrt(var) + (A)eps;
        if (momentum > 0.0) {
            const A b = (A)momentum * to_acc(buf[i]) + d / avg;
            buf[i] = from_acc<T>(b);
            p[i] = from_acc<T>(param - (A)lr * b);
        } else {
            p[i] = from_acc<T>(param - (A)lr * (d / avg));
        }
    }
}

// hp: clr = lr / (1 + (step - 1) * lr_decay), weight_decay, eps.
template <typename T>
__global__ void adagrad_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ sum,
                               index_t n, const double* __restrict__ hp, int maximize) {
    typedef acc_t<T> A;
    const double clr = hp[0], weight_decay = hp[1], eps = hp[2];
    GF_GRID_STRIDE_LOOP(i, n) {
        A param = to_acc(p[i]);
        const A d = decayed_grad(to_acc(g[i]), param, weight_decay, maximize);
        const A s = to_acc(sum[i]) + d * d;
        sum[i] = from_acc<T>(s);
        p[i] = from_acc<T>(param - (A)clr * (d / (sqrt(s) + (A)eps)));
    }
}

template __global__ void sgd_update<float>(float*, const float*, float*, index_t, const double*,
                                           int, int, int);
template __global__ void sgd_update<double>(double*, const double*, double*, index_t,
                                            const double*, int, int, int);
template __global__ void adam_update<float>(float*, const float*, float*, float*, float*,
                                            index_t, const double*, int, int, int);
template __global__ void adam_update<double>(double*, const double*, double*, double*, double*,
                                             index_t, const double*, int, int, int);
template __global__ void rmsprop_update<float>(float*, const float*, float*, float*, float*,
                                               index_t, const double*, int, int);
template __global__ void rmsprop_update<double>(double*, const double*, double*, double*,
                                                double*, index_t, const double*, int, int);
template __global__ void adagrad_update<float>(float*, const float*, float*, index_t,
                                               const double*, int);
template __global__ void adagrad_update<double>(double*, const double*, double*, index_t,
                                                const double*, int);
template __global__ void sgd_update<__half>(__half*, const __half*, __half*, index_t, const double*,
                                            int, int, int);
template __global__ void sgd_update<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                                   __nv_bfloat16*, index_t, const double*, int, int,
                                                   int);
template __global__ void adam_update<__half>(__half*, const __half*, __half*, __half*, __half*,
                                             index_t, const double*, int, int, int);
template __global__ void adam_update<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                                    __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*,
                                                    index_t, const double*, int, int, int);
template __global__ void rmsprop_update<__half>(__half*, const __half*, __half*, __half*, __half*,
                                                index_t, const double*, int, int);
template __global__ void rmsprop_update<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                                       __nv_bfloat16*, __nv_bfloat16*,
                                                       __nv_bfloat16*, index_t, const double*, int,
                                                       int);
template __global__ void adagrad_update<__half>(__half*, const __half*, __half*, index_t,
                                                const double*, int);
template __global__ void adagrad_update<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                                       __nv_bfloat16*, index_t, const double*, int);
