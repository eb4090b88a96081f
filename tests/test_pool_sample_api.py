"""PyTorch's pooling beyond 2-D (max/avg/adaptive pools in 1-D and 3-D, lp_pool, max_unpool)
and its resampling (interpolate in every mode, Upsample, unfold/fold, pixel shuffles,
grid_sample, affine_grid), functional forms and layers, against PyTorch: values, dtypes,
first and second derivatives on awkward sizes (1, odd, prime; upsampling and downsampling by
non-integer factors; ceil_mode; padding; strided views), the errors of bad calls, finite
differences, and the CuPy path (the fake_cuda stand-in)."""
import warnings

import numpy as np
import pytest
from helpers import (
    check_cupy_path,
    check_gradcheck,
    check_op,
    check_op_raises,
    data,
    distinct,
    require_torch,
    to_numpy,
)

import gradflow as gf

torch = require_torch()


def F(L):
    return L.nn.functional


def unpool(d, **kw):
    """max_pool{d}d with indices, then max_unpool{d}d of twice the values at those indices."""
    def fn(L, x):
        values, indices = getattr(F(L), f"max_pool{d}d")(x, 3, 2, 1, return_indices=True)
        return getattr(F(L), f"max_unpool{d}d")(values * 2, indices, 3, 2, 1,
                                                output_size=x.shape[2:], **kw)
    return fn


def unpool_layer(d):
    def fn(L, x):
        values, indices = getattr(L.nn, f"MaxPool{d}d")(2, return_indices=True)(x)
        return getattr(L.nn, f"MaxUnpool{d}d")(2)(values, indices)
    return fn


X1, X3 = distinct(2, 3, 11), distinct(2, 2, 5, 7, 6)  # max pooling: no ties
A1, A3 = data(2, 3, 11), data(2, 2, 5, 7, 6)
X4 = data(2, 3, 5, 7)
GRID = np.random.default_rng(0).uniform(-1.2, 1.2, (2, 4, 6, 2))
GRID5 = np.random.default_rng(1).uniform(-1.2, 1.2, (1, 3, 2, 4, 3))

# (id, fn(lib, *tensors), inputs, check_op options)
POOL_CASES: list = [
    ("max1d_k3_s2_p1_ceil_indices",
     lambda L, x: F(L).max_pool1d(x, 3, 2, 1, ceil_mode=True, return_indices=True), [X1], {}),
    ("max1d_dilated_unbatched", lambda L, x: F(L).max_pool1d(x, 2, 1, dilation=2),
     [distinct(3, 7)], {}),
    ("max1d_k1_len1", lambda L, x: F(L).max_pool1d(x, 1), [distinct(2, 1, 1)], {}),
    ("max1d_tuple_args", lambda L, x: F(L).max_pool1d(x, (2,), (3,), (1,)), [X1], {}),
    ("avg1d_ceil_exclude",
     lambda L, x: F(L).avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [A1],
     {}),
    ("avg1d_gaps", lambda L, x: F(L).avg_pool1d(x, 2, 3), [A1], {}),
    ("adaptive_avg1d_uneven", lambda L, x: F(L).adaptive_avg_pool1d(x, 4), [A1], {}),
    ("adaptive_avg1d_grow_unbatched", lambda L, x: F(L).adaptive_avg_pool1d(x, 13),
     [data(3, 5)], {}),
    ("adaptive_max1d_indices", lambda L, x: F(L).adaptive_max_pool1d(x, 4, True), [X1], {}),
    ("adaptive_max1d_tiles", lambda L, x: F(L).adaptive_max_pool1d(x, (1,), True),
     [X1], {}),
    ("max3d_k3_s2_p1_ceil_indices",
     lambda L, x: F(L).max_pool3d(x, 3, 2, 1, ceil_mode=True, return_indices=True), [X3], {}),
    ("max3d_mixed_dilated",
     lambda L, x: F(L).max_pool3d(x, (2, 3, 2), (1, 2, 3), (1, 1, 0), dilation=(2, 1, 1)),
     [X3], {}),
    ("max3d_disjoint_unbatched", lambda L, x: F(L).max_pool3d(x, 2, return_indices=True),
     [distinct(2, 5, 7, 6)], {}),
    ("avg3d_ceil", lambda L, x: F(L).avg_pool3d(x, 3, 2, 1, ceil_mode=True), [A3], {}),
    ("avg3d_exclude_pad",
     lambda L, x: F(L).avg_pool3d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
     [A3], {}),
    ("avg3d_divisor_unbatched",
     lambda L, x: F(L).avg_pool3d(x, (2, 3, 1), (1, 2, 3), (1, 1, 0), divisor_override=5),
     [data(2, 5, 7, 6)], {}),
    ("adaptive_avg3d_uneven", lambda L, x: F(L).adaptive_avg_pool3d(x, (2, 3, 4)), [A3], {}),
    ("adaptive_avg3d_tiles_none", lambda L, x: F(L).adaptive_avg_pool3d(x, (5, None, 3)),
     [A3], {}),
    ("adaptive_max3d_uneven", lambda L, x: F(L).adaptive_max_pool3d(x, (2, 3, 4), True),
     [X3], {}),
    ("adaptive_max3d_tiles", lambda L, x: F(L).adaptive_max_pool3d(x, (5, 7, 3), True),
     [X3], {}),
    ("lp1d_p3", lambda L, x: F(L).lp_pool1d(x, 3, 3), [data(2, 2, 7, kind="pos")], {}),
    ("lp2d_p2_ceil", lambda L, x: F(L).lp_pool2d(x, 2, 3, 2, ceil_mode=True),
     [data(2, 2, 7, 6)], {}),
    ("lp2d_p1_5_rect", lambda L, x: F(L).lp_pool2d(x, 1.5, (2, 3)),
     [data(1, 2, 5, 7, kind="pos")], {}),
    ("lp3d_inf", lambda L, x: F(L).lp_pool3d(x, float("inf"), 2), [X3], {}),
    ("lp3d_p2", lambda L, x: F(L).lp_pool3d(x, 2, (2, 1, 3), 1), [A3], {}),
    ("unpool1d", unpool(1), [X1], {}),
    ("unpool2d", unpool(2), [distinct(2, 3, 9, 8)], {}),
    ("unpool3d", unpool(3), [distinct(2, 3, 5, 6, 4)], {}),
    ("unpool2d_default_size",
     lambda L, x: F(L).max_unpool2d(*F(L).max_pool2d(x, 2, return_indices=True), 2),
     [distinct(2, 3, 6, 4)], {}),
    ("unpool2d_full_output_size",
     lambda L, x: F(L).max_unpool2d(*F(L).max_pool2d(x, 2, return_indices=True), 2,
                                    output_size=(2, 3, 7, 5)), [distinct(2, 3, 7, 5)], {}),
    ("unpool3d_unbatched",
     lambda L, x: F(L).max_unpool3d(*F(L).max_pool3d(x, 2, return_indices=True), 2),
     [distinct(3, 4, 4, 6)], {}),
]

LAYER_CASES: list = [
    ("MaxPool1d", lambda L, x: L.nn.MaxPool1d(3, 2, 1, return_indices=True)(x), [X1], {}),
    ("MaxPool2d_indices", lambda L, x: L.nn.MaxPool2d(3, 2, 1, return_indices=True,
                                                      ceil_mode=True)(x),
     [distinct(2, 3, 7, 5)], {}),
    ("MaxPool3d", lambda L, x: L.nn.MaxPool3d((2, 3, 2), ceil_mode=True)(x), [X3], {}),
    ("AvgPool1d", lambda L, x: L.nn.AvgPool1d(3, 2, 1, count_include_pad=False)(x), [A1], {}),
    ("AvgPool3d", lambda L, x: L.nn.AvgPool3d(2, 1, 1, divisor_override=3)(x), [A3], {}),
    ("AdaptiveAvgPool1d", lambda L, x: L.nn.AdaptiveAvgPool1d(5)(x), [A1], {}),
    ("AdaptiveAvgPool3d", lambda L, x: L.nn.AdaptiveAvgPool3d((3, None, 2))(x), [A3], {}),
    ("AdaptiveMaxPool1d", lambda L, x: L.nn.AdaptiveMaxPool1d(3, True)(x), [X1], {}),
    ("AdaptiveMaxPool3d", lambda L, x: L.nn.AdaptiveMaxPool3d(2)(x), [X3], {}),
    ("MaxUnpool1d", unpool_layer(1), [distinct(2, 3, 10)], {}),
    ("MaxUnpool2d", unpool_layer(2), [distinct(2, 3, 6, 4)], {}),
    ("MaxUnpool3d", unpool_layer(3), [distinct(1, 2, 4, 6, 2)], {}),
    ("LPPool1d", lambda L, x: L.nn.LPPool1d(2, 3, 2)(x), [A1], {}),
    ("LPPool2d", lambda L, x: L.nn.LPPool2d(3, 2)(x), [data(2, 2, 7, 6, kind="pos")], {}),
    ("LPPool3d", lambda L, x: L.nn.LPPool3d(2, 2, ceil_mode=True)(x), [A3], {}),
    ("Upsample_nearest", lambda L, x: L.nn.Upsample(scale_factor=1.7)(x), [X4], {}),
    ("Upsample_trilinear", lambda L, x: L.nn.Upsample(size=(2, 5, 3), mode="trilinear")(x),
     [data(1, 2, 3, 4, 5)], {}),
    ("UpsamplingNearest2d", lambda L, x: L.nn.UpsamplingNearest2d(size=(4, 9))(x), [X4], {}),
    ("UpsamplingBilinear2d", lambda L, x: L.nn.UpsamplingBilinear2d(scale_factor=2)(x), [X4],
     {}),
    ("Unfold", lambda L, x: L.nn.Unfold(2, padding=1, stride=2)(x), [X4], {}),
    ("Fold", lambda L, c: L.nn.Fold((5, 7), 3, padding=1)(c), [data(2, 3 * 9, 35)], {}),
    ("PixelShuffle", lambda L, x: L.nn.PixelShuffle(3)(x), [data(2, 9, 2, 3)], {}),
    ("PixelUnshuffle", lambda L, x: L.nn.PixelUnshuffle(2)(x), [data(3, 4, 6)], {}),
]


def _interp_cases():
    cases = []
    for mode in ("nearest", "nearest-exact"):
        for size in [(3, 11), (10, 14), (1, 1), (13, 2)]:
            cases.append((f"{mode}_size{size}", lambda L, x, m=mode, s=size:
                          F(L).interpolate(x, size=s, mode=m), [X4], {}))
        for scale in [2.0, 1.7, 0.6, (0.5, 3.3)]:
            for recompute in (None, True):
                cases.append((f"{mode}_scale{scale}_recompute{recompute}",
                              lambda L, x, m=mode, f=scale, r=recompute:
                              F(L).interpolate(x, scale_factor=f, mode=m,
                                               recompute_scale_factor=r), [X4], {}))
    inputs = {"linear": data(2, 3, 7), "bilinear": X4, "bicubic": X4,
              "trilinear": data(1, 2, 3, 4, 5)}
    for mode, x in inputs.items():
        d = x.ndim - 2
        for align in (False, True):
            for n in (1, 3, 11):
                cases.append((f"{mode}_align{align}_size{n}", lambda L, t, m=mode, s=(n,) * d,
                              a=align: F(L).interpolate(t, size=s, mode=m, align_corners=a),
                              [x], {}))
            for scale in (2.0, 1.7, 0.6, 3.3):
                cases.append((f"{mode}_align{align}_scale{scale}", lambda L, t, m=mode,
                              f=scale, a=align: F(L).interpolate(t, scale_factor=f, mode=m,
                                                                 align_corners=a), [x], {}))
        cases.append((f"{mode}_float32", lambda L, t, m=mode:
                      F(L).interpolate(t, scale_factor=1.7, mode=m),
                      [x.astype(np.float32)], dict(atol=1e-5, rtol=1e-4, second_order=False)))
    cases.append(("bilinear_same_size_copies", lambda L, x:
                  F(L).interpolate(x, size=(5, 7), mode="bilinear"), [X4], {}))
    cases.append(("bicubic_same_size", lambda L, x:
                  F(L).interpolate(x, size=(5, 7), mode="bicubic"), [X4], {}))
    for size in [(2, 3), (3, 5), (7, 11)]:
        cases.append((f"area_size{size}", lambda L, x, s=size:
                      F(L).interpolate(x, size=s, mode="area"), [X4], {}))
    cases.append(("area_scale_1d", lambda L, x: F(L).interpolate(x, scale_factor=0.6,
                                                                 mode="area"), [A1], {}))
    cases.append(("area_3d", lambda L, x: F(L).interpolate(x, size=(2, 3, 3), mode="area"),
                  [A3], {}))
    cases.append(("nearest_3d", lambda L, x: F(L).interpolate(x, scale_factor=(1.5, 0.5, 2)),
                  [A3], {}))
    cases.append(("nearest_int", lambda L, x: F(L).interpolate(x, size=(3, 8)),
                  [np.arange(35, dtype=np.uint8).reshape(1, 1, 5, 7)], {}))
    return cases


SAMPLE_CASES = _interp_cases() + [
    ("unfold_dilated_padded",
     lambda L, x: F(L).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), [X4], {}),
    ("unfold_unbatched", lambda L, x: F(L).unfold(x, 3), [data(3, 5, 7)], {}),
    ("unfold_k1", lambda L, x: F(L).unfold(x, 1), [data(1, 2, 1, 3)], {}),
    ("fold_strided_padded", lambda L, c: F(L).fold(c, (5, 7), (2, 3), stride=2, padding=1),
     [data(2, 3 * 6, 3 * 4)], {}),
    ("fold_unbatched_overlap", lambda L, c: F(L).fold(c, (4, 5), 2), [data(8, 12)], {}),
    ("fold_dilated", lambda L, c: F(L).fold(c, (7, 5), 2, dilation=(3, 1)), [data(1, 4, 16)],
     {}),
    ("pixel_shuffle_batched2", lambda L, x: F(L).pixel_shuffle(x, 2), [data(2, 3, 8, 3, 5)],
     {}),
    ("pixel_shuffle_unbatched_r1", lambda L, x: F(L).pixel_shuffle(x, 1), [data(3, 2, 5)],
     {}),
    ("pixel_unshuffle_unbatched", lambda L, x: F(L).pixel_unshuffle(x, 3), [data(2, 6, 9)],
     {}),
    ("pixel_unshuffle_roundtrip", lambda L, x: F(L).pixel_shuffle(
        F(L).pixel_unshuffle(x, 2), 2), [data(1, 3, 4, 6)], {}),
] + [
    (f"grid_sample_{mode}_{pad}_align{align}",
     lambda L, x, g, m=mode, p=pad, a=align: F(L).grid_sample(x, g, mode=m, padding_mode=p,
                                                              align_corners=a),
     [X4, GRID], dict(second_order=False))  # torch has no double backward here
    for mode in ("bilinear", "nearest", "bicubic") for pad in ("zeros", "border", "reflection")
    for align in (False, True)
] + [
    (f"grid_sample_5d_{mode}_{pad}",
     lambda L, x, g, m=mode, p=pad: F(L).grid_sample(x, g, mode=m, padding_mode=p,
                                                     align_corners=False),
     [data(1, 2, 3, 4, 5), GRID5], dict(second_order=False))
    for mode in ("bilinear", "nearest") for pad in ("zeros", "border", "reflection")
] + [
    ("grid_sample_1x1_input", lambda L, x, g: F(L).grid_sample(x, g, align_corners=False),
     [data(2, 3, 1, 1), GRID], dict(second_order=False)),
    ("grid_sample_1x1_reflect_align",
     lambda L, x, g: F(L).grid_sample(x, g, padding_mode="reflection", align_corners=True),
     [data(2, 3, 1, 1), GRID], dict(second_order=False)),
    ("affine_grid", lambda L, t: F(L).affine_grid(t, (2, 3, 4, 5), align_corners=False),
     [data(2, 2, 3)], {}),
    ("affine_grid_align", lambda L, t: F(L).affine_grid(t, (2, 3, 1, 5), align_corners=True),
     [data(2, 2, 3)], {}),
    ("affine_grid_5d", lambda L, t: F(L).affine_grid(t, (1, 3, 4, 1, 3), align_corners=False),
     [data(1, 3, 4)], {}),
    ("affine_then_sample", lambda L, x, t: F(L).grid_sample(
        x, F(L).affine_grid(t, (2, 3, 4, 6), align_corners=False), align_corners=False),
     [X4, data(2, 2, 3, kind="unit")], dict(second_order=False)),
]

CASES = POOL_CASES + LAYER_CASES + SAMPLE_CASES
IDS = [c[0] for c in CASES]


@pytest.mark.filterwarnings("ignore:.*unit-size grids")  # both warn, as they should
@pytest.mark.parametrize("name,fn,inputs,options", CASES, ids=IDS)
def test_matches_torch(name, fn, inputs, options):
    check_op(fn, *inputs, **options)


NONCONTIGUOUS = ["max1d_k3_s2_p1_ceil_indices", "avg1d_ceil_exclude", "max3d_mixed_dilated",
                 "avg3d_ceil", "adaptive_avg3d_uneven", "adaptive_max3d_uneven", "unpool3d",
                 "lp2d_p2_ceil", "bilinear_alignFalse_scale1.7", "bicubic_alignTrue_scale0.6",
                 "trilinear_alignFalse_scale3.3", "nearest-exact_scale1.7_recomputeNone",
                 "unfold_dilated_padded", "fold_strided_padded", "pixel_shuffle_batched2",
                 "grid_sample_bilinear_reflection_alignFalse", "affine_grid"]


@pytest.mark.parametrize("name", NONCONTIGUOUS)
def test_matches_torch_on_strided_views(name):
    _, fn, inputs, options = CASES[IDS.index(name)]
    check_op(fn, *inputs, noncontiguous=True, **dict(options, second_order=False))


GRADCHECK = [
    ("max1d_dilated_unbatched", distinct(2, 6)),
    ("avg1d_ceil_exclude", data(1, 2, 7)),
    ("adaptive_avg1d_uneven", data(1, 2, 7)),
    ("max3d_k3_s2_p1_ceil_indices", distinct(1, 1, 3, 4, 3)),
    ("avg3d_exclude_pad", data(1, 1, 3, 4, 3)),
    ("adaptive_avg3d_uneven", data(1, 1, 3, 4, 5)),
    ("adaptive_max3d_uneven", distinct(1, 1, 3, 4, 5)),
    ("lp2d_p2_ceil", data(1, 1, 5, 4)),
    ("unpool2d_default_size", distinct(1, 1, 4, 6)),  # disjoint windows: no index repeats
    ("bilinear_alignFalse_scale1.7", data(1, 1, 3, 4)),
    ("bicubic_alignTrue_scale0.6", data(1, 1, 5, 4)),
    ("trilinear_alignFalse_scale1.7", data(1, 1, 2, 3, 2)),
    ("linear_alignTrue_size3", data(1, 2, 4)),
    ("fold_unbatched_overlap", data(8, 12)),
    ("unfold_dilated_padded", data(1, 1, 4, 5)),
    ("pixel_shuffle_batched2", data(1, 1, 4, 2, 3)),
]


@pytest.mark.parametrize("name,x", GRADCHECK, ids=[g[0] for g in GRADCHECK])
def test_gradcheck(name, x):
    """Finite differences, first and second order, in float64 on small inputs."""
    check_gradcheck(CASES[IDS.index(name)][1], x)


@pytest.mark.parametrize("mode,pad", [("bilinear", "zeros"), ("bilinear", "reflection"),
                                      ("bilinear", "border"), ("bicubic", "zeros"),
                                      ("bicubic", "reflection")])
def test_grid_sample_gradcheck_input_and_grid(mode, pad):
    """grid_sample's gradients (both arguments) and their derivatives, which torch lacks,
    against finite differences; grid points kept off the cell borders, where the sampling
    weights have kinks."""
    grid = np.random.default_rng(3).uniform(-1.3, 1.3, (1, 2, 3, 2))
    check_gradcheck(lambda L, x, g: F(L).grid_sample(x, g, mode=mode, padding_mode=pad,
                                                     align_corners=False),
                    data(1, 2, 3, 4), grid)


# (id, fn(lib, *tensors), inputs, op the message names)
RAISES = [
    ("max1d_4d", lambda L, x: F(L).max_pool1d(x, 2), [(2, 3, 5, 5)], "max_pool1d"),
    ("max1d_k0", lambda L, x: F(L).max_pool1d(x, 0), [(2, 3, 5)], "max_pool1d"),
    ("max1d_k_pair", lambda L, x: F(L).max_pool1d(x, (2, 2)), [(2, 3, 5)], "max_pool1d"),
    ("max1d_pad", lambda L, x: F(L).max_pool1d(x, 2, padding=2), [(2, 3, 5)], "max_pool1d"),
    ("max1d_too_big", lambda L, x: F(L).max_pool1d(x, 7), [(2, 3, 5)], "max_pool1d"),
    ("avg1d_4d", lambda L, x: F(L).avg_pool1d(x, 2), [(2, 3, 5, 5)], "avg_pool1d"),
    ("avg1d_pad", lambda L, x: F(L).avg_pool1d(x, 2, padding=2), [(2, 3, 5)], "avg_pool1d"),
    ("max3d_3d", lambda L, x: F(L).max_pool3d(x, 2), [(2, 3, 5)], "max_pool3d"),
    ("max3d_pad", lambda L, x: F(L).max_pool3d(x, 2, padding=2), [(1, 2, 4, 4, 4)],
     "max_pool3d"),
    ("max3d_too_big", lambda L, x: F(L).max_pool3d(x, 5), [(1, 2, 4, 4, 4)], "max_pool3d"),
    ("max3d_kernel_str", lambda L, x: F(L).max_pool3d(x, "a"), [(1, 2, 4, 4, 4)],
     "max_pool3d"),
    ("avg3d_divisor0", lambda L, x: F(L).avg_pool3d(x, 2, divisor_override=0),
     [(1, 2, 4, 4, 4)], "avg_pool3d"),
    ("adaptive_avg1d_4d", lambda L, x: F(L).adaptive_avg_pool1d(x, 2), [(2, 3, 5, 5)],
     "adaptive_avg_pool1d"),
    ("adaptive_max1d_4d", lambda L, x: F(L).adaptive_max_pool1d(x, 2), [(2, 3, 5, 5)],
     "adaptive_max_pool1d"),
    ("adaptive_max3d_3d", lambda L, x: F(L).adaptive_max_pool3d(x, 2), [(2, 3, 5)],
     "adaptive_max_pool3d"),
    ("adaptive_avg3d_int", lambda L, x: F(L).adaptive_avg_pool3d(x, 2),
     [np.ones((1, 1, 4, 4, 4), np.int64)], "adaptive_avg_pool3d"),
    ("unpool_bad_index", lambda L, x, i: F(L).max_unpool2d(x, i, 2),
     [(2, 3, 5, 5), np.full((2, 3, 5, 5), 100)], "max_unpool2d"),
    ("unpool_index_shape", lambda L, x, i: F(L).max_unpool2d(x, i, 2),
     [(2, 3, 5, 5), np.zeros((2, 3, 5, 4), np.int64)], "max_unpool2d"),
    ("unpool_index_dtype", lambda L, x, i: F(L).max_unpool2d(x, i, 2),
     [(2, 3, 5, 5), np.zeros((2, 3, 5, 5), np.int32)], "max_unpool2d"),
    ("unpool_output_size", lambda L, x, i: F(L).max_unpool2d(x, i, 2, output_size=(3, 3)),
     [(2, 3, 5, 5), np.zeros((2, 3, 5, 5), np.int64)], "max_unpool2d"),
    ("unpool_output_size_len", lambda L, x, i: F(L).max_unpool2d(x, i, 2, output_size=(3,)),
     [(2, 3, 5, 5), np.zeros((2, 3, 5, 5), np.int64)], "max_unpool2d"),
    ("unpool1d_4d", lambda L, x, i: F(L).max_unpool1d(x, i, 2),
     [(2, 3, 5, 5), np.zeros((2, 3, 5, 5), np.int64)], "max_unpool1d"),
    ("lp2d_too_big", lambda L, x: F(L).lp_pool2d(x, 2, 7), [(2, 3, 5, 5)], "avg_pool2d"),
    ("unfold_5d", lambda L, x: F(L).unfold(x, 2), [(1, 2, 3, 5, 5)], "unfold"),
    ("unfold_too_big", lambda L, x: F(L).unfold(x, 7), [(2, 3, 5, 5)], "unfold"),
    ("unfold_k0", lambda L, x: F(L).unfold(x, 0), [(2, 3, 5, 5)], "unfold"),
    ("fold_rows", lambda L, c: F(L).fold(c, (5, 5), 2), [(2, 5, 16)], "fold"),
    ("fold_blocks", lambda L, c: F(L).fold(c, (5, 5), 2), [(2, 12, 15)], "fold"),
    ("pixel_shuffle_2d", lambda L, x: F(L).pixel_shuffle(x, 2), [(4, 4)], "pixel_shuffle"),
    ("pixel_shuffle_channels", lambda L, x: F(L).pixel_shuffle(x, 2), [(1, 5, 2, 2)],
     "pixel_shuffle"),
    ("pixel_shuffle_factor0", lambda L, x: F(L).pixel_shuffle(x, 0), [(1, 4, 2, 2)],
     "pixel_shuffle"),
    ("pixel_unshuffle_height", lambda L, x: F(L).pixel_unshuffle(x, 2), [(1, 5, 3, 2)],
     "pixel_unshuffle"),
    ("pixel_unshuffle_width", lambda L, x: F(L).pixel_unshuffle(x, 2), [(1, 5, 2, 3)],
     "pixel_unshuffle"),
    ("interpolate_mode", lambda L, x: F(L).interpolate(x, 2, mode="foo"), [(2, 3, 5, 5)],
     "interpolate"),
    ("interpolate_linear_4d", lambda L, x: F(L).interpolate(x, 2, mode="linear"),
     [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_trilinear_4d", lambda L, x: F(L).interpolate(x, 2, mode="trilinear"),
     [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_bilinear_3d", lambda L, x: F(L).interpolate(x, 2, mode="bilinear"),
     [(2, 3, 5)], "interpolate"),
    ("interpolate_both", lambda L, x: F(L).interpolate(x, 2, 2.0), [(2, 3, 5, 5)],
     "interpolate"),
    ("interpolate_neither", lambda L, x: F(L).interpolate(x), [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_align_nearest", lambda L, x: F(L).interpolate(x, 2, align_corners=True),
     [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_size_len", lambda L, x: F(L).interpolate(x, (2, 2, 2)), [(2, 3, 5, 5)],
     "interpolate"),
    ("interpolate_scale_len", lambda L, x: F(L).interpolate(x, scale_factor=(2, 2, 2)),
     [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_size_float", lambda L, x: F(L).interpolate(x, (2.5, 2)), [(2, 3, 5, 5)],
     "interpolate"),
    ("interpolate_2d", lambda L, x: F(L).interpolate(x, 2), [(3, 4)], "interpolate"),
    ("interpolate_size0", lambda L, x: F(L).interpolate(x, 0), [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_scale_tiny", lambda L, x: F(L).interpolate(x, scale_factor=0.1),
     [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_recompute_size", lambda L, x: F(L).interpolate(
        x, 2, recompute_scale_factor=True), [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_antialias_nearest", lambda L, x: F(L).interpolate(x, 2, antialias=True),
     [(2, 3, 5, 5)], "interpolate"),
    ("interpolate_bilinear_int", lambda L, x: F(L).interpolate(x, 2, mode="bilinear"),
     [np.ones((1, 1, 4, 4), np.int64)], "interpolate"),
    ("grid_sample_mode", lambda L, x, g: F(L).grid_sample(x, g, mode="foo",
                                                          align_corners=False),
     [(2, 3, 5, 5), (2, 3, 3, 2)], "grid_sample"),
    ("grid_sample_padding", lambda L, x, g: F(L).grid_sample(x, g, padding_mode="foo",
                                                             align_corners=False),
     [(2, 3, 5, 5), (2, 3, 3, 2)], "grid_sample"),
    ("grid_sample_last_dim", lambda L, x, g: F(L).grid_sample(x, g, align_corners=False),
     [(2, 3, 5, 5), (2, 3, 3, 3)], "grid_sample"),
    ("grid_sample_batch", lambda L, x, g: F(L).grid_sample(x, g, align_corners=False),
     [(2, 3, 5, 5), (1, 3, 3, 2)], "grid_sample"),
    ("grid_sample_bicubic_5d", lambda L, x, g: F(L).grid_sample(x, g, mode="bicubic",
                                                                align_corners=False),
     [(1, 2, 3, 3, 3), (1, 2, 2, 2, 3)], "grid_sample"),
    ("grid_sample_3d", lambda L, x, g: F(L).grid_sample(x, g, align_corners=False),
     [(2, 3, 5), (2, 3, 2)], "grid_sample"),
    ("grid_sample_dtypes", lambda L, x, g: F(L).grid_sample(x, g, align_corners=False),
     [data(2, 3, 5, 5, dtype=np.float32), (2, 3, 3, 2)], "grid_sample"),
    ("affine_grid_shape", lambda L, t: F(L).affine_grid(t, (2, 3, 4, 4), align_corners=False),
     [(2, 3, 3)], "affine_grid"),
    ("affine_grid_int", lambda L, t: F(L).affine_grid(t, (2, 3, 4, 4), align_corners=False),
     [np.ones((2, 2, 3), np.int64)], "affine_grid"),
    ("affine_grid_size_len", lambda L, t: F(L).affine_grid(t, (2, 3, 4), align_corners=False),
     [(2, 2, 3)], "affine_grid"),
    ("affine_grid_size0", lambda L, t: F(L).affine_grid(t, (2, 3, 0, 4), align_corners=False),
     [(2, 2, 3)], "affine_grid"),
    ("affine_grid_batch", lambda L, t: F(L).affine_grid(t, (3, 3, 4, 4), align_corners=False),
     [(2, 2, 3)], "affine_grid"),
]


@pytest.mark.parametrize("name,fn,inputs,op", RAISES, ids=[r[0] for r in RAISES])
def test_bad_calls_raise_as_torch(name, fn, inputs, op):
    check_op_raises(fn, *inputs, op=op)


def test_layers_check_their_sizes_when_built():
    for build, error, words in [
            (lambda: gf.nn.MaxPool1d(0), RuntimeError, "MaxPool1d: kernel_size"),
            (lambda: gf.nn.MaxPool3d(2, stride=(1, 0, 1)), RuntimeError, "MaxPool3d: stride"),
            (lambda: gf.nn.AvgPool3d(2, padding=-1), RuntimeError, "AvgPool3d: padding"),
            (lambda: gf.nn.AvgPool1d(2.5), TypeError, "AvgPool1d: kernel_size"),
            (lambda: gf.nn.AdaptiveAvgPool3d((2, 2)), TypeError, "AdaptiveAvgPool3d"),
            (lambda: gf.nn.AdaptiveMaxPool1d(0), ValueError, "AdaptiveMaxPool1d"),
            (lambda: gf.nn.MaxUnpool2d((2, 2, 2)), RuntimeError, "MaxUnpool2d: kernel_size"),
            (lambda: gf.nn.LPPool2d("p", 2), TypeError, "LPPool2d: norm_type"),
            (lambda: gf.nn.PixelShuffle(1.5), TypeError, "PixelShuffle: upscale_factor")]:
        with pytest.raises(error, match=words):
            build()


def test_layer_reprs_match_torch():
    for make in [lambda L: L.nn.MaxPool1d(3), lambda L: L.nn.MaxPool3d(2, 1, 1),
                 lambda L: L.nn.AvgPool3d(2), lambda L: L.nn.AdaptiveMaxPool1d(3),
                 lambda L: L.nn.MaxUnpool2d(2), lambda L: L.nn.MaxUnpool3d(2, 1),
                 lambda L: L.nn.LPPool2d(2, 3), lambda L: L.nn.Upsample(scale_factor=2),
                 lambda L: L.nn.Upsample(size=3, mode="bilinear"),
                 lambda L: L.nn.UpsamplingBilinear2d(scale_factor=(2, 1.5)),
                 lambda L: L.nn.Fold((4, 4), 2), lambda L: L.nn.Unfold(2, padding=1),
                 lambda L: L.nn.PixelShuffle(2), lambda L: L.nn.PixelUnshuffle(3)]:
        assert repr(make(gf)) == repr(make(torch))


def test_max_unpool_writes_repeated_indices_once():
    """Overlapping windows share maxima; unpooling writes such a value once (as torch), it
    does not add the copies."""
    x = distinct(1, 1, 5, 5)
    got = gf.nn.functional.max_unpool2d(*gf.nn.functional.max_pool2d(
        gf.tensor(x), 3, 1, return_indices=True), 3, 1)
    want = torch.nn.functional.max_unpool2d(*torch.nn.functional.max_pool2d(
        torch.tensor(x), 3, 1, return_indices=True), 3, 1)
    np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


def test_interpolate_returns_a_new_tensor_when_sizes_are_kept():
    x = gf.tensor(X4)
    out = gf.nn.functional.interpolate(x, size=(5, 7), mode="bilinear")
    out.add_(1.0)
    np.testing.assert_array_equal(to_numpy(x), X4)


def test_antialias_is_refused():
    with pytest.raises(NotImplementedError, match="interpolate: antialias"):
        gf.nn.functional.interpolate(gf.tensor(X4), scale_factor=0.5, mode="bilinear",
                                     antialias=True)


@pytest.mark.parametrize("call", [
    lambda L, x, g: F(L).grid_sample(x, g),
    lambda L, x, g: F(L).affine_grid(g[:, :2, :3, 0], (2, 3, 4, 4)),
], ids=["grid_sample", "affine_grid"])
def test_align_corners_none_warns_as_torch(call):
    """Without align_corners, both warn (torch's UserWarning) and take it as False."""
    x, g = data(2, 3, 4, 4), data(2, 3, 3, 2)
    with pytest.warns(UserWarning, match="align_corners"):
        got = call(gf, gf.tensor(x), gf.tensor(g))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = call(torch, torch.tensor(x), torch.tensor(g))
    np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-12)


# -- the CuPy path ----------------------------------------------------------------------------
V1, V2 = distinct(1, 2, 7, dtype=np.float32), distinct(1, 2, 5, 4, dtype=np.float32)
V3 = distinct(1, 2, 3, 4, 3, dtype=np.float32)
G = np.random.default_rng(4).uniform(-1.2, 1.2, (1, 2, 3, 2)).astype(np.float32)


def _unpooled(d, x):
    values, indices = getattr(gf.nn.functional, f"max_pool{d}d")(x, 2, return_indices=True)
    return getattr(gf.nn.functional, f"max_unpool{d}d")(values, indices, 2,
                                                        output_size=tuple(x.shape[2:]))


CUPY = {  # name: (fn(*tensors), inputs)
    "max_pool1d": (lambda x: gf.nn.functional.max_pool1d(x, 3, 2, 1, ceil_mode=True), [V1]),
    "avg_pool1d": (lambda x: gf.nn.functional.avg_pool1d(x, 3, 2, 1), [V1]),
    "adaptive_avg_pool1d": (lambda x: gf.nn.functional.adaptive_avg_pool1d(x, 3), [V1]),
    "adaptive_max_pool1d": (lambda x: gf.nn.functional.adaptive_max_pool1d(x, 3), [V1]),
    "max_pool3d": (lambda x: gf.nn.functional.max_pool3d(x, 2, 1, 1, dilation=(1, 2, 1)),
                   [V3]),
    "max_pool3d_indices": (lambda x: gf.nn.functional.max_pool3d(
        x, 2, ceil_mode=True, return_indices=True)[1], [V3]),
    "avg_pool3d": (lambda x: gf.nn.functional.avg_pool3d(x, 2, 1, 1, ceil_mode=True,
                                                         count_include_pad=False), [V3]),
    "adaptive_avg_pool3d": (lambda x: gf.nn.functional.adaptive_avg_pool3d(x, (2, 3, 2)),
                            [V3]),
    "adaptive_max_pool3d": (lambda x: gf.nn.functional.adaptive_max_pool3d(x, (2, 3, 2)),
                            [V3]),
    "lp_pool1d": (lambda x: gf.nn.functional.lp_pool1d(x, 2, 2), [V1]),
    "lp_pool2d": (lambda x: gf.nn.functional.lp_pool2d(x.abs() + 0.5, 3, 2), [V2]),
    "lp_pool3d": (lambda x: gf.nn.functional.lp_pool3d(x, 2, 2), [V3]),
    "max_unpool1d": (lambda x: _unpooled(1, x), [V1]),
    "max_unpool2d": (lambda x: _unpooled(2, x), [V2]),
    "max_unpool3d": (lambda x: _unpooled(3, x), [V3]),
    "interpolate_nearest": (lambda x: gf.nn.functional.interpolate(x, scale_factor=1.7), [V2]),
    "interpolate_bilinear": (lambda x: gf.nn.functional.interpolate(
        x, size=(3, 7), mode="bilinear", align_corners=True), [V2]),
    "interpolate_bicubic": (lambda x: gf.nn.functional.interpolate(
        x, scale_factor=1.5, mode="bicubic"), [V2]),
    "interpolate_trilinear": (lambda x: gf.nn.functional.interpolate(
        x, scale_factor=0.7, mode="trilinear"), [V3]),
    "interpolate_area": (lambda x: gf.nn.functional.interpolate(x, size=3, mode="area"),
                         [V2]),
    "unfold": (lambda x: gf.nn.functional.unfold(x, 2, padding=1), [V2]),
    "fold": (lambda c: gf.nn.functional.fold(c, (3, 4), 2), [data(1, 8, 6, dtype=np.float32)]),
    "pixel_shuffle": (lambda x: gf.nn.functional.pixel_shuffle(x, 2),
                      [data(1, 4, 2, 3, dtype=np.float32)]),
    "pixel_unshuffle": (lambda x: gf.nn.functional.pixel_unshuffle(x, 2),
                        [data(1, 1, 4, 6, dtype=np.float32)]),
    "grid_sample_bilinear": (lambda x, g: gf.nn.functional.grid_sample(
        x, g, padding_mode="reflection", align_corners=False), [V2, G]),
    "grid_sample_bicubic": (lambda x, g: gf.nn.functional.grid_sample(
        x, g, mode="bicubic", padding_mode="border", align_corners=False), [V2, G]),
    "grid_sample_nearest": (lambda x, g: gf.nn.functional.grid_sample(
        x, g, mode="nearest", align_corners=True), [V2, G]),
    "affine_grid": (lambda t: gf.nn.functional.affine_grid(t, (1, 2, 3, 4),
                                                           align_corners=False),
                    [data(1, 2, 3, dtype=np.float32)]),
}


@pytest.mark.parametrize("name", CUPY)
def test_runs_on_the_cupy_path(fake_cuda, name):
    """Each op runs on CuPy arrays (the fake's NumPy-backed stand-in; the 2-D pooling and
    im2col kernels through the emulator) and equals its CPU result, gradients included."""
    fn, inputs = CUPY[name]
    check_cupy_path(fn, *inputs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn,x", [
    (lambda L, x: L.max_pool1d(x, 3, 2, 1), X1), (lambda L, x: L.max_pool2d(x, 2, 1),
                                                  distinct(2, 3, 5, 4)),
    (lambda L, x: L.max_pool3d(x, 2), X3), (lambda L, x: L.avg_pool1d(x, 3, 2, 1), A1),
    (lambda L, x: L.adaptive_avg_pool1d(x, 4), A1), (lambda L, x: L.pixel_shuffle(x, 2),
                                                     data(1, 8, 2, 3)),
    (lambda L, x: L.pixel_unshuffle(x, 2), data(1, 2, 4, 6)),
], ids=["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "adaptive_avg_pool1d",
        "pixel_shuffle", "pixel_unshuffle"])
def test_torch_level_names(fn, x):
    """The pooling and shuffle functions torch also has at its top level (torch.max_pool1d,
    ...), under gradflow's."""
    check_op(fn, x)


@pytest.mark.parametrize("fn,x,kernels", [
    (lambda x: F(gf).max_pool1d(x, 3, 2, 1, ceil_mode=True), distinct(2, 3, 9),
     {"pool.maxpool2d_fwd", "pool.maxpool2d_bwd"}),
    (lambda x: F(gf).avg_pool1d(x, 3, 2, 1), data(2, 3, 9), {"pool.avgpool2d_fwd",
                                                              "pool.avgpool2d_bwd"}),
    (lambda x: F(gf).adaptive_avg_pool1d(x, 4), data(2, 3, 9),
     {"pool.adaptive_avgpool2d_fwd", "pool.adaptive_avgpool2d_bwd"}),
    (lambda x: F(gf).unfold(x, 2, padding=1), data(1, 2, 4, 5), {"conv.im2col", "conv.col2im"}),
    (lambda c: F(gf).fold(c, (4, 5), 2), data(1, 8, 12), {"conv.col2im", "conv.im2col"}),
], ids=["max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "unfold", "fold"])
def test_1d_pools_and_folds_run_the_2d_kernels(kernel_backend, fn, x, kernels):
    """1-D pooling runs the 2-D pooling kernels on height-1 planes, and unfold/fold the
    im2col/col2im kernels (here forward and backward), with the CPU's values and gradients."""
    results = []
    for on_kernels in (False, True):
        t = gf.tensor(x.astype(np.float32), device=kernel_backend.device, requires_grad=True)
        if on_kernels:
            with kernel_backend.active() as launched:
                out = fn(t)
                (out * out).sum().backward()
            assert kernels <= set(launched), f"launched {launched}"
        else:
            out = fn(t)
            (out * out).sum().backward()
        results.append((to_numpy(out), to_numpy(t.grad)))
    for got, want in zip(*results[::-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
