"""Hook-like intermediate capture: one small network in refs, torch_impl and jax_impl.

Each property is a plain function of the implementation(s) under test and one
drawn case, so that ``test_planted_capture.py`` can hold planted wrong
implementations against the very same checks. The tests here run them on the
real implementations.

Tolerances are a-priori rounding bounds, not guesses (``crosscheck.tolerance``):

* Forward values. A conv or linear layer with ``n`` terms per output (the
  bias counted) adds at most ``gamma(n) * (|W| @ |h| + |b|)`` to the error it
  receives through ``|W|``; ReLU and max-pool are 1-Lipschitz and exact, so
  they pass an error on without adding to it (``|max(a) - max(b)| <= max |a -
  b|``). By induction the output of a layer has error at most ``gamma(K) *
  A``, where ``K`` is the sum of the term counts of the linear layers up to it
  and ``A`` is the same network run on absolute values (ReLU as the identity,
  max-pool as the max of the absolute values). Against a float64 reference,
  ``rounding_bound`` adds float64's own ``gamma(K)``.
* The penalty ``mean(h**2)``: squaring doubles the relative error of ``h``
  and the mean adds ``M + 1`` roundings: ``gamma(2 K + M + 1) * mean(A**2)``.
* Gradients. Away from kinks (no ReLU input near 0, no near-tie in a pooling
  window -- checked, with the forward bound as the margin), ReLU and max-pool
  are fixed 0/1 selections and every gradient is a polynomial in the weights
  and ``x``. Back-propagation evaluates each of its monomials with at most
  ``K_grad`` roundings (forward, then the backward sums), so the error is at
  most ``gamma(K_grad)`` times the same gradient of the network on absolute
  values with the same selections (computed with torch autograd).
* Central differences of the float64 loop reference: no truncation term at
  all (see :func:`check_finite_differences`), only rounding.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import refs.capture as refs_capture
from crosscheck.backends import Backend, load_jax, load_torch
from crosscheck.compare import assert_close
from crosscheck.ops.capture import (
    CONFIGS,
    FLOAT_DTYPES,
    BadCall,
    NetCase,
    abs_network,
    bad_calls,
    fixed_cases,
    forward_bounds,
    linear_terms,
    net_cases,
    penalty_bound,
    windows,
)
from crosscheck.tolerance import Tolerance, gamma
from refs.checks.capture import check_init
from refs.network import CONV1_KERNEL, CONV2_KERNEL, LAYERS, PARAM_NAMES, layer_input, layer_shapes

# ------------------------------------------------------------ the implementations


@dataclass(frozen=True)
class Impl:
    """One implementation under test: a module with the capture API, on one backend."""

    label: str
    backend: str  # "numpy", "torch-cpu", "jax-cpu"
    module: Any  # an import path, or an object holding the functions (a planted one)
    jit: bool = False  # jax: run forward / penalty under jax.jit

    @property
    def mod(self):
        if isinstance(self.module, str):
            return importlib.import_module(self.module)
        return self.module

    def asarray(self, a):
        return Backend(self.backend).asarray(a)

    def to_numpy(self, a) -> np.ndarray:
        return Backend(self.backend).to_numpy(a)

    def convert(self, value):
        """NumPy arrays (also inside a dict) as this backend's arrays; anything else as is."""
        if isinstance(value, np.ndarray):
            return self.asarray(value)
        if isinstance(value, dict):
            return {k: self.convert(v) for k, v in value.items()}
        return value

    def forward(self, params, x):
        """``module.forward`` on converted NumPy input; results back as NumPy."""
        fn = _jitted(self.mod.forward) if self.jit else self.mod.forward
        out, kept = fn(self.convert(params), self.convert(x))
        return self.to_numpy(out), {k: self.to_numpy(v) for k, v in kept.items()}

    def penalty(self, params, x, layer):
        fn = _jitted(self.mod.penalty, 2) if self.jit else self.mod.penalty
        return fn(self.convert(params), self.convert(x), layer)


@functools.cache
def _jitted(fn, *static_argnums):
    """One ``jax.jit`` wrapper per function, so that its compilations are reused."""
    return load_jax().jit(fn, static_argnums=static_argnums)


REFS = Impl("refs", "numpy", "refs.capture")
TORCH = Impl("torch_impl", "torch-cpu", "torch_impl.capture")
JAX = Impl("jax_impl", "jax-cpu", "crosscheck.jax_impl.capture")
JAX_JIT = Impl("jax_impl-jit", "jax-cpu", "crosscheck.jax_impl.capture", jit=True)
# on a GPU machine (`nox -s cuda`): the same checks with the weights and images on the device
TORCH_CUDA = Impl("torch_impl-cuda", "torch-cuda", "torch_impl.capture")
JAX_CUDA = Impl("jax_impl-jit-cuda", "jax-cuda", "crosscheck.jax_impl.capture", jit=True)
IMPLS = {impl.label: impl for impl in (REFS, TORCH, JAX, JAX_JIT, TORCH_CUDA, JAX_CUDA)}
#: (torch, JAX) pairs per device for the gradient comparisons
GRAD_PAIRS = {"cpu": (TORCH, JAX_JIT), "cuda": (TORCH_CUDA, JAX_CUDA)}


def ready(require_backend, *impls: Impl) -> None:
    """Skip unless every impl's framework is present (``missing()`` also loads it with the
    suite's numerics: x64 JAX, no TF32)."""
    for impl in impls:
        require_backend(Backend(impl.backend))


def grad_terms(case: NetCase) -> int:
    """``K_grad``: every rounding a monomial of a gradient can meet, generously counted.

    The forward pass twice (the penalty squares a forward value), the penalty's
    own backward (1/M, times 2, times h), and for each linear layer the sums of
    its backward: fan-out terms into each input element, N * positions terms
    into each weight element (the jax_impl conv's transpose adds at most
    kernel-area terms per position, inside the fan-out).
    """
    c = case.config
    shapes = layer_shapes(check_init("init_params", c.in_channels, c.channels, c.classes,
                                     c.size, case.dtype), c.batch, c.size)
    c1, c2 = c.channels
    backward = (c1 * CONV1_KERNEL**2 + c.batch * math.prod(shapes["conv1"][2:])
                + c2 * CONV2_KERNEL**2 + c.batch * math.prod(shapes["conv2"][2:])
                + c.classes + c.batch)
    return 2 * linear_terms(case)["fc"] + 4 + backward


def selections(kept: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 0/1 choices of ReLU and max-pool in a forward pass (first max in a window)."""
    win = windows(kept["relu1"])
    n, c, p, _, q, _ = win.shape
    flat = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, p, q, 4)
    onehot = np.eye(4)[flat.argmax(axis=-1)].reshape(n, c, p, q, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return {"relu1": (kept["conv1"] > 0).astype(float), "pool1": onehot,
            "relu2": (kept["conv2"] > 0).astype(float)}


def clear_of_kinks(kept: dict[str, np.ndarray], bounds: dict[str, Tolerance]) -> bool:
    """No ReLU input within twice its error bound of 0, no pooling window whose
    positive max is within twice the bound of the runner-up: then the computed
    selections are the exact ones, for the implementation and the reference alike."""
    for pre in ("conv1", "conv2"):
        if np.any(np.abs(kept[pre]) <= 2 * bounds[pre].allowed(kept[pre])):
            return False
    win = windows(kept["relu1"])
    margin = windows(np.broadcast_to(bounds["relu1"].allowed(kept["relu1"]),
                                          kept["relu1"].shape))
    n, c, p, _, q, _ = win.shape
    flat = np.sort(win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, p, q, 4), axis=-1)
    slack = margin.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, p, q, 4).max(axis=-1)
    positive = flat[..., -1] > 0
    return not np.any(positive & (flat[..., -1] - flat[..., -2] <= 2 * slack))


def grad_magnitudes(case: NetCase, sel) -> dict[str, np.ndarray]:
    """The penalty's gradient for the absolute-value network with fixed selections.

    Computed with torch autograd and ``F.conv2d`` in float64: this is a bound's
    magnitude, not a result under test, and torch's eager autograd needs no
    compilation per shape.
    """
    torch = load_torch()
    import torch.nn.functional as F

    p = {k: torch.from_numpy(np.abs(v)).requires_grad_(True) for k, v in case.params64().items()}
    before = layer_input(case.layer)
    if before is None:  # the mean square of x depends on no weight
        return {k: np.zeros(v.shape) for k, v in p.items()}
    sel = {k: torch.from_numpy(v) for k, v in sel.items()}
    h = abs_network(p, torch.from_numpy(np.abs(case.x64())), sel, conv=F.conv2d)[before]
    h.pow(2).mean().backward()
    return {k: np.zeros(v.shape) if v.grad is None else v.grad.numpy() for k, v in p.items()}


def grad_tolerance(dtype, k: int, magnitude, sides: int = 2, why="") -> Tolerance:
    """``sides`` results, each within gamma(k) * magnitude of the exact gradient."""
    atol = sides * gamma(k, dtype) * np.asarray(magnitude) + 2 * k * float(np.finfo(dtype).tiny)
    return Tolerance(0.0, atol, why or f"{sides} x gamma({k}) in {dtype} on |grad| magnitudes")


# ------------------------------------------------------------ properties


def check_forward(impl: Impl, case: NetCase) -> None:
    """Same names, dtypes, shapes and (within the forward bound) values as refs in float64."""
    out, kept = impl.forward(case.params(), case.x())
    expected_out, expected = refs_capture.forward(case.params64(), case.x64())
    assert sorted(kept) == sorted(LAYERS), (
        f"{impl.label}: intermediates are keyed {sorted(kept)}, expected {sorted(LAYERS)}")
    bounds = forward_bounds(case)
    for name in LAYERS:
        assert_close(kept[name], expected[name], bounds[name], dtype=case.dtype,
                     path=f"{impl.label} intermediates[{name!r}]")
    assert_close(out, expected_out, bounds["fc"], dtype=case.dtype, path=f"{impl.label} out")


def torch_value_and_grads(impl: Impl, case: NetCase, via: str):
    """The penalty and its gradients in torch, by ``.backward()`` through a hook-captured value.

    ``via``: ``"penalty"`` -- ``impl.penalty`` (a Regularizer hook) on leaf
    tensors; ``"forward"`` -- the mean square of the intermediate that
    ``impl.forward`` captured; ``"capture"`` -- a user's ``SmallNet`` and
    ``capture_outputs`` context, gradients read from the module's parameters.
    """
    x = impl.asarray(case.x())
    before = layer_input(case.layer)
    if via == "capture":
        net = impl.mod.SmallNet(impl.convert(case.params()))
        if before is None:
            net(x)
            loss = x.pow(2).mean()
        else:
            with impl.mod.capture_outputs(net, [before]) as got:
                net(x)
            loss = got[before][0].pow(2).mean()
        leaves = dict(net.named_parameters())
    else:
        leaves = {k: impl.asarray(v).requires_grad_(True) for k, v in case.params().items()}
        if via == "penalty":
            loss = impl.mod.penalty(leaves, x, case.layer)
        else:
            _, kept = impl.mod.forward(leaves, x)
            loss = (x if before is None else kept[before]).pow(2).mean()
    if loss.requires_grad:  # the penalty of x itself depends on no weight
        loss.backward()
    grads = {k: np.zeros(v.shape, case.dtype) if v.grad is None else impl.to_numpy(v.grad)
             for k, v in leaves.items()}
    return impl.to_numpy(loss), grads


def jax_value_and_grads(impl: Impl, case: NetCase, vias=("penalty",), layers=None):
    """``{(via, layer): (penalty, jax.grad of it)}``, the penalty from ``impl.penalty``
    (``via="penalty"``) or read from ``impl.forward``'s dict (``"forward"``).

    All ``vias`` and ``layers`` (default ``(case.layer,)``) in one function, so
    that under ``jit`` one program per shape and dtype serves them all.
    """
    layers = (case.layer,) if layers is None else tuple(layers)
    fn = _value_and_grad(impl, tuple(vias), layers)
    got = fn(impl.convert(case.params()), impl.asarray(case.x()))
    return {key: (np.asarray(value), {k: np.asarray(g) for k, g in grads.items()})
            for key, (value, grads) in got.items()}


@functools.cache
def _value_and_grad(impl: Impl, vias: tuple[str, ...], layers: tuple[str, ...]):
    jax = load_jax()
    mod = impl.mod

    def penalty(params, x, layer, via):
        if via == "penalty":
            return mod.penalty(params, x, layer)
        before = layer_input(layer)
        _, kept = mod.forward(params, x)
        h = x if before is None else kept[before]
        return (h**2).mean()

    def every(params, x):
        return {(via, layer): jax.value_and_grad(penalty)(params, x, layer, via)
                for via in vias for layer in layers}

    return jax.jit(every) if impl.jit else every


TORCH_VIAS = ("penalty", "forward", "capture")
JAX_VIAS = ("penalty", "forward")
#: penalty layers for the gradient tests: conv1's input (x) depends on no weight, and
#: flatten's input is relu2's output again
GRAD_LAYERS = ("relu1", "pool1", "conv2", "relu2", "fc")


def check_penalty_and_grads(torch_impl: Impl, jax_impl: Impl, case: NetCase,
                            layers=GRAD_LAYERS) -> None:
    """For each penalty layer: the penalty equals refs' by every torch and JAX path, and
    the gradients agree across them.

    Torch: ``penalty`` (the Regularizer), ``forward``'s captured dict, and a
    user's ``SmallNet`` + ``capture`` with ``.backward()``; JAX: ``jax.grad``
    of ``penalty`` and of a function reading ``forward``'s returned dict. All
    gradients are held against JAX's ``penalty`` path. Needs a case clear of
    kinks (``assume``): at a kink torch and JAX may pick different
    subgradients (JAX splits a max-pool tie evenly, torch gives it all to one
    element), and neither is wrong.
    """
    kept = refs_capture.forward(case.params64(), case.x64())[1]
    assume(clear_of_kinks(kept, forward_bounds(case)))
    sel = selections(kept)
    k = grad_terms(case)
    jax_results = jax_value_and_grads(jax_impl, case, JAX_VIAS, layers)
    for layer in layers:
        at = case._replace(layer=layer)
        results = {f"{jax_impl.label} via {via}": jax_results[via, layer] for via in JAX_VIAS}
        results |= {f"{torch_impl.label} via {via}": torch_value_and_grads(torch_impl, at, via)
                    for via in TORCH_VIAS}
        expected = refs_capture.penalty(at.params64(), at.x64(), layer)
        tol = penalty_bound(at)
        for label, (value, _) in results.items():
            assert_close(value, np.asarray(expected), tol, dtype=case.dtype,
                         path=f"{label}: penalty of {layer}'s input")
        mags = grad_magnitudes(at, sel)
        reference, (_, ref_grads) = next(iter(results.items()))
        for label, (_, grads) in results.items():
            for name in PARAM_NAMES:
                assert_close(grads[name], ref_grads[name],
                             grad_tolerance(case.dtype, k, mags[name]),
                             path=f"{label} vs {reference}, penalty of {layer}'s input: "
                                  f"grad[{name!r}]")


#: central-difference step: a power of two, so that weight +- STEP is exact (weights sit
#: on a 2**-12 grid with |w| < 1)
STEP = 2.0**-10


def check_finite_differences(torch_impl: Impl, jax_impl: Impl, case: NetCase,
                             coords: list[tuple[str, int]]) -> None:
    """Both gradients match central differences of ``refs.penalty`` in float64.

    Why the tolerance has no truncation term: between kinks, ReLU and max-pool
    are fixed selections, so ``layer``'s input is an affine function of any one
    weight ``w`` and the penalty, its mean square, a quadratic ``a + b w + c
    w**2``; the central difference of a quadratic is its exact derivative,
    ``(q(w + s) - q(w - s)) / 2s = b + 2 c w``, whatever the step. That holds
    if no kink lies in ``[w - s, w + s]``: each ReLU input and each difference
    inside a pooling window is affine in ``w`` too, so one with the same sign
    at both ends (checked, with the rounding bound as margin) keeps it in
    between. What remains is rounding: each float64 evaluation of ``q`` is off
    by at most its penalty bound, which the difference divides by ``2s``; the
    difference itself rounds once more (``u |fd|``); and each implementation's
    gradient is within ``gamma(K_grad) |grad|`` of the exact one.
    """
    params, x = case.params64(), case.x64()
    kept = refs_capture.forward(params, x)[1]
    assume(clear_of_kinks(kept, forward_bounds(case)))
    sel = selections(kept)
    t_grads = torch_value_and_grads(torch_impl, case, "penalty")[1]
    j_grads = jax_value_and_grads(jax_impl, case, JAX_VIAS, GRAD_LAYERS)["penalty", case.layer][1]
    mags = grad_magnitudes(case, sel)
    k = grad_terms(case)
    f64 = case._replace(dtype="float64")
    for name, i in coords:
        w = params[name].reshape(-1)[i]
        sides = []
        for sign in (1, -1):
            moved = {key: v.copy() for key, v in params.items()}
            moved[name].reshape(-1)[i] = w + sign * STEP
            assert (moved[name].reshape(-1)[i] - w) * sign == STEP, "the step is not exact"
            kept_moved = refs_capture.forward(moved, x)[1]
            bounds = forward_bounds(f64, moved, x)
            same = all(np.array_equal(v, sel[key]) for key, v in selections(kept_moved).items())
            assume(same and clear_of_kinks(kept_moved, bounds))
            value = refs_capture.penalty(moved, x, case.layer)
            sides.append((value, penalty_bound(case, "float64", moved, x).allowed(value)))
        (plus, e_plus), (minus, e_minus) = sides
        fd = (plus - minus) / (2 * STEP)
        fd_error = (e_plus + e_minus) / (2 * STEP) + np.finfo(np.float64).eps / 2 * abs(fd)
        magnitude = mags[name].reshape(-1)[i]
        allowed = fd_error + gamma(k, case.dtype) * magnitude + 2 * k * np.finfo(case.dtype).tiny
        tol = Tolerance(0.0, allowed, f"finite-difference rounding {fd_error:.3g} + gamma({k}) "
                                      f"in {case.dtype} on |grad| {magnitude:.3g}")
        for label, grads in ((torch_impl.label, t_grads), (jax_impl.label, j_grads)):
            got = grads[name].reshape(-1)[i].astype(np.float64)
            assert_close(got, np.float64(fd), tol, path=f"{label} grad[{name!r}][{i}] vs "
                                                        f"central difference")


def hook_count(net) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


class Boom(Exception):
    """Raised inside a capture block to check that the hooks still go."""


def check_hooks_removed(impl: Impl, case: NetCase) -> None:
    """Hooks live exactly as long as the block or regularizer that registered them."""
    torch = load_torch()
    from torch.nn.modules import module as module_globals

    net = impl.mod.SmallNet(case.params())
    x = torch.from_numpy(case.x())
    assert hook_count(net) == 0
    with impl.mod.capture_outputs(net, LAYERS) as kept:
        assert hook_count(net) == len(LAYERS), "capture must register one hook per name"
        net(x)
        net(x)
        assert hook_count(net) == len(LAYERS), "hooks grew with repeated forwards"
    assert hook_count(net) == 0, "hooks left behind after a normal exit"
    assert [len(v) for v in kept.values()] == [2] * len(LAYERS), "one record per call"
    net(x)
    assert [len(v) for v in kept.values()] == [2] * len(LAYERS), "recorded after exit"

    with pytest.raises(Boom), impl.mod.capture_outputs(net, LAYERS):
        net(x)
        raise Boom
    assert hook_count(net) == 0, "hooks left behind after an exception in the block"
    with pytest.raises(RuntimeError), impl.mod.capture_outputs(net, LAYERS):
        net(x[..., :2, :2])  # pool1 leaves 1 x 1 for conv2's 2 x 2: torch raises mid-forward
    assert hook_count(net) == 0, "hooks left behind after an exception in the forward"

    with impl.mod.Regularizer(net.fc) as reg:
        net(x)
        net(x)
        assert hook_count(net) == 1, "the regularizer's hooks grew with repeated forwards"
        assert reg.loss is not None
    assert hook_count(net) == 0, "the regularizer's hook outlived its block"
    reg = impl.mod.Regularizer(net.conv2)
    reg.remove()
    reg.remove()  # idempotent
    assert hook_count(net) == 0, "Regularizer.remove() left its hook"

    before = (dict(module_globals._global_forward_hooks),
              dict(module_globals._global_forward_pre_hooks))
    for _ in range(3):
        impl.mod.forward(case.params(), x)
        impl.mod.penalty(case.params(), x, case.layer)
    after = (dict(module_globals._global_forward_hooks),
             dict(module_globals._global_forward_pre_hooks))
    assert after == before, "forward / penalty left global hooks behind"


def check_capture_survives_inplace(impl: Impl, case: NetCase) -> None:
    """In-place ops after a hooked layer (ReLU(inplace=True), ``out += 1``) leave the capture intact."""
    torch = load_torch()
    net = impl.mod.SmallNet(case.params(), inplace=True)
    x = torch.from_numpy(case.x())
    with impl.mod.capture_outputs(net, LAYERS) as kept:
        out = net(x)
        out.add_(1.0)  # after fc's hook ran: must not reach the stored fc output
    expected = refs_capture.forward(case.params64(), case.x64())[1]
    bounds = forward_bounds(case)
    for name in LAYERS:
        assert len(kept[name]) == 1
        assert_close(kept[name][0].detach().numpy(), expected[name], bounds[name],
                     dtype=case.dtype, path=f"{impl.label} in-place net: captured {name!r}")


def check_rejects(impl: Impl, bad: BadCall) -> None:
    """The same exception class from every implementation, naming the function and argument."""
    calls = [("penalty", lambda: impl.penalty(bad.params, bad.x, bad.layer))]
    if bad.argument != "layer":
        calls.append(("forward", lambda: impl.forward(bad.params, bad.x)))
    for fn, call in calls:
        try:
            call()
        except bad.exception as e:
            message = str(e)
            named = re.search(rf"\b{re.escape(bad.argument)}\b", message)
            assert f"{fn}()" in message and named, (
                f"{impl.label}.{fn} raised {type(e).__name__} for {bad.why}, but the message "
                f"does not name {fn}() and {bad.argument!r}: {message}")
            continue
        except Exception as e:
            raise AssertionError(f"{impl.label}.{fn} raised {type(e).__name__} for {bad.why}, "
                                 f"expected {bad.exception.__name__}: {e}") from e
        raise AssertionError(f"{impl.label}.{fn} answered a bad input silently ({bad.why})")


# ------------------------------------------------------------ the tests


# Eager forward / penalty on every implementation and backend, and their bad input, are
# the op table's cells (crosscheck/ops/capture.py: agrees_with_ref, rejects_bad_input);
# here the same checks run under jax.jit, which the table does not do.
JIT_IMPLS = [label for label, impl in IMPLS.items() if impl.jit]


@pytest.mark.parametrize("label", JIT_IMPLS)
def test_forward_under_jit_gives_the_same_output_and_intermediates(label, require_backend):
    impl = IMPLS[label]
    ready(require_backend, impl)

    @given(case=net_cases())
    def run(case):
        check_forward(impl, case)

    run()


@pytest.mark.parametrize("device", list(GRAD_PAIRS))
def test_penalty_and_its_gradients_agree_in_torch_and_jax(device, require_backend):
    # JAX under jit here: one compiled program per shape and layer is cheaper than the
    # compilations of eager differentiation; the eager path is the next test's
    torch_impl, jax_impl = GRAD_PAIRS[device]
    ready(require_backend, torch_impl, jax_impl)

    @given(case=net_cases(integral=False))
    def run(case):
        check_penalty_and_grads(torch_impl, jax_impl, case)

    run()


def test_penalty_and_its_gradients_without_jit(require_backend):
    """Eager ``jax.grad``: it compiles per shape, dtype and layer, hence a few fixed cases."""
    ready(require_backend, TORCH, JAX)

    @given(case=st.sampled_from(fixed_cases()[:2]), layer=st.sampled_from(GRAD_LAYERS[1::2]))
    def run(case, layer):
        check_penalty_and_grads(TORCH, JAX, case, layers=(layer,))

    run()


@st.composite
def cases_with_coords(draw):
    case = draw(net_cases(("float64",), integral=False, layers=GRAD_LAYERS))
    upstream = PARAM_NAMES[:2] if LAYERS.index(case.layer) <= 3 else PARAM_NAMES[:4]
    shapes = {k: v.shape for k, v in case.params().items()}
    coords = []
    for _ in range(3):
        name = draw(st.sampled_from(upstream))
        coords.append((name, draw(st.integers(0, math.prod(shapes[name]) - 1))))
    return case, coords


def test_gradients_match_central_differences_of_refs(require_backend):
    ready(require_backend, TORCH, JAX_JIT)

    @given(drawn=cases_with_coords())
    def run(drawn):
        check_finite_differences(TORCH, JAX_JIT, *drawn)

    run()


@pytest.mark.parametrize("case", fixed_cases(), ids=lambda c: f"config{CONFIGS.index(c.config)}-{c.dtype}")
def test_capture_and_regularizer_hooks_are_removed(case, require_backend):
    ready(require_backend, TORCH)
    check_hooks_removed(TORCH, case)


def test_capture_is_not_overwritten_by_inplace_ops(require_backend):
    ready(require_backend, TORCH)

    @given(case=net_cases())
    def run(case):
        check_capture_survives_inplace(TORCH, case)

    run()


@pytest.mark.parametrize("label", JIT_IMPLS)
def test_bad_input_raises_the_same_class_under_jit(label, require_backend):
    impl = IMPLS[label]
    ready(require_backend, impl)

    @given(bad=bad_calls())
    def run(bad):
        check_rejects(impl, bad)

    run()


def test_a_module_called_twice_is_recorded_once_per_call(require_backend):
    ready(require_backend, TORCH)
    import torch
    from torch import nn

    from torch_impl.capture import capture_outputs

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.lin = nn.Linear(3, 3, dtype=torch.float64)

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    net = Twice()
    x = torch.tensor([[-1.0, 2.0, -3.0]], dtype=torch.float64)
    with capture_outputs(net, ["act", "lin", ""]) as kept:
        y = net(x)
    first = torch.relu(x)
    assert [len(kept[k]) for k in ("act", "lin", "")] == [2, 1, 1]
    assert torch.equal(kept["act"][0], first)
    assert torch.equal(kept["lin"][0], net.lin(first))
    assert torch.equal(kept["act"][1], torch.relu(net.lin(first)))
    assert torch.equal(kept[""][0], y)
    assert hook_count(net) == 0


def test_capture_rejects_bad_names_and_registers_nothing(require_backend):
    ready(require_backend, TORCH)
    from torch_impl.capture import SmallNet, capture_outputs

    net = SmallNet(refs_capture.init_params(0))
    for names, exception, needle in ((["conv1", "conv3"], ValueError, "'conv3'"),
                                     (["relu1", "relu1"], ValueError, "'relu1'"),
                                     ("conv1", TypeError, "'conv1'"),
                                     ([1], TypeError, "1")):
        with pytest.raises(exception) as info, capture_outputs(net, names):
            pass
        assert "capture_outputs()" in str(info.value) and "names" in str(info.value)
        assert needle in str(info.value)
        assert hook_count(net) == 0


def test_captured_values_keep_their_graph(require_backend):
    ready(require_backend, TORCH)
    import torch

    from torch_impl.capture import SmallNet, capture_outputs

    case = NetCase(CONFIGS[1], 0, "float64", False)
    net = SmallNet(case.params())
    with capture_outputs(net, LAYERS) as kept:
        net(torch.from_numpy(case.x()))
    assert all(v[0].requires_grad and v[0].grad_fn is not None for v in kept.values())


@pytest.mark.parametrize("label", ["torch_impl", "jax_impl"])
def test_init_params_gives_the_same_numbers_everywhere(label, require_backend):
    impl = IMPLS[label]
    ready(require_backend, impl)
    for dtype in FLOAT_DTYPES:
        kwargs = dict(in_channels=2, channels=(3, 1), num_classes=5, image_size=(7, 4),
                      dtype=dtype)
        expected = refs_capture.init_params(7, **kwargs)
        got = {k: impl.to_numpy(v) for k, v in impl.mod.init_params(7, **kwargs).items()}
        assert list(got) == list(PARAM_NAMES)
        assert_close(got, expected)
    # exact in float32: the float32 and float64 weights are the same numbers
    w32 = refs_capture.init_params(3, dtype="float32")
    w64 = refs_capture.init_params(3, dtype="float64")
    assert all(np.array_equal(w32[k].astype(np.float64), w64[k]) for k in PARAM_NAMES)


@pytest.mark.parametrize(("kwargs", "exception", "argument"), [
    (dict(in_channels=0), ValueError, "in_channels"),
    (dict(channels=(2,)), ValueError, "channels"),
    (dict(num_classes=2.0), ValueError, "num_classes"),
    (dict(image_size=(3, 6)), ValueError, "image_size"),
    (dict(dtype="int64"), TypeError, "dtype"),
])
def test_init_params_rejects_bad_sizes(kwargs, exception, argument):
    with pytest.raises(exception, match=rf"init_params\(\): {argument}"):
        refs_capture.init_params(0, **kwargs)


def test_refs_penalty_is_the_mean_square_of_the_layer_input():
    case = NetCase(CONFIGS[1], 5, "float64", False)
    params, x = case.params(), case.x()
    kept = refs_capture.forward(params, x)[1]
    for layer in LAYERS:
        before = layer_input(layer)
        h = x if before is None else kept[before]
        assert refs_capture.penalty(params, x, layer) == pytest.approx(np.mean(h**2), rel=1e-12)
