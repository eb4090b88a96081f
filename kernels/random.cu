// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC 2011), so a generator's whole
// state is (seed, offset) and a checkpoint can save and restore it exactly.
//
// Element i of a draw at `offset` is a function of (seed, offset + i) alone: its Philox block
// has counter (lo, hi of offset + i, 0, 0) and key (lo, hi of seed), and the four 32-bit words
// it returns make that element. The result is independent of the launch shape, and the
// generator advances its offset by n after a draw of n elements.
//   uniform: [0, 1) from the top 24 (float) or 53 (double) bits of words 0 and 1, or the top
//            11 (__half) or 8 (__nv_bfloat16) bits of word 0: k / 2**bits, exact in the type,
//            so a 16-bit draw never rounds up to 1.
//   normal:  Box-Muller, u1 from words 0-1 in (0, 1] and u2 from words 2-3 in [0, 1), in
//            double, then mean + std * z in acc_t<T> (float32 for the 16-bit types), rounded
//            once to T; `mean` and `std` arrive as acc_t<T>.
// The generator state is read from device memory, `state` = (seed, base), and a draw's offset
// is `base + offset`: for eager draws `state` holds (the current seed, 0); for a captured
// graph it is the graph's own pair, which gradflow.cuda.graphs sets before each replay to the
// generator's seed and offset then, so each replay draws fresh numbers exactly where an eager
// step would, and follows a reseed (manual_seed, set_rng_state) as eager steps do.
// Launch: 1-D grid-stride loops, one thread per element, 64-bit indices.
#include "common.cuh"

typedef unsigned int u32;
typedef unsigned long long u64;

struct Words {
    u32 w[4];
};

// The 10-round Philox4x32 bijection of the counter (lo, hi of `counter`, 0, 0) under the key
// (lo, hi of `seed`).
__device__ __forceinline__ Words philox4x32_10(u64 counter, u64 seed) {
    u32 c0 = (u32)counter, c1 = (u32)(counter >> 32), c2 = 0, c3 = 0;
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const u64 p0 = (u64)0xD2511F53u * c0, p1 = (u64)0xCD9E8D57u * c2;
        const u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0, n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
        c1 = (u32)p1;
        c3 = (u32)p0;
        c0 = n0;
        c2 = n2;
    }
    Words out = {{c0, c1, c2, c3}};
    return out;
}

// A double in [0, 1) from the top 53 bits of (hi, lo).
__device__ __forceinline__ double unit53(u32 hi, u32 lo) {
    return (double)((((u64)hi << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

template <typename T>
__device__ __forceinline__ acc_t<T> unit(const Words& r);

template <>
__device__ __forceinline__ float unit<float>(const Words& r) {
    return (float)(r.w[0] >> 8) * (1.0f / 16777216.0f);
}

template <>
__device__ __forceinline__ double unit<double>(const Words& r) {
    return unit53(r.w[0], r.w[1]);
}

template <>
__device__ __forceinline__ float unit<__half>(const Words& r) {
    return (float)(r.w[0] >> 21) * (1.0f / 2048.0f);
}

template <>
__device__ __forceinline__ float unit<__nv_bfloat16>(const Words& r) {
    return (float)(r.w[0] >> 24) * (1.0f / 256.0f);
}

template <typename T>
__global__ void uniform(T* __restrict__ out, index_t n, const u64* __restrict__ state,
                        u64 offset) {
    const u64 seed = state[0];
    offset += state[1];
    GF_GRID_STRIDE_LOOP(i, n) {
        out[i] = from_acc<T>(unit<T>(philox4x32_10(offset + (u64)i, seed)));
    }
}

template <typename T>
__global__ void normal(T* __restrict__ out, index_t n, const u64* __restrict__ state,
                       u64 offset, acc_t<T> mean, acc_t<T> std) {
    const u64 seed = state[0];
    offset += state[1];
    GF_GRID_STRIDE_LOOP(i, n) {
        const Words r = philox4x32_10(offset + (u64)i, seed);
        const double u1 = 1.0 - unit53(r.w[0], r.w[1]), u2 = unit53(r.w[2], r.w[3]);
        const double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        out[i] = from_acc<T>(mean + std * (acc_t<T>)z);
    }
}

template __global__ void uniform<float>(float*, index_t, const u64*, u64);
template __global__ void uniform<double>(double*, index_t, const u64*, u64);
template __global__ void normal<float>(float*, index_t, const u64*, u64, float, float);
template __global__ void normal<double>(double*, index_t, const u64*, u64, double, double);
template __global__ void uniform<__half>(__half*, index_t, const u64*, u64);
template __global__ void uniform<__nv_bfloat16>(__nv_bfloat16*, index_t, const u64*, u64);
template __global__ void normal<__half>(__half*, index_t, const u64*, u64, float, float);
template __global__ void normal<__nv_bfloat16>(__nv_bfloat16*, index_t, const u64*, u64, float,
                                               float);
