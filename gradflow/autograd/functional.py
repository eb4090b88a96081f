"""Higher-order autograd on whole functions (torch.autograd.functional): `vjp`, `jvp`,
`jacobian`, `hessian`, `vhp` and `hvp`.

Everything is reverse mode. A Jacobian-vector product uses the double-vjp trick: the vjp
`u -> J^T u` is linear in `u`, so differentiating it with respect to `u` along `v` gives `J v`;
this works because every backward rule is written with gradflow's own ops. Results take
PyTorch's structure: a tuple where the function's inputs (or outputs) were a tuple, a single
tensor where they were one. `vectorize=True` is accepted and gives the same values (there is no
vmap: the rows are still computed one backward pass each).
"""
from __future__ import annotations

from typing import Any, Callable

from ..creation import zeros_like
from ..ops.index import stack
from ..tensor import Tensor
from .engine import run_backward
from .grad_mode import enable_grad, is_grad_enabled, set_grad_enabled

_STRICT = " This is not allowed in strict mode."


def _as_tensors(value: Any, what: str, fn: str) -> tuple[bool, tuple]:
    """(whether `value` was a tuple, its tensors as a tuple), checking each is a Tensor."""
    is_tuple = isinstance(value, tuple)
    items = value if is_tuple else (value,)
    for i, el in enumerate(items):
        if not isinstance(el, Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {what}"
            raise TypeError(f"{fn}: the {what} given to {fn} must be either a Tensor or a tuple "
                            f"of Tensors but {where} has type {type(el).__name__}.")
    return is_tuple, items


def _prepare(tensors: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """Leaves to differentiate with respect to; with create_graph, inputs that already require
    grad stay connected to the caller's graph (torch's `_grad_preprocess`)."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad
                 else t.detach().requires_grad_(need_graph) for t in tensors)


def _finish(result: tuple, create_graph: bool) -> tuple:
    """Detach results (nested tuples too) unless the caller wants their graph."""
    if create_graph:
        return result
    return tuple(r.detach() if isinstance(r, Tensor) else _finish(r, False) for r in result)


def _unpack(result: tuple, outer_tuple: bool, inner_tuple: bool | None = None) -> Any:
    """Drop the tuple levels the caller did not use (torch's `_tuple_postprocess`)."""
    if inner_tuple is not None and not inner_tuple:
        result = tuple(r[0] for r in result)
    return result if outer_tuple else result[0]


def _check_v(fn: str, v: Any, refs: tuple, refs_tuple: bool, create_graph: bool) -> tuple:
    _, v = _as_tensors(v, "v", fn)
    v = _prepare(v, create_graph, need_graph=False)
    if len(v) != len(refs):
        if refs_tuple:
            raise RuntimeError(f"{fn}: v is a tuple of invalid length: should be {len(refs)} "
                               f"but got {len(v)}.")
        raise RuntimeError(f"{fn}: the given v should contain a single Tensor.")
    for i, (el, ref) in enumerate(zip(v, refs)):
        if el.shape != ref.shape:
            where = f"Entry {i} in v" if refs_tuple else "v"
            raise RuntimeError(f"{fn}: {where} has invalid size: should be {ref.shape} but got "
                               f"{el.shape}.")
    return v


def _need_single_element(fn: str, tensors: tuple, what: str) -> None:
    if len(tensors) != 1 or tensors[0].numel() != 1:
        raise RuntimeError(f"{fn}: the vector v can only be None if {what} a single Tensor "
                           "with a single element.")


_NOT_DIFFERENTIABLE = {
    "outputs": "Output {i} of the user-provided function does not require gradients. The "
               "outputs must be computed in a differentiable manner from the input when "
               "running in strict mode.",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of "
                   "the user-provided function." + _STRICT,
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided "
                "function with respect to input {i} is independent of the input." + _STRICT +
                " You should ensure that your function is twice differentiable and that the "
                "jacobian depends on the inputs (this would be violated by a linear function "
                "for example).",
    "hessian": "The hessian of the user-provided function with respect to input {i} is "
               "independent of the input." + _STRICT + " You should ensure that your function "
               "is thrice differentiable and that the hessian depends on the inputs.",
}


def _strict_check(fn: str, tensors: tuple, kind: str, strict: bool) -> None:
    """In strict mode, refuse results that do not depend on the inputs."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(f"{fn}: the output of the user-provided function is independent "
                               f"of input {i}." + _STRICT)
        if not t.requires_grad:
            raise RuntimeError(f"{fn}: " + _NOT_DIFFERENTIABLE[kind].format(i=i))


def _grad(outputs: tuple, inputs: tuple, grad_outputs: tuple | None = None,
          create_graph: bool = False, retain_graph: bool | None = None) -> tuple:
    """autograd.grad over the outputs that require grad; None for inputs none of them reach."""
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    retain = create_graph if retain_graph is None else retain_graph
    return run_backward([o for o, _ in pairs], [g for _, g in pairs], retain, create_graph,
                        inputs=list(inputs), allow_unused=True, what="grad")


_INDEPENDENT = {
    "back": "The output of the user-provided function is independent of input {i}.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                         "{i} in the grad_jacobian.",
}


def _fill_zeros(fn: str, grads: tuple, refs: tuple, strict: bool, create_graph: bool,
                stage: str) -> tuple:
    """Zeros where no gradient reached, or strict mode's error saying which entry."""
    out = []
    for i, (g, ref) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn}: " + _INDEPENDENT[stage].format(i=i) + _STRICT)
            g = zeros_like(ref)
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"{fn}: the {what} of the user-provided function is independent "
                               f"of input {i}. This is not allowed in strict mode when "
                               "create_graph=True.")
        out.append(g)
    return tuple(out)


def _call(fn: str, func: Callable, inputs: tuple, strict: bool) -> tuple[bool, tuple]:
    is_tuple, outputs = _as_tensors(func(*inputs), "outputs of the user-provided function", fn)
    _strict_check(fn, outputs, "outputs", strict)
    return is_tuple, outputs


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(*inputs), v^T J): the vector-Jacobian product of `func` at `inputs`
    (torch.autograd.functional.vjp)."""
    with enable_grad():
        in_tuple, inputs = _as_tensors(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        out_tuple, outputs = _call("vjp", func, inputs, strict)
        if v is None:
            _need_single_element("vjp", outputs, "the user-provided function returns")
        else:
            v = _check_v("vjp", v, outputs, out_tuple, create_graph)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _grad(outputs, inputs, v, create_graph=create_graph)
        result = _fill_zeros("vjp", grads, inputs, strict, create_graph, "back")
    return (_unpack(_finish(outputs, create_graph), out_tuple),
            _unpack(_finish(result, create_graph), in_tuple))


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(*inputs), J v): the Jacobian-vector product, by the double-vjp trick
    (torch.autograd.functional.jvp)."""
    with enable_grad():
        in_tuple, inputs = _as_tensors(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        if v is None:
            _need_single_element("jvp", inputs, "the input to the user-provided function is")
        else:
            v = _check_v("jvp", v, inputs, in_tuple, create_graph)
        out_tuple, outputs = _call("jvp", func, inputs, strict)
        # NOTE: u -> J^T u is linear in u; its derivative with respect to u along v is J v.
        us = tuple(zeros_like(o, requires_grad=True) for o in outputs)
        grad_inputs = _grad(outputs, inputs, us, create_graph=True)
        _strict_check("jvp", grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _grad(grad_inputs, us, v, create_graph=create_graph)
        result = _fill_zeros("jvp", grads, outputs, strict, create_graph, "back_trick")
    return (_unpack(_finish(outputs, create_graph), out_tuple),
            _unpack(_finish(result, create_graph), out_tuple))


def _check_strategy(fn: str, strategy: str, create_graph: bool, strict: bool,
                    vectorize: bool) -> None:
    if strategy not in ("forward-mode", "reverse-mode"):
        # NOTE: torch raises AssertionError here; so do we, for code written against it
        raise AssertionError(f"{fn}: expected strategy to be either \"forward-mode\" or "
                         f"\"reverse-mode\", got {strategy!r}")
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(f"{fn}: `create_graph=True` and "
                                      "`strategy=\"forward-mode\"` are not supported together.")
        if strict:
            raise RuntimeError(f"{fn}: `strict=True` and `strategy=\"forward-mode\"` are not "
                               "supported together.")
        if not vectorize:
            raise NotImplementedError(f"{fn}: computing the Jacobian with forward mode is only "
                                      "implemented for `vectorize=True`.")
    if vectorize and strict:
        raise RuntimeError(f"{fn}: `strict=True` and `vectorize=True` are not supported "
                           "together. Please either set `strict=False` or `vectorize=False`.")


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """d func(*inputs) / d inputs (torch.autograd.functional.jacobian): for output i and
    input j, a tensor of shape outputs[i].shape + inputs[j].shape, nested in tuples as
    torch nests them. Built one backward pass per output element, whatever the strategy."""
    _check_strategy("jacobian", strategy, create_graph, strict, vectorize)
    with enable_grad():
        in_tuple, inputs = _as_tensors(inputs, "inputs", "jacobian")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        out_tuple, outputs = _call("jacobian", func, inputs, strict)
        rows = []
        for i, out in enumerate(outputs):
            flat = out.reshape(-1)
            per_input: list[list] = [[] for _ in inputs]
            for k in range(out.numel()):
                grads = _grad((flat[k],), inputs, retain_graph=True, create_graph=create_graph)
                for j, (g, inp) in enumerate(zip(grads, inputs)):
                    if g is None:
                        if strict:
                            raise RuntimeError(f"jacobian: output {i} of the user-provided "
                                               f"function is independent of input {j}." +
                                               _STRICT)
                        g = zeros_like(inp)
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(f"jacobian: the jacobian of the user-provided "
                                           f"function is independent of input {i}. This is not "
                                           "allowed in strict mode when create_graph=True.")
                    per_input[j].append(g)
            rows.append(tuple(_rows_to_jacobian(gs, out, inp)
                              for gs, inp in zip(per_input, inputs)))
        return _unpack(_finish(tuple(rows), create_graph), out_tuple, in_tuple)


def _rows_to_jacobian(rows: list, out: Tensor, inp: Tensor) -> Tensor:
    shape = tuple(out.shape) + tuple(inp.shape)
    if not rows:  # an empty output (torch's stack refuses it): an empty Jacobian
        return inp.new_zeros(shape)
    return stack(rows, 0).reshape(shape)


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """Second derivatives of a function with one scalar output
    (torch.autograd.functional.hessian): the Jacobian of its gradient."""
    in_tuple, inputs = _as_tensors(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(f"hessian: expected strategy to be either \"forward-mode\" or "
                         f"\"reverse-mode\", got {outer_jacobian_strategy!r}")

    def scalar_func(*xs):
        out = func(*xs)
        out_tuple, outs = _as_tensors(out, "outputs of the user-provided function", "hessian")
        _strict_check("hessian", outs, "outputs", strict)
        if out_tuple:
            raise RuntimeError("hessian: the function given to hessian should return a single "
                               "Tensor")
        if out.numel() != 1:
            raise RuntimeError(f"hessian: the Tensor returned by the function given to hessian "
                               f"should contain a single element (got shape {tuple(out.shape)})")
        return out.reshape(())

    def gradient(*xs):
        jac = jacobian(scalar_func, xs, create_graph=True)
        _strict_check("hessian", jac, "jacobian", strict)
        return jac

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict,
                      vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _unpack(result, in_tuple, in_tuple)


def _scalar_gradient(fn: str, func: Callable, inputs: Any, v: Any, create_graph: bool,
                     strict: bool) -> tuple:
    """The steps vhp and hvp share: inputs, v, the outputs and the gradient with its graph."""
    in_tuple, inputs = _as_tensors(inputs, "inputs", fn)
    inputs = _prepare(inputs, create_graph, need_graph=True)
    if v is None:
        _need_single_element(fn, inputs, "the input to the user-provided function is")
    else:
        v = _check_v(fn, v, inputs, in_tuple, create_graph)
    out_tuple, outputs = _call(fn, func, inputs, strict)
    if out_tuple:
        raise RuntimeError(f"{fn}: the function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"{fn}: the Tensor returned by the function given to {fn} should "
                           f"contain a single element (got shape {tuple(outputs[0].shape)})")
    jac = _grad(outputs, inputs, create_graph=True)
    _strict_check(fn, jac, "jacobian", strict)
    return in_tuple, inputs, v, outputs, jac


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(*inputs), v^T H) for a function with one scalar output
    (torch.autograd.functional.vhp)."""
    with enable_grad():
        in_tuple, inputs, v, outputs, jac = _scalar_gradient("vhp", func, inputs, v,
                                                             create_graph, strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _grad(jac, inputs, v, create_graph=create_graph)
        result = _fill_zeros("vhp", grads, inputs, strict, create_graph, "double_back")
    return (_finish(outputs, create_graph)[0], _unpack(_finish(result, create_graph), in_tuple))


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(*inputs), H v) for a function with one scalar output, by the double-vjp trick
    on the gradient (torch.autograd.functional.hvp)."""
    with enable_grad():
        in_tuple, inputs, v, outputs, jac = _scalar_gradient("hvp", func, inputs, v,
                                                             create_graph, strict)
        us = tuple(zeros_like(x, requires_grad=True) for x in inputs)
        double_back = _grad(jac, inputs, us, create_graph=True)
        _strict_check("hvp", jac, "hessian", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _grad(double_back, us, v, create_graph=create_graph)
        result = _fill_zeros("hvp", grads, inputs, strict, create_graph, "double_back_trick")
    return (_finish(outputs, create_graph)[0], _unpack(_finish(result, create_graph), in_tuple))


__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]
