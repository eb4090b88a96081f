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
#include "common.cuh"

// The gradient an update follows, the twin of `decayed_grad` in gradflow/optim/optimizer.py:
// negated when maximizing, plus weight_decay * param (L2 decay); with `decoupled` (AdamW) the
// decay shrinks `param` by lr * weight_decay instead and leaves the gradient as it is.
template <typename T>
__device__ __forceinline__ T decayed_grad(T g, T& param, double weight_decay, int maximize,
                                          int decoupled = 0, double lr = 0.0) {
    T d = maximize ? -g : g;
    if (weight_decay != 0.0) {
        if (decoupled) param *= (T)(1.0 - lr * weight_decay);
        else d += (T)weight_decay * param;
    }
    return d;
}

template <typename T>
__global__ void sgd_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                           index_t n, const double* __restrict__ hp, int nesterov, int maximize,
                           int first_step) {
    const double lr = hp[0], momentum = hp[1], dampening = hp[2], weight_decay = hp[3];
    GF_GRID_STRIDE_LOOP(i, n) {
        T param = p[i];
        T d = decayed_grad(g[i], param, weight_decay, maximize);
        if (momentum != 0.0) {
            const T b = first_step ? d : (T)momentum * buf[i] + (T)(1.0 - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + (T)momentum * b : b;
        }
        p[i] = param - (T)lr * d;
    }
}

// hp: lr, beta1, beta2, eps, weight_decay, bias1 = 1 - beta1**step,
// bias2_sqrt = sqrt(1 - beta2**step).
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, T* __restrict__ v_max, index_t n,
                            const double* __restrict__ hp, int amsgrad, int maximize,
                            int decoupled) {
    const double lr = hp[0], beta1 = hp[1], beta2 = hp[2], eps = hp[3], weight_decay = hp[4],
                 bias1 = hp[5], bias2_sqrt = hp[6];
    GF_GRID_STRIDE_LOOP(i, n) {
        T param = p[i];
        const T d = decayed_grad(g[i], param, weight_decay, maximize, decoupled, lr);
        const T m_i = m[i] + (T)(1.0 - beta1) * (d - m[i]);
        T v_i = (T)beta2 * v[i] + (T)(1.0 - beta2) * d * d;
        m[i] = m_i;
        v[i] = v_i;
        if (amsgrad) {
            v_i = v_max[i] > v_i ? v_max[i] : v_i;
            v_max[i] = v_i;
        }
        const T denom = sqrt(v_i) / (T)bias2_sqrt + (T)eps;
        p[i] = param - (T)(lr / bias1) * (m_i / denom);
    }
}

template <typename T>
__global__ void rmsprop_update(T* __restrict__ p, const T* __restrict__ g,
                               T* __restrict__ square_avg, T* __restrict__ grad_avg,
                               T* __restrict__ buf, index_t n, const double* __restrict__ hp,
                               int centered, int maximize) {
    // hp: lr, alpha, eps, weight_decay, momentum (0 without a momentum buffer)
    const double lr = hp[0], alpha = hp[1], eps = hp[2], weight_decay = hp[3],
                 momentum = hp[4];
    GF_GRID_STRIDE_LOOP(i, n) {
        T param = p[i];
        const T d = decayed_grad(g[i], param, weight_decay, maximize);
        const T sq = (T)alpha * square_avg[i] + (T)(1.0 - alpha) * d * d;
        square_avg[i] = sq;
        T var = sq;
        if (centered) {
            const T ga = grad_avg[i] + (T)(1.0 - alpha) * (d - grad_avg[i]);
            grad_avg[i] = ga;
            var -= ga * ga;
        }
        const T avg = sqrt(var) + (T)eps;
        if (momentum > 0.0) {
            const T b = (T)momentum * buf[i] + d / avg;
            buf[i] = b;
            p[i] = param - (T)lr * b;
        } else {
            p[i] = param - (T)lr * (d / avg);
        }
    }
}

// hp: clr = lr / (1 + (step - 1) * lr_decay), weight_decay, eps.
template <typename T>
__global__ void adagrad_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ sum,
                               index_t n, const double* __restrict__ hp, int maximize) {
    const double clr = hp[0], weight_decay = hp[1], eps = hp[2];
    GF_GRID_STRIDE_LOOP(i, n) {
        T param = p[i];
        const T d = decayed_grad(g[i], param, weight_decay, maximize);
        const T s = sum[i] + d * d;
        sum[i] = s;
        p[i] = param - (T)clr * (d / (sqrt(s) + (T)eps));
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
