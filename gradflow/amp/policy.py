"""Which dtype each op runs in under autocast, per device type (PyTorch 2.13's tables).

Three policies, as PyTorch's autocast kernels: `LOWER` casts the floating inputs to the
region's low dtype (float16 or bfloat16), `FP32` casts them to float32, `PROMOTE` casts them
to the widest floating dtype among them and the region's (float16 inputs in a bfloat16
region give float32 by PyTorch's promotion rule, where PyTorch's autocast raises). Float64
and integer inputs are never cast. An op missing from a table runs in its inputs' dtypes.

The CPU table was measured on PyTorch 2.13's own CPU autocast (tests/test_amp.py probes it);
the CUDA table is PyTorch's documented "autocast op reference". Names are gradflow's op
labels (`Function.label()`: `conv2d` serves conv1d too) and the public functions that carry
`autocast_mode.autocast_policy(name)`.
"""
from __future__ import annotations

LOWER, FP32, PROMOTE = "lower", "fp32", "promote"

# matrix products, convolutions and attention: in the low dtype on both
_LOWER = """matmul mm bmm addmm addbmm baddbmm linear einsum chain_matmul multi_dot
    linalg.vecdot conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
    prelu scaled_dot_product_attention lstm rnn_tanh rnn_relu""".split()
# low on CUDA only (documented): matrix-vector products, the GRU (PyTorch's CPU autocast
# leaves it in its dtype, measured) and the recurrent cells
_LOWER_CUDA = "mv addmv addr gru lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell".split()

# forced to float32 on both device types: the losses and the ops PyTorch keeps wide everywhere
_FP32_BOTH = """cross_entropy nll_loss mse_loss l1_loss smooth_l1_loss huber_loss
    binary_cross_entropy_with_logits kl_div poisson_nll_loss soft_margin_loss
    margin_ranking_loss hinge_embedding_loss cosine_embedding_loss triplet_margin_loss
    multi_margin_loss multilabel_margin_loss cdist prod""".split()

# float32 on the CPU only (measured): 3-d pooling, linear algebra, binary_cross_entropy, trace
_FP32_CPU = """binary_cross_entropy max_pool3d avg_pool3d adaptive_avg_pool3d trace inverse
    pinverse linalg.inv linalg.solve linalg.cholesky linalg.qr linalg.eigh linalg.svd""".split()

# float32 on CUDA only (documented): softmax, the norms and the range-hungry math functions
_FP32_CUDA = """cosine_similarity softmax log_softmax softmin softplus layer_norm group_norm
    norm normalize linalg.vector_norm dist pdist renorm exp expm1 log log10 log1p log2 pow
    reciprocal rsqrt acos asin cosh sinh tan erfinv sum cumsum cumprod""".split()

_PROMOTE_BOTH = "cat stack index_copy".split()
_PROMOTE_CUDA = """addcdiv addcmul atan2 bilinear cross dot grid_sample index_put scatter_add
    tensordot""".split()


def _table(*groups: tuple[str, list[str]]) -> dict[str, str]:
    return {name: policy for policy, names in groups for name in names}


TABLES: dict[str, dict[str, str]] = {
    "cpu": _table((LOWER, _LOWER), (FP32, _FP32_BOTH + _FP32_CPU), (PROMOTE, _PROMOTE_BOTH)),
    "cuda": _table((LOWER, _LOWER + _LOWER_CUDA), (FP32, _FP32_BOTH + _FP32_CUDA),
                   (PROMOTE, _PROMOTE_BOTH + _PROMOTE_CUDA)),
}
