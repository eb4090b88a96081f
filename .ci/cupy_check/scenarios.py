"""The launcher calls check 2 makes: each gradflow/cuda launcher in float32 and float64, with
the awkward cases (no weights, ignore_index, absent optimizer buffers, padding, ...), and the
families with 16-bit kernels in float16 and bfloat16 too."""
from __future__ import annotations

import ml_dtypes
import numpy as np


def _cp():
    import cupy
    return cupy


def _a(shape, dtype):
    return _cp().empty(shape, dtype)


def _conv(dt):
    from gradflow.cuda import conv
    from gradflow.ops.conv import Window
    window = Window(kernel=(3, 2), stride=(2, 1), dilation=(1, 2), padding=(1, 0, 2, 1))
    for batch_inner in (False, True):
        cols = conv.im2col(_a((2, 3, 7, 6), dt), window, 0.0, batch_inner)
        conv.col2im(cols, (2, 3, 7, 6), window, batch_inner)
    conv.im2col(_a((1, 1, 4, 4), dt), window, float("-inf"), False)  # max pooling's padding


def _depthwise(dt):
    from gradflow.cuda import depthwise
    from gradflow.ops.conv import Window
    window = Window(kernel=(3, 2), stride=(2, 1), dilation=(1, 2), padding=(1, 0, 2, 1))
    x, w = _a((2, 3, 7, 6), dt), _a((6, 1, 3, 2), dt)  # channel multiplier 2
    y = depthwise.forward(x, w, window)
    depthwise.grad_input(y, w, x.shape, window)
    depthwise.grad_weight(x, y, w.shape, window)


def _pool(dt):
    from gradflow.cuda import pool
    # padding as gradflow.ops.pool passes it: (top, left)
    x, geometry = _a((2, 3, 8, 7), dt), ((3, 3), (2, 2), (1, 1), (1, 1))
    y, argmax = pool.maxpool2d(x, (4, 4), *geometry)
    pool.maxpool2d_backward(y, argmax, x.shape, *geometry)
    for include_pad, divisor in ((True, None), (False, None), (False, 5)):
        y = pool.avgpool2d(x, (4, 4), (3, 3), (2, 2), (1, 0), include_pad, divisor)
        pool.avgpool2d_backward(y, x.shape, (3, 3), (2, 2), (1, 0), include_pad, divisor)
    y = pool.adaptive_avgpool2d(x, (3, 2))
    pool.adaptive_avgpool2d_backward(y, x.shape)


def _batchnorm(dt):
    from gradflow.cuda import batchnorm
    x = _a((4, 3, 5, 2), dt)
    for running in (None, (_a(3, dt), _a(3, dt))):
        mean, invstd = batchnorm.batch_stats(x, *(running or (None, None)), 0.1, 1e-5)
    batchnorm.batch_stats(_a((4, 3), dt), None, None, None, 1e-5)  # 2-D input, momentum None
    y = batchnorm.affine(x, invstd, -mean * invstd)
    for weight in (None, _a(3, dt)):
        batchnorm.backward(y, x, mean, invstd, weight)


def _softmax_xent(dt):
    from gradflow.cuda import softmax_xent
    logits, target = _a((5, 4), dt), _cp().zeros(5, np.int64)
    for weight, ignore_index, smoothing in ((None, -100, 0.0), (_a(4, dt), 2, 0.1)):
        loss, row_weight, lse = softmax_xent.forward(logits, target, weight, ignore_index,
                                                     smoothing)
        for scale in (_a((), dt), _a(5, dt)):  # 'mean'/'sum' and 'none'
            softmax_xent.backward(logits, target, weight, lse, scale, ignore_index, smoothing)
    softmax_xent.forward(logits, _cp().zeros(5, np.int32), None, -100, 0.0)  # int32 target
    softmax_xent.forward(_a((0, 4), dt), _cp().zeros(0, np.int64), None, -100, 0.0)


def _softmax(dt):
    from gradflow.cuda import softmax
    for safe in (False, True):
        y = softmax.forward(_a((5, 7), dt), safe)
    softmax.backward(y, _a((5, 7), dt))
    softmax.forward(_a((0, 7), dt), False)  # no rows: no launch


def _optim(dt):
    from gradflow.cuda import optim, step_tables
    p, hp = _a((3, 4), dt), _a((2, 8), np.float64)[1]
    step_tables.upload(_a((2, 8), np.float64), np.ones((2, 8)))
    g = _a((3, 4), np.float32)  # a gradient of another dtype is cast first
    for buf in (None, _a((3, 4), dt)):
        optim.sgd(p, g, buf, hp, nesterov=True, maximize=False, first_step=buf is None)
    for amsgrad in (None, _a((3, 4), dt)):
        optim.adam(p, g, _a((3, 4), dt), _a((3, 4), dt), amsgrad, hp, maximize=True,
                   decoupled_weight_decay=amsgrad is None)
    for grad_avg, momentum in ((None, None), (_a((3, 4), dt), _a((3, 4), dt))):
        optim.rmsprop(p, g, _a((3, 4), dt), grad_avg, momentum, hp, maximize=False)
    optim.adagrad(p, g, _a((3, 4), dt), hp, maximize=False)


def _random(dt):
    from gradflow.cuda import random
    random.uniform(_cp(), (3, 5), dt, (1234, 10))
    random.normal(_cp(), (7,), dt, (2 ** 63 + 5, 2 ** 40), 0.5, 2.0)


def _rnn(dt):
    from gradflow.cuda import rnn
    n, h = 3, 5
    gates, c_prev = _a((n, 4 * h), dt), _a((n, h), dt)
    _, c, act = rnn.lstm_cell_forward(gates, c_prev)
    rnn.lstm_cell_backward(_a((n, h), dt), _a((n, h), dt), act, c_prev, c)
    gh = _a((n, 3 * h), dt)
    _, act = rnn.gru_cell_forward(_a((n, 3 * h), dt), gh, c_prev)
    rnn.gru_cell_backward(_a((n, h), dt), act, gh[:, 2 * h:], c_prev)  # a strided gh_n
    for nonlinearity in ("tanh", "relu"):
        y = rnn.rnn_cell_forward(c_prev, nonlinearity)
        rnn.rnn_cell_backward(_a((n, h), dt), y, nonlinearity)


SCENARIOS = [(f"{fn.__name__[1:]}[{np.dtype(dt).name}]", (lambda fn=fn, dt=dt: fn(dt)))
             for fn in (_conv, _depthwise, _pool, _batchnorm, _softmax_xent, _softmax, _optim,
                        _random, _rnn)
             for dt in (np.float32, np.float64)]
# the families instantiated for __half and __nv_bfloat16 (kernels/README.md), in those too
SCENARIOS += [(f"{fn.__name__[1:]}[{np.dtype(dt).name}]", (lambda fn=fn, dt=dt: fn(dt)))
              for fn in (_conv, _pool, _batchnorm, _softmax_xent, _softmax, _optim, _random,
                         _rnn)
              for dt in (np.float16, ml_dtypes.bfloat16)]
