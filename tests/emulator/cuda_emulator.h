// A CPU emulator for gradflow's CUDA kernels, so the CPU test suite can run them against the
// NumPy path without a GPU.
//
// kernels/*.cu compile as C++17 with this header forced in front (g++ -include). Each block
// runs its threads as coroutines (ucontext) on one OS thread: a thread runs until it reaches
// __syncthreads() or a warp shuffle, then the next one runs; a barrier opens when every
// thread of the block (or warp) that has not exited waits at it. `__shared__` becomes
// `static`, which is per block because blocks run one after another. What this catches: wrong
// index math, barriers reached by only part of a block (reported, not hung), and, with the
// launcher's guard zones, writes out of bounds. What it cannot: real concurrency, memory
// ordering, and speed.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

using std::cos;
using std::exp;
using std::isinf;
using std::isnan;
using std::max;
using std::log;
using std::min;
using std::sqrt;
using std::tanh;

inline dim3 threadIdx, blockIdx, blockDim, gridDim;
constexpr int warpSize = 32;

// CUDA's 16-bit float types (cuda_fp16.h, cuda_bf16.h), as far as gradflow's kernels use them:
// storage, copies and the float conversions, rounding to nearest even as __float2half_rn and
// __float2bfloat16_rn do (NaN stays NaN, overflow goes to infinity). No arithmetic operators:
// the kernels compute in float (acc_t) and convert at loads and stores, so a kernel that
// computed in 16 bits would fail to build here.
struct __half {
    uint16_t bits;
};
struct __nv_bfloat16 {
    uint16_t bits;
};

namespace emu {
inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
}  // namespace emu

inline float __half2float(__half h) {
    const uint32_t sign = (uint32_t)(h.bits & 0x8000u) << 16;
    const uint32_t exponent = (h.bits >> 10) & 0x1fu, mantissa = h.bits & 0x3ffu;
    if (exponent == 0x1f)  // infinity or NaN
        return emu::bits_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {  // zero or subnormal: mantissa * 2**-24, exact in float
        const float magnitude = (float)mantissa * 5.9604644775390625e-08f;
        return sign ? -magnitude : magnitude;
    }
    return emu::bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline __half __float2half_rn(float f) {
    const uint32_t u = emu::float_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t magnitude = u & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return __half{(uint16_t)(sign | 0x7e00u)};  // NaN
    if (magnitude >= 0x477ff000u) return __half{(uint16_t)(sign | 0x7c00u)};  // rounds to inf
    if (magnitude < 0x38800000u) {  // below 2**-14: a subnormal half (or zero)
        // round |f| / 2**-24 to the nearest integer, ties to even
        const float scaled = emu::bits_float(magnitude) * 16777216.0f;  // exact: power of 2
        const float floor_part = std::floor(scaled);
        const float rest = scaled - floor_part;
        uint32_t q = (uint32_t)floor_part;
        if (rest > 0.5f || (rest == 0.5f && (q & 1u))) ++q;
        return __half{(uint16_t)(sign | q)};  // q == 0x400 is the smallest normal: correct
    }
    // normal: drop 13 mantissa bits with round to nearest even; a carry bumps the exponent
    const uint32_t rebased = magnitude - (112u << 23);
    const uint32_t rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
    return __half{(uint16_t)(sign | (rounded >> 13))};
}

inline float __bfloat162float(__nv_bfloat16 b) { return emu::bits_float((uint32_t)b.bits << 16); }

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    const uint32_t u = emu::float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: keep it quiet and signed
        return __nv_bfloat16{(uint16_t)((u >> 16) | 0x0040u)};
    return __nv_bfloat16{(uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

inline __half __float2half(float f) { return __float2half_rn(f); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }

namespace emu {

enum State { READY, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Thread {
    ucontext_t context;
    State state;
    dim3 index;
};

inline ucontext_t scheduler;
inline std::vector<Thread> threads;
inline std::vector<char> stacks;
inline std::vector<uint64_t> exchange;  // one warp-shuffle slot per thread
inline std::function<void()> body;
inline int current = 0;
inline const char* error = nullptr;
constexpr size_t kStackBytes = 64 * 1024;

inline void yield(State state) {
    threads[current].state = state;
    swapcontext(&threads[current].context, &scheduler);
}

inline void thread_main() {
    body();
    yield(DONE);
}

// Open every barrier that all live threads of its scope have reached; false if none opened.
inline bool open_barriers() {
    int n = static_cast<int>(threads.size());
    int waiting = 0, done = 0;
    for (const Thread& t : threads) {
        waiting += t.state == AT_BLOCK_BARRIER;
        done += t.state == DONE;
    }
    if (waiting > 0 && waiting + done == n) {
        if (done > 0) {
            error = "__syncthreads() reached after some threads of the block had exited";
            return false;
        }
        for (Thread& t : threads) t.state = READY;
        return true;
    }
    bool opened = false;
    for (int base = 0; base < n; base += warpSize) {
        int end = std::min(base + warpSize, n), at = 0, live = 0;
        for (int i = base; i < end; ++i) {
            at += threads[i].state == AT_WARP_BARRIER;
            live += threads[i].state != DONE;
        }
        if (at > 0 && at == live) {
            for (int i = base; i < end; ++i)
                if (threads[i].state == AT_WARP_BARRIER) threads[i].state = READY;
            opened = true;
        }
    }
    return opened;
}

inline void run_block(dim3 block) {
    int n = static_cast<int>(block.x * block.y * block.z);
    threads.assign(n, Thread{});
    stacks.resize(static_cast<size_t>(n) * kStackBytes);
    exchange.assign(n, 0);
    for (int i = 0; i < n; ++i) {
        Thread& t = threads[i];
        t.index = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
        t.state = READY;
        getcontext(&t.context);
        t.context.uc_stack.ss_sp = stacks.data() + static_cast<size_t>(i) * kStackBytes;
        t.context.uc_stack.ss_size = kStackBytes;
        t.context.uc_link = nullptr;
        makecontext(&t.context, thread_main, 0);
    }
    for (;;) {
        bool ran = false;
        for (int i = 0; i < n; ++i) {
            if (threads[i].state != READY) continue;
            current = i;
            threadIdx = threads[i].index;
            swapcontext(&scheduler, &threads[i].context);
            ran = true;
        }
        bool all_done = std::all_of(threads.begin(), threads.end(),
                                    [](const Thread& t) { return t.state == DONE; });
        if (all_done || error) return;
        if (!ran && !open_barriers()) {
            if (!error) error = "deadlock: threads wait at a barrier that cannot open";
            return;
        }
    }
}

// Run `kernel_call` on every thread of the grid; returns an error message or nullptr.
inline const char* launch(dim3 grid, dim3 block, std::function<void()> kernel_call) {
    error = nullptr;
    body = std::move(kernel_call);
    gridDim = grid;
    blockDim = block;
    for (unsigned z = 0; z < grid.z && !error; ++z)
        for (unsigned y = 0; y < grid.y && !error; ++y)
            for (unsigned x = 0; x < grid.x && !error; ++x) {
                blockIdx = dim3(x, y, z);
                run_block(block);
            }
    return error;
}

template <typename T>
T shuffle(T value, int source_lane) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a value wider than 8 bytes");
    int base = current - current % warpSize;
    std::memcpy(&exchange[current], &value, sizeof(T));
    yield(AT_WARP_BARRIER);  // every lane has published its value
    T out = value;
    int source = base + source_lane;
    if (source_lane >= 0 && source_lane < warpSize && source < static_cast<int>(threads.size()))
        std::memcpy(&out, &exchange[source], sizeof(T));
    yield(AT_WARP_BARRIER);  // every lane has read before any lane publishes again
    return out;
}

// Call a kernel with its arguments unpacked from an array of pointers, as cuLaunchKernel does.
template <typename... A, size_t... I>
void call_unpacked(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <typename... A>
void call(void (*kernel)(A...), void** args) {
    call_unpacked(kernel, args, std::index_sequence_for<A...>{});
}

// Describe a kernel's parameters for the launcher's type check: kind 0 pointer, 1 integer,
// 2 floating point; size is the pointee's size for pointers.
template <typename P>
void describe_one(int* kind, int* size) {
    using Q = std::remove_cv_t<P>;
    if constexpr (std::is_pointer_v<Q>) {
        *kind = 0;
        *size = static_cast<int>(sizeof(std::remove_pointer_t<Q>));
    } else {
        constexpr bool sixteen = std::is_same_v<Q, __half> || std::is_same_v<Q, __nv_bfloat16>;
        *kind = std::is_floating_point_v<Q> || sixteen ? 2 : 1;
        *size = static_cast<int>(sizeof(Q));
    }
}

template <typename... A>
int describe(void (*)(A...), int* kinds, int* sizes) {
    int i = 0;
    ((describe_one<A>(kinds + i, sizes + i), ++i), ...);
    return i;
}

}  // namespace emu

inline void __syncthreads() { emu::yield(emu::AT_BLOCK_BARRIER); }

template <typename T>
T __shfl_sync(unsigned, T value, int lane, int width = warpSize) {
    int mine = emu::current % warpSize;
    return emu::shuffle(value, (mine / width) * width + lane % width);
}

template <typename T>
T __shfl_down_sync(unsigned, T value, unsigned delta, int width = warpSize) {
    int mine = emu::current % warpSize;
    int lane = mine + static_cast<int>(delta);
    return emu::shuffle(value, (lane / width == mine / width) ? lane : mine);
}

template <typename T>
T __shfl_xor_sync(unsigned, T value, int mask, int width = warpSize) {
    int mine = emu::current % warpSize;
    return emu::shuffle(value, (mine ^ mask) < (mine / width + 1) * width ? mine ^ mask : mine);
}

template <typename T>
T atomicAdd(T* address, T value) {
    T old = *address;
    *address = old + value;
    return old;
}

template <typename T>
T __ldg(const T* address) { return *address; }

inline float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline double __longlong_as_double(long long bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
