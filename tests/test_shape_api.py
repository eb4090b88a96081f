"""PyTorch's shape and layout ops (ops/shape.py, ops/layout.py, ops/split_stack.py) against
PyTorch: values, dtypes, first and second derivatives on 0-d, size-1, prime-sized, strided
inputs and negative dims; their errors; that the view ops share memory with their input (a
write through the view reaches the base) while the others copy; `view`'s stride rule and
`view(dtype)`; and the CuPy path (fake_cuda)."""
import warnings

import numpy as np
import pytest
from helpers import (
    I_CUPY,
    X_CUPY,
    check_cupy_path,
    check_gradcheck,
    check_op,
    check_op_raises,
    data,
    require_torch,
)

import gradflow as gf
from gradflow.ops.shape import view_strides

torch = require_torch()

INTS = np.array([[3, 0, -2, 5], [1, 4, 2, -7], [6, -1, 8, 9]])
COUNTS = np.array([1, 0, 3])


def fn(L, name):
    """torch.<name> or gradflow.<name>."""
    return getattr(L, name)


def first_two_swapped(L, a):
    """A transposed (non-contiguous) copy-free view of a (7, 5) input."""
    return a.transpose(0, 1)


# (id, fn(lib, *tensors), inputs, check_op options)
CASES = [
    # repeat / tile / repeat_interleave
    ("repeat", lambda L, a: a.repeat(2, 1, 3), [(3, 1, 5)], {}),
    ("repeat_new_dims", lambda L, a: a.repeat(2, 1, 3, 1), [(7, 1)], {"noncontiguous": True}),
    ("repeat_0d", lambda L, a: a.repeat(4, 2), [()], {}),
    ("repeat_ones", lambda L, a: a.repeat(1, 1), [(2, 3)], {}),
    ("repeat_zero", lambda L, a: a.repeat(0, 2), [(2, 3)], {}),
    ("repeat_int", lambda L, a: a.repeat(2, 2), [INTS], {}),
    ("tile", lambda L, a: L.tile(a, (2,)), [(3, 5)], {}),
    ("tile_more_dims", lambda L, a: L.tile(a, (2, 1, 3)), [(5, 2)], {"noncontiguous": True}),
    ("tile_0d", lambda L, a: L.tile(a, ()), [()], {}),
    ("repeat_interleave_flat", lambda L, a: L.repeat_interleave(a, 2), [(3, 1, 5)], {}),
    ("repeat_interleave_dim", lambda L, a: L.repeat_interleave(a, 3, dim=-1), [(2, 5)],
     {"noncontiguous": True}),
    ("repeat_interleave_0d", lambda L, a: L.repeat_interleave(a, 3), [()], {}),
    ("repeat_interleave_counts", lambda L, a, r: L.repeat_interleave(a, r, dim=0),
     [(3, 4), COUNTS], {}),
    ("repeat_interleave_counts_strided",
     lambda L, a, r: a.repeat_interleave(r, dim=1, output_size=4), [(7, 3), COUNTS],
     {"noncontiguous": True}),
    ("repeat_interleave_counts_flat", lambda L, a, r: L.repeat_interleave(a, r),
     [(3,), COUNTS], {}),
    ("repeat_interleave_one_count", lambda L, a, r: L.repeat_interleave(a, r[1:2] + 2, dim=0),
     [(3, 2), COUNTS], {}),
    ("repeat_interleave_indices", lambda L, r: L.repeat_interleave(r), [COUNTS], {}),
    # roll / flip / rot90
    ("roll", lambda L, a: L.roll(a, (1, -3), (0, -1)), [(3, 1, 5)], {}),
    ("roll_flat", lambda L, a: L.roll(a, 4), [(7, 3)], {"noncontiguous": True}),
    ("roll_0d", lambda L, a: L.roll(a, 2), [()], {}),
    ("roll_method_int", lambda L, a: a.roll(-2, 1), [INTS], {}),
    ("flip", lambda L, a: L.flip(a, (0, -1)), [(3, 1, 5)], {}),
    ("flip_strided", lambda L, a: a.flip(1), [(7, 3)], {"noncontiguous": True}),
    ("flip_0d", lambda L, a: L.flip(a, (0,)), [()], {}),
    ("flip_none", lambda L, a: L.flip(a, ()), [(2, 3)], {}),
    ("fliplr", lambda L, a: L.fliplr(a), [(7, 3, 2)], {}),
    ("flipud", lambda L, a: a.flipud(), [(7,)], {"noncontiguous": True}),
    ("rot90", lambda L, a: L.rot90(a), [(3, 5)], {}),
    ("rot90_k2", lambda L, a: L.rot90(a, 2, (-1, 0)), [(3, 1, 5)], {}),
    ("rot90_k3", lambda L, a: a.rot90(3, [1, 2]), [(2, 3, 5)], {"noncontiguous": True}),
    ("rot90_negative_k", lambda L, a: L.rot90(a, -1, (0, 1)), [(3, 5)], {}),
    ("rot90_k0", lambda L, a: L.rot90(a, 4), [(3, 5)], {}),
    # triangles, diagonals
    ("tril", lambda L, a: L.tril(a), [(3, 5)], {}),
    ("tril_batched_offset", lambda L, a: L.tril(a, -1), [(2, 3, 5)], {"noncontiguous": True}),
    ("triu", lambda L, a: a.triu(2), [(5, 3)], {}),
    ("triu_int", lambda L, a: L.triu(a, -1), [INTS], {}),
    ("triu_bool", lambda L, a: L.triu(a > 0), [INTS], {}),
    ("diagonal", lambda L, a: L.diagonal(a), [(3, 5)], {}),
    ("diagonal_offset_dims", lambda L, a: L.diagonal(a, 1, -1, 0), [(3, 2, 5)],
     {"noncontiguous": True}),
    ("diagonal_negative_offset", lambda L, a: a.diagonal(-2), [(5, 3)], {}),
    ("diagonal_empty", lambda L, a: a.diagonal(7), [(5, 3)], {}),
    ("diag_vector", lambda L, a: L.diag(a), [(5,)], {}),
    ("diag_vector_offset", lambda L, a: L.diag(a, -2), [(3,)], {"noncontiguous": True}),
    ("diag_matrix", lambda L, a: a.diag(1), [(3, 5)], {"noncontiguous": True}),
    ("diag_int", lambda L, a: L.diag(a), [INTS], {}),
    ("diag_embed", lambda L, a: L.diag_embed(a), [(2, 3)], {}),
    ("diag_embed_dims", lambda L, a: L.diag_embed(a, 1, 0, 2), [(2, 3)], {}),
    ("diag_embed_negative", lambda L, a: a.diag_embed(-2, 1, 0), [(7,)],
     {"noncontiguous": True}),
    # views
    ("unfold", lambda L, a: a.unfold(1, 2, 1), [(3, 5)], {}),
    ("unfold_step", lambda L, a: a.unfold(-1, 2, 3), [(2, 7)], {"noncontiguous": True}),
    ("unfold_gaps", lambda L, a: a.unfold(0, 1, 2), [(5, 3)], {}),
    ("unfold_empty_window", lambda L, a: a.unfold(0, 0, 1), [(3, 2)], {}),
    ("unfold_0d", lambda L, a: a.unfold(0, 1, 1), [()], {}),
    ("unflatten", lambda L, a: a.unflatten(1, (2, -1)), [(3, 4)], {}),
    ("unflatten_strided", lambda L, a: L.unflatten(a, -1, (1, 7, 1)), [(3, 7)],
     {"noncontiguous": True}),
    ("unbind", lambda L, a: L.unbind(a, 1), [(3, 4)], {}),
    ("unbind_strided", lambda L, a: a.unbind(-1), [(7, 2)], {"noncontiguous": True}),
    ("unbind_one_used", lambda L, a: L.unbind(a)[1], [(3, 2)], {}),
    ("narrow", lambda L, a: L.narrow(a, 1, 1, 3), [(3, 5)], {}),
    ("narrow_negative_start", lambda L, a: a.narrow(-1, -2, 2), [(2, 7)],
     {"noncontiguous": True}),
    ("narrow_empty", lambda L, a: a.narrow(0, 3, 0), [(3, 2)], {}),
    ("movedim", lambda L, a: L.movedim(a, 0, -1), [(3, 1, 5)], {}),
    ("movedim_many", lambda L, a: L.movedim(a, (0, 2), (2, 0)), [(3, 1, 5)],
     {"noncontiguous": True}),
    ("movedim_0d", lambda L, a: L.movedim(a, 0, -1), [()], {}),
    ("moveaxis", lambda L, a: a.moveaxis([-1], [0]), [(3, 1, 5)], {}),
    ("swapaxes", lambda L, a: L.swapaxes(a, 0, -1), [(3, 1, 5)], {}),
    ("swapdims", lambda L, a: a.swapdims(-1, 1), [(3, 5)], {"noncontiguous": True}),
    ("broadcast_to", lambda L, a: L.broadcast_to(a, (2, -1, 5)), [(3, 1)], {}),
    ("broadcast_to_0d", lambda L, a: a.broadcast_to((2, 3)), [()], {}),
    ("broadcast_tensors", lambda L, a, b: L.broadcast_tensors(a, b), [(3, 1), (2, 1, 5)], {}),
    ("broadcast_tensors_0d", lambda L, a, b: L.broadcast_tensors(a, b), [(), (7,)], {}),
    ("expand_as", lambda L, a, b: a.expand_as(b), [(3, 1), (2, 3, 5)], {}),
    ("reshape_as", lambda L, a, b: a.reshape_as(b), [(3, 4), (2, 6)], {"noncontiguous": True}),
    ("view_as", lambda L, a, b: a.view_as(b), [(3, 4), (12,)], {}),
    ("meshgrid_ij", lambda L, a, b: L.meshgrid(a, b, indexing="ij"), [(3,), (5,)], {}),
    ("meshgrid_xy", lambda L, a, b, c: L.meshgrid([a, b, c], indexing="xy"),
     [(3,), (2,), (5,)], {}),
    ("meshgrid_0d", lambda L, a, b: L.meshgrid(a, b, indexing="xy"), [(), (5,)], {}),
    ("meshgrid_one", lambda L, a: L.meshgrid(a, indexing="xy"), [(7,)],
     {"noncontiguous": True}),
    # splitting and stacking
    ("tensor_split_sections", lambda L, a: L.tensor_split(a, 3), [(7, 2)], {}),
    ("tensor_split_more_than_size", lambda L, a: a.tensor_split(5, dim=-1), [(2, 3)], {}),
    ("tensor_split_indices", lambda L, a: L.tensor_split(a, [1, 5, 3, 9], 1), [(2, 7)],
     {"noncontiguous": True}),
    ("tensor_split_negative", lambda L, a: L.tensor_split(a, (-2, 5, -6)), [(7,)], {}),
    ("tensor_split_keywords", lambda L, a: L.tensor_split(a, indices=[1], dim=1), [(3, 4)], {}),
    ("tensor_split_tensor", lambda L, a, i: L.tensor_split(a, i[0, 1:3] + 1),
     [(7, 2), np.array([[0, 1, 3]])], {}),
    ("tensor_split_tensor_0d", lambda L, a, i: L.tensor_split(a, i[0, 2], dim=1),
     [(2, 7), np.array([[0, 1, 3]])], {}),
    ("hsplit", lambda L, a: L.hsplit(a, 2), [(3, 4)], {}),
    ("hsplit_1d", lambda L, a: a.hsplit([1, 2]), [(5,)], {}),
    ("vsplit", lambda L, a: L.vsplit(a, [1]), [(3, 4)], {"noncontiguous": True}),
    ("dsplit", lambda L, a: L.dsplit(a, 2), [(1, 3, 4)], {}),
    ("hstack", lambda L, a, b: L.hstack([a, b]), [(), (5,)], {}),
    ("hstack_2d", lambda L, a, b: L.hstack((a, b)), [(3, 2), (3, 1)], {"noncontiguous": True}),
    ("vstack", lambda L, a, b: L.vstack([a, b]), [(5,), (2, 5)], {}),
    ("row_stack", lambda L, a, b: L.row_stack([a, b]), [(), (1,)], {}),
    ("dstack", lambda L, a, b: L.dstack([a, b]), [(3,), (1, 3, 2)], {}),
    ("column_stack", lambda L, a, b, c: L.column_stack([a, b, c]), [(3,), (3, 2), (3,)], {}),
    ("column_stack_0d", lambda L, a, b: L.column_stack([a, b]), [(), ()], {}),
    ("hstack_promotes", lambda L, a, i: L.hstack([a, i[0]]), [(4,), INTS], {}),
    ("atleast_1d", lambda L, a: L.atleast_1d(a), [()], {}),
    ("atleast_2d_many", lambda L, a, b: L.atleast_2d(a, b), [(), (5,)], {}),
    ("atleast_3d", lambda L, a, b, c: L.atleast_3d([a, b, c]), [(5,), (3, 2), (1, 2, 3, 2)],
     {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, arrays, options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # meshgrid with indexing= must not warn
        check_op(fn, *arrays, **options)


GRADCHECK = [
    ("repeat", lambda L, a: a.repeat(2, 3), [data(2, 3)]),
    ("repeat_interleave", lambda L, a: gf.repeat_interleave(a, 2, dim=1), [data(2, 3)]),
    ("repeat_interleave_counts",
     lambda L, a: gf.repeat_interleave(a, gf.tensor(COUNTS), dim=0), [data(3, 2)]),
    ("roll", lambda L, a: gf.roll(a, (1, 2), (0, 1)), [data(3, 4)]),
    ("flip", lambda L, a: gf.flip(a, (1,)), [data(3, 4)]),
    ("rot90", lambda L, a: gf.rot90(a, 3), [data(3, 4)]),
    ("tril", lambda L, a: gf.tril(a, 1), [data(3, 4)]),
    ("diagonal", lambda L, a: gf.diagonal(a, -1, 1, 0), [data(3, 4)]),
    ("diag", lambda L, a: gf.diag(a, 1), [data(3)]),
    ("diag_embed", lambda L, a: gf.diag_embed(a, 1), [data(2, 3)]),
    ("unfold", lambda L, a: a.unfold(1, 3, 1), [data(2, 5)]),
    ("unbind", lambda L, a: gf.unbind(a, 1)[2] * gf.unbind(a, 1)[0], [data(2, 3)]),
    ("narrow", lambda L, a: gf.narrow(a, 0, 1, 2), [data(3, 4)]),
    ("movedim", lambda L, a: gf.movedim(a, 0, 2), [data(2, 3, 2)]),
    ("broadcast_to", lambda L, a: gf.broadcast_to(a, (2, 3, 4)), [data(3, 1)]),
    ("meshgrid", lambda L, a, b: gf.meshgrid(a, b, indexing="xy"), [data(2), data(3)]),
    ("tensor_split", lambda L, a: gf.tensor_split(a, [3, 1])[2], [data(4, 2)]),
    ("column_stack", lambda L, a, b: gf.column_stack([a, b]), [data(3), data(3, 2)]),
    ("dstack", lambda L, a, b: gf.dstack([a, b]), [data(3), data(3)]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, arrays):
    check_gradcheck(fn, *arrays)


# (op, fn(lib, *tensors), inputs): bad calls that PyTorch rejects too
RAISES = [
    ("repeat", lambda L, a: a.repeat(2), [(3, 4)]),
    ("repeat", lambda L, a: a.repeat(2, -1), [(3, 4)]),
    ("tile", lambda L, a: L.tile(a, (-1, 2)), [(3, 4)]),
    ("tile", lambda L, a: L.tile(a, 2), [(3, 4)]),
    ("repeat_interleave", lambda L, a: L.repeat_interleave(a, -1, dim=1), [(3, 4)]),
    ("repeat_interleave", lambda L, a: L.repeat_interleave(a, 2, dim=2), [(3, 4)]),
    ("repeat_interleave", lambda L, a: L.repeat_interleave(a, 2, dim=0, output_size=5),
     [(3, 4)]),
    ("repeat_interleave", lambda L, a, r: L.repeat_interleave(a, r[:2], dim=0),
     [(3, 4), COUNTS]),
    ("repeat_interleave", lambda L, a, r: L.repeat_interleave(a, r - 1, dim=0),
     [(3, 4), COUNTS]),
    ("repeat_interleave", lambda L, a, r: L.repeat_interleave(a, r.reshape(1, 3), dim=0),
     [(3, 4), COUNTS]),
    ("repeat_interleave", lambda L, a: L.repeat_interleave(a, a[0, :3], dim=0), [(3, 4)]),
    ("repeat_interleave", lambda L, a, r: L.repeat_interleave(a, r, dim=0, output_size=5),
     [(3, 4), COUNTS]),
    ("roll", lambda L, a: L.roll(a, (1, 2)), [(3, 4)]),
    ("roll", lambda L, a: L.roll(a, (1, 2), (0,)), [(3, 4)]),
    ("roll", lambda L, a: L.roll(a, 1, 2), [(3, 4)]),
    ("roll", lambda L, a: L.roll(a, 1, 0), [()]),
    ("roll", lambda L, a: L.roll(a, ()), [(3, 4)]),
    ("flip", lambda L, a: L.flip(a, (0, -2)), [(3, 4)]),
    ("flip", lambda L, a: L.flip(a, (2,)), [(3, 4)]),
    ("flip", lambda L, a: L.flip(a, 0), [(3, 4)]),
    ("fliplr", lambda L, a: L.fliplr(a), [(3,)]),
    ("flipud", lambda L, a: L.flipud(a), [()]),
    ("rot90", lambda L, a: L.rot90(a, 1, (0, 1, 2)), [(3, 4, 2)]),
    ("rot90", lambda L, a: L.rot90(a, 1, (0, 1)), [(3,)]),
    ("rot90", lambda L, a: L.rot90(a, 1, (0, -2)), [(3, 4)]),
    ("rot90", lambda L, a: L.rot90(a, 1, (0, 2)), [(3, 4)]),
    ("tril", lambda L, a: L.tril(a), [(3,)]),
    ("triu", lambda L, a: L.triu(a), [()]),
    ("diagonal", lambda L, a: L.diagonal(a, 0, 0, -2), [(3, 4)]),
    ("diagonal", lambda L, a: L.diagonal(a), [(3,)]),
    ("diag", lambda L, a: L.diag(a), [(2, 2, 2)]),
    ("diag", lambda L, a: L.diag(a), [()]),
    ("diag_embed", lambda L, a: L.diag_embed(a), [()]),
    ("diag_embed", lambda L, a: L.diag_embed(a, 0, 1, 1), [(2, 3)]),
    ("diag_embed", lambda L, a: L.diag_embed(a, 1, 0, 3), [(2, 3)]),
    ("unfold", lambda L, a: a.unfold(0, 4, 1), [(3, 4)]),
    ("unfold", lambda L, a: a.unfold(0, 2, 0), [(3, 4)]),
    ("unfold", lambda L, a: a.unfold(0, -1, 1), [(3, 4)]),
    ("unfold", lambda L, a: a.unfold(2, 1, 1), [(3, 4)]),
    ("unfold", lambda L, a: a.unfold(0, 2, 1), [()]),
    ("unflatten", lambda L, a: a.unflatten(1, (3, -1)), [(3, 4)]),
    ("unflatten", lambda L, a: a.unflatten(1, (3, 2)), [(3, 4)]),
    ("unflatten", lambda L, a: a.unflatten(1, ()), [(3, 4)]),
    ("unflatten", lambda L, a: a.unflatten(2, (2, 2)), [(3, 4)]),
    ("unbind", lambda L, a: L.unbind(a), [()]),
    ("unbind", lambda L, a: L.unbind(a, -3), [(3, 4)]),
    ("narrow", lambda L, a: L.narrow(a, 1, 5, 0), [(3, 4)]),
    ("narrow", lambda L, a: L.narrow(a, 1, -5, 0), [(3, 4)]),
    ("narrow", lambda L, a: L.narrow(a, 1, 2, 3), [(3, 4)]),
    ("narrow", lambda L, a: L.narrow(a, 1, 2, -1), [(3, 4)]),
    ("narrow", lambda L, a: L.narrow(a, 0, 0, 1), [()]),
    ("narrow", lambda L, a: L.narrow(a, 2, 0, 1), [(3, 4)]),
    ("movedim", lambda L, a: L.movedim(a, (0, 1), (0,)), [(3, 4)]),
    ("movedim", lambda L, a: L.movedim(a, (0, 0), (0, 1)), [(3, 4)]),
    ("movedim", lambda L, a: L.movedim(a, (0, 1), (1, -1)), [(3, 4)]),
    ("movedim", lambda L, a: L.movedim(a, 2, 0), [(3, 4)]),
    ("moveaxis", lambda L, a: L.moveaxis(a, 0, -3), [(3, 4)]),
    ("swapaxes", lambda L, a: L.swapaxes(a, 0, 2), [(3, 4)]),
    ("swapdims", lambda L, a: L.swapdims(a, -3, 0), [(3, 4)]),
    ("broadcast_to", lambda L, a: L.broadcast_to(a, (2, 3)), [(3, 4)]),
    ("broadcast_to", lambda L, a: L.broadcast_to(a, (4,)), [(3, 4)]),
    ("broadcast_tensors", lambda L, a, b: L.broadcast_tensors(a, b), [(3, 4), (2,)]),
    ("expand_as", lambda L, a, b: a.expand_as(b), [(3, 4), (4, 3)]),
    ("view_as", lambda L, a, b: a.t().view_as(b), [(3, 4), (12,)]),
    ("reshape_as", lambda L, a, b: a.reshape_as(b), [(3, 4), (5,)]),
    ("meshgrid", lambda L, a: L.meshgrid(a, indexing="ij"), [(2, 2)]),
    ("meshgrid", lambda L, a: L.meshgrid(a, indexing="foo"), [(2,)]),
    ("meshgrid", lambda L, a, i: L.meshgrid(a, i[0], indexing="ij"), [(2,), INTS]),
    ("meshgrid", lambda L: L.meshgrid(indexing="ij"), []),
    ("tensor_split", lambda L, a: L.tensor_split(a, 0), [(7,)]),
    ("tensor_split", lambda L, a: L.tensor_split(a, 2), [()]),
    ("tensor_split", lambda L, a: L.tensor_split(a, 2, 1), [(7,)]),
    ("tensor_split", lambda L, a: L.tensor_split(a, a[:1]), [(7,)]),
    ("tensor_split", lambda L, a, i: L.tensor_split(a, i[:2]), [(7,), INTS]),
    ("hsplit", lambda L, a: L.hsplit(a, 3), [(3, 4)]),
    ("hsplit", lambda L, a: L.hsplit(a, 1), [()]),
    ("vsplit", lambda L, a: L.vsplit(a, 3), [(6,)]),
    ("vsplit", lambda L, a: L.vsplit(a, 2), [(3, 4)]),
    ("dsplit", lambda L, a: L.dsplit(a, 2), [(3, 4)]),
    ("dsplit", lambda L, a: L.dsplit(a, 3), [(2, 2, 4)]),
    ("hstack", lambda L: L.hstack([]), []),
    ("vstack", lambda L, a, b: L.vstack([a, b]), [(3,), (2,)]),
    ("dstack", lambda L: L.dstack([]), []),
    ("column_stack", lambda L: L.column_stack([]), []),
    ("column_stack", lambda L, a, b: L.column_stack([a, b]), [(3,), (2,)]),
]


@pytest.mark.parametrize("op,fn,arrays", RAISES, ids=[f"{c[0]}{i}" for i, c in enumerate(RAISES)])
def test_bad_calls(op, fn, arrays):
    check_op_raises(fn, *arrays, op=op)


def test_error_messages_name_the_values():
    x = gf.tensor(data(3, 4))
    with pytest.raises(RuntimeError, match=r"narrow: start \(2\) \+ length \(3\) exceeds "
                                           r"dimension size \(4\)"):
        x.narrow(1, 2, 3)
    with pytest.raises(RuntimeError, match=r"unfold: maximum size for tensor at dimension 0 is "
                                           r"3 but size is 4"):
        x.unfold(0, 4, 1)
    with pytest.raises(RuntimeError, match=r"repeats must have the same size as input along "
                                           r"dim, but got repeats.size\(0\) = 2 and input"):
        gf.repeat_interleave(x, gf.tensor([1, 2]), dim=0)
    with pytest.raises(RuntimeError, match=r"rot90: expected rotation dims to be different, but "
                                           r"got dim0 = 0 and dim1 = -2"):
        gf.rot90(x, 1, (0, -2))


# -- views share memory; copies do not ------------------------------------------------------
VIEWS = {  # name -> (fn(x) of a (3, 4) float tensor, an index into the result to write at)
    "diagonal": (lambda x: x.diagonal(1), (0,)),
    "unfold": (lambda x: x.unfold(1, 2, 1), (2, 1, 0)),
    "narrow": (lambda x: x.narrow(1, 1, 2), (1, 0)),
    "movedim": (lambda x: x.movedim(0, 1), (3, 2)),
    "moveaxis": (lambda x: gf.moveaxis(x, 1, 0), (0, 1)),
    "swapaxes": (lambda x: x.swapaxes(0, 1), (2, 0)),
    "swapdims": (lambda x: gf.swapdims(x, 1, 0), (2, 2)),
    "unbind": (lambda x: x.unbind(1)[2], (1,)),
    "unflatten": (lambda x: x.unflatten(1, (2, 2)), (1, 0, 1)),
    "view": (lambda x: x.view(2, 6), (1, 5)),
    "view_as": (lambda x: x.view_as(gf.zeros(12)), (7,)),
    "reshape": (lambda x: x.reshape(6, 2), (3, 1)),
    "tensor_split": (lambda x: gf.tensor_split(x, [1, 3], dim=1)[1], (0, 1)),
    "hsplit": (lambda x: gf.hsplit(x, 2)[1], (2, 0)),
    "vsplit": (lambda x: gf.vsplit(x, [2])[0], (1, 3)),
    "view_dtype": (lambda x: x.view(gf.int32), (2, 2)),
}


@pytest.mark.parametrize("name", VIEWS)
def test_a_write_through_a_view_reaches_the_base(name):
    view, index = VIEWS[name]
    x_np = data(3, 4, dtype=np.float32)
    x, t = gf.tensor(x_np), torch.tensor(x_np)
    with gf.no_grad():
        view(x)[index] = 5
    with torch.no_grad():
        _torch_view(name, t)[index] = 5
    assert not np.array_equal(x.numpy(), x_np), f"{name}: the write did not reach the base"
    np.testing.assert_array_equal(x.numpy(), t.numpy(),
                                  err_msg=f"{name}: the write landed elsewhere than in torch")


def _torch_view(name: str, t):
    """The same view taken with torch (the gradflow lambdas run on torch tensors too, bar the
    ones spelled with gradflow functions)."""
    return {
        "moveaxis": lambda: torch.moveaxis(t, 1, 0), "swapdims": lambda: torch.swapdims(t, 1, 0),
        "view_as": lambda: t.view_as(torch.zeros(12)),
        "tensor_split": lambda: torch.tensor_split(t, [1, 3], dim=1)[1],
        "hsplit": lambda: torch.hsplit(t, 2)[1], "vsplit": lambda: torch.vsplit(t, [2])[0],
        "view_dtype": lambda: t.view(torch.int32),
    }.get(name, lambda: VIEWS[name][0](t))()


def test_a_strided_view_of_a_transposed_tensor_writes_through():
    x = gf.tensor(data(4, 3)).t()
    with gf.no_grad():
        x.diagonal()[1] = 7.0
        x.unfold(0, 2, 1)[1, 2, 1] = 9.0
        x.narrow(0, 2, 1)[0, 3] = -4.0
    base = x.t().numpy()
    assert (base[1, 1], base[2, 2], base[3, 2]) == (7.0, 9.0, -4.0), base


def test_unfold_views_have_the_memory_owner_as_base():
    """NumPy's as_strided hides the owner behind a wrapper; unfold's view keeps it, so view
    tracking (which compares `.base`) sees the window view as the input's."""
    owner = np.arange(24.0)
    x = gf.from_numpy(owner.reshape(4, 6)).t()
    windows = x.unfold(1, 3, 1)
    assert windows.array.base is owner and windows.array.flags.writeable
    np.testing.assert_array_equal(windows.numpy(), torch.from_numpy(owner.reshape(4, 6)).t()
                                  .unfold(1, 3, 1).numpy())


COPIES = {
    "flip": lambda x: x.flip(0), "roll": lambda x: x.roll(1, 0),
    "repeat": lambda x: x.repeat(1, 1), "tile": lambda x: x.tile((1,)),
    "tril": lambda x: x.tril(), "triu": lambda x: x.triu(-5), "diag": lambda x: x.diag(),
    "rot90": lambda x: x.rot90(4), "diag_embed": lambda x: x.diag_embed(),
    "repeat_interleave": lambda x: x.repeat_interleave(gf.tensor([1, 1, 1]), dim=0),
    "hstack": lambda x: gf.hstack([x]), "column_stack": lambda x: gf.column_stack([x]),
    "reshape_copy": lambda x: x.t().reshape(-1),
}


@pytest.mark.parametrize("name", COPIES)
def test_copying_ops_return_fresh_memory(name):
    x = gf.tensor(data(3, 4))
    out = COPIES[name](x)
    assert not np.shares_memory(out.numpy(), x.numpy()), f"{name} returned a view"


# -- view's stride rule ----------------------------------------------------------------------
def test_view_of_a_transpose_raises_torchs_error():
    x = gf.tensor(data(3, 4))
    with pytest.raises(RuntimeError, match=r"view: view size is not compatible with input "
                                           r"tensor's size and stride \(at least one dimension "
                                           r"spans across two contiguous subspaces\)\. Use "
                                           r"\.reshape\(\.\.\.\) instead\."):
        x.t().view(-1)
    check_op_raises(lambda L, a: a.t().view(-1), (3, 4), op="view")
    check_op_raises(lambda L, a: a.permute(1, 0, 2).view(2, 12), (2, 3, 4), op="view")


@pytest.mark.parametrize("shape,make,target", [
    ((3, 4), lambda a: a.t(), (4, 3)),
    ((3, 4), lambda a: a.t(), (2, 2, 3)),
    ((3, 4), lambda a: a.t(), (4, 1, 3, 1)),
    ((2, 3, 4), lambda a: a.permute(1, 0, 2), (3, 2, 2, 2)),
    ((2, 3, 4), lambda a: a.permute(1, 0, 2), (3, 2, 4, 1)),
    ((4, 6), lambda a: a[:, ::2], (2, 2, 3)),
    ((1, 5), lambda a: a.t(), (5,)),
    ((2, 0, 3), lambda a: a.transpose(0, 2), (0, 7)),
    ((3, 1, 4), lambda a: a.transpose(0, 1), (1, 12)),
])
def test_view_works_where_torchs_strides_allow(shape, make, target):
    check_op(lambda L, a: make(a).view(target), shape)
    x = make(gf.tensor(data(shape)))
    v = x.view(target)
    assert np.shares_memory(v.numpy(), x.numpy()) or x.numel() == 0, "view copied"


def test_view_strides_match_numpys_no_copy_reshape_and_torchs_rule():
    """view_strides (torch's computeStride) on random permuted, sliced layouts: a view exactly
    where torch's view succeeds, with the strides NumPy's reshape gives that view."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = tuple(int(s) for s in rng.choice([1, 1, 2, 3, 4], size=rng.integers(1, 5)))
        perm = rng.permutation(len(shape))
        steps = tuple(slice(None, None, int(s)) for s in rng.choice([1, 1, 2], size=len(shape)))
        a = np.arange(int(np.prod(shape))).reshape(shape).transpose(perm)[steps]
        t = torch.arange(int(np.prod(shape))).reshape(shape).permute(*perm.tolist())[steps]
        target = _random_factoring(rng, a.size)
        strides = view_strides(a.shape, a.strides, target)
        try:
            expected = t.view(target).stride()
        except RuntimeError:
            expected = None
        got = None if strides is None else tuple(s // a.itemsize for s in strides)
        if expected is not None and a.size > 1:
            assert np.shares_memory(a.reshape(target), a), (a.shape, a.strides, target)
            expected = tuple(s for s, n in zip(expected, target) if n != 1)
            got = tuple(s for s, n in zip(got, target) if n != 1)
        assert (got is None) == (expected is None) and (got is None or got == expected), (
            a.shape, a.strides, target, got, expected)


def _random_factoring(rng, n: int) -> tuple:
    shape, rest = [], n
    while rest > 1 and len(shape) < 4:
        f = int(rng.choice([d for d in range(1, rest + 1) if rest % d == 0]))
        shape.append(f)
        rest //= f
    if rest > 1:
        shape.append(rest)
    for _ in range(int(rng.integers(0, 2))):
        shape.insert(int(rng.integers(0, len(shape) + 1)), 1)
    return tuple(shape)


def test_reshape_copies_only_where_no_view_exists():
    x = gf.tensor(data(3, 4))
    assert np.shares_memory(x.t().reshape(4, 1, 3).numpy(), x.numpy())
    assert not np.shares_memory(x.t().reshape(12).numpy(), x.numpy())


# -- view(dtype) -----------------------------------------------------------------------------
@pytest.mark.parametrize("src,dst,shape,make", [
    (np.float32, "int32", (3, 4), None),
    (np.float32, "float16", (3, 4), None),
    (np.float32, "float64", (3, 4), None),
    (np.float64, "int8", (2, 3), None),
    (np.float32, "int32", (4, 4), "t"),
    (np.float32, "int16", (3, 4), "slice"),
    (np.float32, "int32", (), None),
    (np.uint8, "bool", (5,), None),
])
def test_view_dtype_reinterprets_the_bits_as_torch(src, dst, shape, make):
    a = (np.arange(int(np.prod(shape))).reshape(shape) % 2 if src == np.uint8 else data(shape))
    a = a.astype(src)
    x, t = gf.tensor(a), torch.tensor(a)
    if make == "t":
        x, t = x.t(), t.t()
    elif make == "slice":
        x, t = x[:, 1:3], t[:, 1:3]
    out, expected = x.view(getattr(gf, dst)), t.view(getattr(torch, dst))
    assert out.dtype == getattr(gf, dst) and tuple(out.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    assert np.shares_memory(out.numpy(), x.numpy())


def test_view_dtype_is_not_differentiable():
    x = gf.tensor(data(3, 4, dtype=np.float32), requires_grad=True)
    assert not x.view(gf.float32).requires_grad
    assert not x.view(gf.int32).requires_grad


@pytest.mark.parametrize("make,dst", [
    (lambda L, a: a.t(), "float16"), (lambda L, a: a, "float64"), (lambda L, a: a[0, 0], "int8"),
], ids=["strided", "indivisible", "0d"])
def test_view_dtype_errors_match_torch(make, dst):
    a = data(3, 3, dtype=np.float32)
    error = check_op_raises(lambda L, x: make(L, x).view(getattr(L, dst)), a, op="view")
    assert "different element sizes" in str(error), error


# -- arguments and return types ------------------------------------------------------------
def test_meshgrid_warns_without_indexing_as_torch():
    a, b = gf.tensor(data(2)), gf.tensor(data(3))
    with pytest.warns(UserWarning, match="indexing argument"):
        grids = gf.meshgrid(a, b)
    assert [tuple(g.shape) for g in grids] == [(2, 3), (2, 3)]


def test_splits_and_unbind_return_tuples_and_atleast_a_tensor_for_one():
    x = gf.tensor(data(3, 4))
    for out in (x.unbind(), gf.tensor_split(x, 2), gf.hsplit(x, 2), gf.meshgrid(x[0],
                                                                                indexing="ij"),
                gf.atleast_2d(x, x), gf.atleast_1d([x]), gf.broadcast_tensors(x)):
        assert isinstance(out, tuple), type(out)
    assert isinstance(gf.atleast_3d(x), gf.Tensor) and gf.atleast_3d() == ()
    assert gf.unbind(gf.zeros(0, 3)) == ()


def test_repeat_interleave_of_counts_alone_gives_the_indices():
    out = gf.repeat_interleave(gf.tensor([2, 0, 1]))
    assert out.dtype == gf.int64 and out.tolist() == [0, 0, 2]


def test_narrow_takes_a_tensor_start():
    x = gf.tensor(data(3, 5))
    np.testing.assert_array_equal(x.narrow(1, gf.tensor(2), 2).numpy(), x.numpy()[:, 2:4])


# -- the CuPy path ---------------------------------------------------------------------------
CUPY_PATH = {  # name -> call on (x float (2, 3), i int (2, 3)) tensors
    "repeat": lambda x, i: x.repeat(2, 1, 2), "tile": lambda x, i: gf.tile(i, (2,)),
    "repeat_interleave": lambda x, i: x.repeat_interleave(2, dim=1),
    "repeat_interleave_counts": lambda x, i: gf.repeat_interleave(
        x, (i[0] % 3).abs(), dim=1),
    "roll": lambda x, i: gf.roll(x, (1, 2), (0, 1)), "flip": lambda x, i: x.flip(0, 1),
    "fliplr": lambda x, i: gf.fliplr(x), "flipud": lambda x, i: gf.flipud(i),
    "rot90": lambda x, i: gf.rot90(x, 1), "tril": lambda x, i: gf.tril(x, 1),
    "triu": lambda x, i: i.triu(), "diagonal": lambda x, i: x.diagonal(1),
    "diag": lambda x, i: gf.diag(x[0], 1), "diag_embed": lambda x, i: gf.diag_embed(x),
    "unfold": lambda x, i: x.unfold(1, 2, 1), "unflatten": lambda x, i: x.unflatten(1, (3, 1)),
    "unbind": lambda x, i: x.unbind(1)[2], "narrow": lambda x, i: x.narrow(1, 1, 2),
    "movedim": lambda x, i: x.movedim(0, 1), "swapaxes": lambda x, i: x.swapaxes(0, 1),
    "broadcast_to": lambda x, i: gf.broadcast_to(x, (2, 2, 3)),
    "broadcast_tensors": lambda x, i: gf.broadcast_tensors(x, x[:1])[1],
    "meshgrid": lambda x, i: gf.meshgrid(x[0], x[1], indexing="xy")[0],
    "tensor_split": lambda x, i: gf.tensor_split(x, [1], dim=1)[1],
    "hsplit": lambda x, i: gf.hsplit(x, 3)[2], "vsplit": lambda x, i: gf.vsplit(x, 2)[1],
    "dstack": lambda x, i: gf.dstack([x, x]), "hstack": lambda x, i: gf.hstack([x, x]),
    "vstack": lambda x, i: gf.vstack([x[0], x]), "column_stack": lambda x, i: gf.column_stack(
        [x[0], x[1]]),
    "atleast_3d": lambda x, i: gf.atleast_3d(x), "view": lambda x, i: x.t().view(3, 1, 2),
    "view_dtype": lambda x, i: i.view(gf.float64), "reshape_copy": lambda x, i: x.t().reshape(6),
}


@pytest.mark.parametrize("name", CUPY_PATH)
def test_shape_ops_run_on_the_cupy_path(fake_cuda, name):
    """Each op runs on CuPy arrays (the fake's NumPy-backed stand-in) and equals its CPU
    result exactly; differentiable ones give the CPU's gradient too."""
    check_cupy_path(CUPY_PATH[name], X_CUPY, I_CUPY, rtol=0)
