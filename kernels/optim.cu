// Fused optimizer updates: one kernel per rule reads a parameter, its gradient and its state
// once and writes them back, instead of one array op per term of the rule. Each is the twin
// of the NumPy update function of the same name in gradflow/optim (the readable reference).
//
// Layout: every array is the parameter's size n, contiguous. Hyperparameters arrive as
// doubles and flags as ints; step-dependent factors (bias corrections, decayed learning
// rates) are computed on the host from the step count, so no device value is read back.
// Launch: 1-D grid-stride loop over n.
#include "common.cuh"

template <typename T>
__global__ void sgd_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                           index_t n, double lr, double momentum, double dampening,
                           double weight_decay, int nesterov, int maximize, int first_step) {
    GF_GRID_STRIDE_LOOP(i, n) {
        T d = maximize ? -g[i] : g[i];
        if (weight_decay != 0.0) d += (T)weight_decay * p[i];
        if (momentum != 0.0) {
            const T b = first_step ? d : (T)momentum * buf[i] + (T)(1.0 - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + (T)momentum * b : b;
        }
        p[i] -= (T)lr * d;
    }
}

// bias1 = 1 - beta1**step, bias2_sqrt = sqrt(1 - beta2**step).
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, T* __restrict__ v_max, index_t n, double lr,
                            double beta1, double beta2, double eps, double weight_decay,
                            double bias1, double bias2_sqrt, int amsgrad, int maximize,
                            int decoupled) {
    GF_GRID_STRIDE_LOOP(i, n) {
        T d = maximize ? -g[i] : g[i];
        T param = p[i];
        if (weight_decay != 0.0) {
            if (decoupled) param *= (T)(1.0 - lr * weight_decay);
            else d += (T)weight_decay * param;
        }
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
                               T* __restrict__ buf, index_t n, double lr, double alpha,
                               double eps, double weight_decay, double momentum, int centered,
                               int maximize) {
    GF_GRID_STRIDE_LOOP(i, n) {
        T d = maximize ? -g[i] : g[i];
        if (weight_decay != 0.0) d += (T)weight_decay * p[i];
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
            p[i] -= (T)lr * b;
        } else {
            p[i] -= (T)lr * (d / avg);
        }
    }
}

// clr = lr / (1 + (step - 1) * lr_decay).
template <typename T>
__global__ void adagrad_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ sum,
                               index_t n, double clr, double weight_decay, double eps,
                               int maximize) {
    GF_GRID_STRIDE_LOOP(i, n) {
        T d = maximize ? -g[i] : g[i];
        if (weight_decay != 0.0) d += (T)weight_decay * p[i];
        const T s = sum[i] + d * d;
        sum[i] = s;
        p[i] -= (T)clr * (d / (sqrt(s) + (T)eps));
    }
}

template __global__ void sgd_update<float>(float*, const float*, float*, index_t, double, double,
                                           double, double, int, int, int);
template __global__ void sgd_update<double>(double*, const double*, double*, index_t, double,
                                            double, double, double, int, int, int);
template __global__ void adam_update<float>(float*, const float*, float*, float*, float*,
                                            index_t, double, double, double, double, double,
                                            double, double, int, int, int);
template __global__ void adam_update<double>(double*, const double*, double*, double*, double*,
                                             index_t, double, double, double, double, double,
                                             double, double, int, int, int);
template __global__ void rmsprop_update<float>(float*, const float*, float*, float*, float*,
                                               index_t, double, double, double, double, double,
                                               int, int);
template __global__ void rmsprop_update<double>(double*, const double*, double*, double*,
                                                double*, index_t, double, double, double, double,
                                                double, int, int);
template __global__ void adagrad_update<float>(float*, const float*, float*, index_t, double,
                                               double, double, int);
template __global__ void adagrad_update<double>(double*, const double*, double*, index_t,
                                                double, double, double, int);
