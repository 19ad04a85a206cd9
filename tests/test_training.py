"""Training and inference: refs, torch_impl and jax_impl take the same SGD steps.

Each property is a plain function ``check_*(impl, case)`` of one implementation
(an :class:`Impl`) and one drawn case, so that the planted wrong versions at
the end of this file are held against the very same checks, and so that the
properties can move into the op table (``crosscheck/ops/``) as they are.

What is compared, all against ``refs`` run in float64 (float32 weights and
images sit on a ``2**-12`` grid, so they are the same numbers in float64):

* one step: the loss and every new weight (:func:`check_step`);
* a short loop (1 to 3 batches of unequal sizes): the weights, the epoch loss
  and the epoch accuracy (:func:`check_loop`);
* inference over the same batches (:func:`check_inference`);
* the refs gradient, recovered from ``train_step`` as ``(params - new) / lr``,
  against central differences of the refs loss (:func:`check_gradient_fd`);
* bad input: the same class everywhere (:func:`check_rejects`), and under
  ``jax.jit``, where values cannot be checked, NaN instead of an answer
  (:func:`check_poisoned`); ``train_step`` under ``jax.jit`` against eager
  (:func:`check_jit_matches_eager`).

The rounding bound of one step
------------------------------

Every tolerance below is an a-priori bound, ``|computed - exact|``, summed for
the implementation (in its dtype) and the float64 reference, as
``crosscheck.tolerance.rounding_bound`` does. ``u`` is a dtype's unit
roundoff, ``gamma(n) = n u / (1 - n u)`` (Higham), and the cases are drawn
clear of kinks (:func:`test_capture.clear_of_kinks`: no ReLU input and no
pooling near-tie within twice the forward bound), so ReLU and max-pool make
the same 0/1 selections in every implementation and in exact arithmetic.

1. Logits. ``crosscheck.ops.capture``'s forward bound:
   ``|dz| <= e_z = gamma(K_fc) * A_fc``, ``K_fc`` the term counts of the three
   linear layers and ``A_fc`` the network run on absolute values.
2. Softmax. A logit error of at most ``E_n = max_k e_z[n, k]`` moves
   ``p = softmax(z)`` by a factor in ``[exp(-2 E_n), exp(2 E_n)]`` (the
   numerator by ``exp(+-E_n)``, the denominator too). Its own arithmetic: the
   arguments of ``exp`` (``z - max z`` and, where a log-softmax is
   exponentiated, ``- log s``, ``|log s| <= log K``) are at most ``2 max|z| +
   log K`` and carry a few roundings each, which moves them by ``gamma_s (2
   max|z| + log K + 1)``; ``exp``, ``log``, the sum over ``K`` classes and the
   division add ``gamma_s`` relative, where ``gamma_s = gamma(K + 2 T + 6)``
   and ``T`` = :data:`TRANSCENDENTAL` roundings charged per ``exp`` / ``log``
   (they are not correctly rounded, and differ by a few ulps between NumPy,
   torch/Sleef and XLA). So ``|dp| <= p r_n``, ``r_n = exp(2 D_n) (1 +
   gamma_s) - 1``, ``D_n = E_n + gamma_s (2 max|z_n| + log K + 1)``.
3. The loss ``(1/N) sum_n (logsumexp(z_n) - z_n[y_n])``: both terms are
   1-Lipschitz in the max-norm, so a sample's loss moves by ``2 E_n``; its
   own arithmetic adds ``gamma_s (3 + 4 max|z_n| + 2 log K)`` (every value it
   touches is at most ``2 max|z_n| + log K``); the mean adds ``gamma(N + 1)``
   times the mean; the penalty adds its weight times the capture bound
   ``gamma(2 K_flat + M + 1) mean(A_flat**2)``; the weighted sum,
   ``gamma(3)``.
4. The gradient at the logits, ``dz = (p - onehot(y)) / N``: off by at most
   ``e_dz = (p r_n + 4 u) / N`` (the ``4 u`` covers the one-hot subtraction,
   the scaling by ``1/N`` and ``u p |log p| <= u`` where ``p`` comes from
   ``exp(log_softmax)``).
5. The weight gradients. With the selections fixed, every weight gradient is
   ``sum_{n,k} dz[n, k] * P[n, k]`` plus the penalty's, with ``P`` polynomials
   in the weights and ``x``: reverse mode evaluates each monomial with at most
   ``K_grad`` roundings (:func:`test_capture.grad_terms`, generous), plus 3
   for adding the two parts and weighting the penalty. So ``|dg| <= M(gamma'
   (|dz| + e_dz) + e_dz) + gamma' w Mpen``, where ``M(s)`` is the gradient of
   ``sum s * A_fc`` over the absolute-value network with the same selections
   and ``Mpen`` that of its ``mean(A_flat**2)`` (torch autograd in float64,
   a bound's magnitude, not a result under test), ``gamma' = gamma(K_grad + 3)``.
6. The update ``p - lr * g``: ``lr * |dg|`` plus ``gamma(3) (|p| + lr |g|)`` (the
   product, the difference, and ``lr`` rounded to the dtype).

Magnitudes use the float64 reference's values for the exact ones (``p``,
losses): the difference is of second order. Accuracy is compared exactly:
the cases are also drawn with every sample's top logit ahead of the
runner-up by more than twice the logit bound, so every implementation and
exact arithmetic pick the same class.

A loop is checked the way a backward-error analysis would (shadowing): no
a-priori bound follows a rounding error through later steps (that would need
the loss's curvature), so each step of an implementation's trajectory is held
against a float64 ``refs`` step *from the implementation's own weights* with
the one-step bound, and the loop must return exactly the weights of its own
``train_step`` called batch by batch ("the loop is the step repeated"; exact
on these deterministic CPU backends). The epoch loss then has the bound
``sum_b N_b tol_b / S`` plus the float64 rounding of that weighted mean.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st
from test_capture import clear_of_kinks, grad_terms, selections

import refs.capture as refs_capture
import refs.training as refs_training
from crosscheck.backends import Backend, load_jax, load_torch
from crosscheck.compare import assert_close
from crosscheck.ops.capture import (
    CONFIGS,
    FLOAT_DTYPES,
    Config,
    NetCase,
    abs_network,
    bad_calls,
    layer_bounds,
    layer_terms,
)
from crosscheck.tolerance import EXACT, Tolerance, gamma, unit_roundoff
from refs.checks.common import INTEGER_DTYPES
from refs.network import PARAM_NAMES

#: roundings charged to one exp or log (a few ulps in NumPy, Sleef and XLA; generous)
TRANSCENDENTAL = 8
#: label dtypes the cases draw from: any integer dtype is allowed (int64 first: the simplest)
LABEL_DTYPES = ("int64",) + tuple(sorted(INTEGER_DTYPES - {"int64"}))
#: penalty weights: 0 (the deck's loop) and two powers of two (exact in float32)
PENALTY_WEIGHTS = (0.0, 0.25, 2.0)

# ------------------------------------------------------------ the implementations


@dataclass(frozen=True)
class Impl:
    """One implementation of the training API on one backend."""

    label: str
    backend: str  # "numpy", "torch-cpu", "jax-cpu"
    module: Any  # an import path, or an object holding the functions (a planted one)
    jit: bool = False  # jax: train_step under jax.jit

    @property
    def mod(self):
        if isinstance(self.module, str):
            return importlib.import_module(self.module)
        return self.module

    def convert(self, value):
        """NumPy arrays, also inside dicts, lists and tuples, as this backend's arrays."""
        if isinstance(value, np.ndarray):
            return Backend(self.backend).asarray(value)
        if isinstance(value, dict):
            return {k: self.convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.convert(v) for v in value)
        return value

    def to_numpy(self, a) -> np.ndarray:
        return Backend(self.backend).to_numpy(a)

    def is_array(self, a) -> bool:
        """``a`` is an array of this implementation's framework."""
        framework = Backend(self.backend).framework
        if framework == "torch":
            return isinstance(a, load_torch().Tensor)
        if framework == "jax":
            return isinstance(a, load_jax().Array)
        return isinstance(a, np.ndarray)

    def train_step(self, params, x, y, lr, penalty_weight):
        fn = _jitted(self.mod.train_step) if self.jit else self.mod.train_step
        return fn(params, x, y, lr=lr, penalty_weight=penalty_weight)


@functools.cache
def _jitted(fn):
    return load_jax().jit(fn)


REFS = Impl("refs", "numpy", "refs.training")
TORCH = Impl("torch_impl", "torch-cpu", "torch_impl.training")
JAX = Impl("jax_impl", "jax-cpu", "crosscheck.jax_impl.training")
JAX_JIT = Impl("jax_impl-jit", "jax-cpu", "crosscheck.jax_impl.training", jit=True)
IMPLS = {impl.label: impl for impl in (REFS, TORCH, JAX, JAX_JIT)}
#: the implementations whose loops are checked (the jit one differs in train_step only)
EAGER = ("refs", "torch_impl", "jax_impl")


def ready(require_backend, *impls: Impl) -> None:
    """Skip unless the implementations' frameworks are present; torch also computes the
    bounds' gradient magnitudes."""
    require_backend(Backend("torch-cpu"))
    for impl in impls:
        require_backend(Backend(impl.backend))


# ------------------------------------------------------------ cases


class TrainCase(NamedTuple):
    """A network, its batches and the step's settings; ``repr`` is a reproducer."""

    config: Config  # the architecture (config.batch is not used: labels give the sizes)
    seed: int
    dtype: str
    labels: tuple[tuple[int, ...], ...]  # one tuple of class indices per batch
    label_dtype: str = "int64"
    lr_exp: int = -3  # lr = 2**lr_exp: exact in every dtype, and (p - new) / lr is exact
    penalty_weight: float = 0.0

    @property
    def lr(self) -> float:
        return 2.0**self.lr_exp

    def net(self, batch: int = 1, index: int = 0) -> NetCase:
        """``crosscheck.ops.capture``'s case for the weights (``index`` 0) and for the images
        of batch ``index`` (its own seed)."""
        return NetCase(self.config._replace(batch=batch), self.seed + 7919 * index, self.dtype,
                       False)

    def params(self) -> dict[str, np.ndarray]:
        return self.net().params()

    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.net(len(y), b + 1).x(), np.array(y, dtype=self.label_dtype))
                for b, y in enumerate(self.labels)]

    @property
    def samples(self) -> int:
        return sum(len(y) for y in self.labels)


@st.composite
def train_cases(draw, dtypes=FLOAT_DTYPES, *, max_batches=3, lr_exps=(-6, 3),
                penalty_weights=PENALTY_WEIGHTS):
    config = draw(st.sampled_from(CONFIGS))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=max_batches))
    labels = tuple(tuple(draw(st.lists(st.integers(0, config.classes - 1), min_size=n,
                                       max_size=n))) for n in sizes)
    case = TrainCase(config, draw(st.integers(0, 2**16)), draw(st.sampled_from(dtypes)), labels,
                     draw(st.sampled_from(LABEL_DTYPES)), draw(st.integers(*lr_exps)),
                     draw(st.sampled_from(penalty_weights)))
    note(f"case = {case!r}")
    return case


# ------------------------------------------------------------ bounds


@dataclass(frozen=True)
class Expected:
    """refs in float64 for one step or one forward pass, with the bounds of the module docstring."""

    logits: np.ndarray
    loss: np.ndarray  # 0-d float64, the penalty included when asked
    loss_tol: Tolerance
    correct: int
    params: dict[str, np.ndarray] | None = None  # after the step
    param_tols: dict[str, Tolerance] | None = None


def expected(params, x, y, *, lr=None, penalty_weight=0.0, dtypes=("float64",),
             clear=assume) -> Expected:
    """refs in float64 from ``params`` and ``x`` (as float64) and the bounds for results in each
    of ``dtypes`` and the reference (summed); ``lr=None``: forward and loss only.

    Calls ``clear(condition)`` (default ``assume``): the case must be clear of kinks and of
    argmax near-ties.
    """
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    logits, kept = refs_capture.forward(params, x)
    sides = tuple(dtypes) + ("float64",)
    forward = layer_bounds(params, x, dtypes[0])
    for d in dtypes[1:]:
        other = layer_bounds(params, x, d)
        forward = {k: Tolerance(0.0, np.maximum(forward[k].atol, other[k].atol)) for k in forward}
    clear(clear_of_kinks(kept, forward))
    terms = layer_terms(params)
    mags = abs_network({k: np.abs(v) for k, v in params.items()}, np.abs(x))
    n, k = logits.shape
    z_err = {d: gamma(terms["fc"], d) * mags["fc"] + terms["fc"] * float(np.finfo(d).tiny)
             for d in sides}
    top2 = np.sort(logits, axis=1)[:, -2:] if k > 1 else None
    if top2 is not None:
        margin = sum(z_err[d] for d in sides).max(axis=1)
        clear(bool(np.all(top2[:, 1] - top2[:, 0] > 2 * margin)))

    y = np.asarray(y).astype(np.int64)
    h = kept["flatten"]
    loss = np.asarray(refs_training.cross_entropy(logits, y)
                      + penalty_weight * refs_capture.penalty(params, x))
    # magnitudes for the bound (vectorized: test-side only)
    p = _softmax(logits)
    per_sample = -np.log(p[np.arange(n), y])
    pen = np.mean(h**2)
    zmax = np.abs(logits).max(axis=1)
    rel, loss_err = {}, 0.0
    for d in sides:
        g_s = gamma(k + 2 * TRANSCENDENTAL + 6, d)
        e = z_err[d].max(axis=1)
        reach = 2 * zmax + math.log(k) + 1
        rel[d] = np.expm1(2 * (e + g_s * reach)) * (1 + g_s) + g_s  # r_n
        ce_err = (np.mean(2 * e + g_s * (3 + 4 * zmax + 2 * math.log(k)))
                  + gamma(n + 1, d) * np.mean(per_sample))
        pen_err = gamma(2 * terms["flatten"] + h.size + 1, d) * np.mean(mags["flatten"] ** 2)
        loss_err += (ce_err + penalty_weight * pen_err
                     + gamma(3, d) * (np.mean(per_sample) + penalty_weight * pen))
    loss_tol = Tolerance(0.0, loss_err, f"cross-entropy bound in {'+'.join(sides)}")
    correct = int(np.sum(np.argmax(logits, axis=1) == y))
    if lr is None:
        return Expected(logits, loss, loss_tol, correct)

    new, ref_loss = refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)
    onehot = np.eye(k)[y]
    dz = (p - onehot) / n
    p_up = p * (1 + rel["float64"][:, None]) + 4 * unit_roundoff("float64")
    dz_err = {d: (p_up * rel[d][:, None] + 4 * unit_roundoff(d)) / n for d in sides}
    dz_up = np.abs(dz) + dz_err["float64"]
    k_grad = grad_terms(NetCase(_config_with_batch(params, x), 0, "float64", False)) + 3
    seed_err = sum(gamma(k_grad, d) * (dz_up + dz_err[d]) + dz_err[d] for d in sides)
    pen_gamma = sum(gamma(k_grad, d) for d in sides) * penalty_weight
    g_mag, g_err = grad_magnitudes(params, x, selections(kept), dz_up, penalty_weight,
                                   seed_err, pen_gamma)
    step = sum(gamma(3, d) for d in sides)
    param_tols = {
        name: Tolerance(0.0, lr * g_err[name] + step * (np.abs(params[name])
                                                        + lr * (g_mag[name] + g_err[name])),
                        f"one-step bound in {'+'.join(sides)}")
        for name in params}
    return Expected(logits, np.asarray(ref_loss), loss_tol, correct, new, param_tols)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _config_with_batch(params, x) -> Config:
    """The :class:`Config` of these weights and images (for :func:`test_capture.grad_terms`)."""
    c1, c_in = params["conv1.weight"].shape[:2]
    c2 = params["conv2.weight"].shape[0]
    return Config(x.shape[0], int(c_in), (int(c1), int(c2)), params["fc.weight"].shape[0],
                  tuple(int(s) for s in x.shape[2:]))


def grad_magnitudes(params, x, sel, seed, penalty_weight, seed_err, penalty_err):
    """``M(seed) + w Mpen`` and ``M(seed_err) + penalty_err Mpen`` (module docstring, item 5):
    gradients of ``sum s * A_fc + c * mean(A_flat**2)`` over the absolute-value network with
    the selections ``sel``, by torch autograd in float64."""
    torch = load_torch()
    import torch.nn.functional as F

    leaves = {k: torch.from_numpy(np.abs(v)).requires_grad_(True) for k, v in params.items()}
    kept = abs_network(leaves, torch.from_numpy(np.abs(x)), {k: torch.from_numpy(v)
                                                             for k, v in sel.items()},
                       conv=F.conv2d)
    square = kept["flatten"].pow(2).mean()
    out = []
    for s, c in ((seed, penalty_weight), (seed_err, penalty_err)):
        phi = (torch.from_numpy(np.asarray(s, np.float64)) * kept["fc"]).sum() + c * square
        grads = torch.autograd.grad(phi, list(leaves.values()), retain_graph=True)
        out.append({k: g.numpy() for k, g in zip(leaves, grads)})
    return out


# ------------------------------------------------------------ properties


def check_step(impl: Impl, case: TrainCase) -> None:
    """One ``train_step`` on the first batch: framework arrays of the weights' dtype, keys in
    ``params``' order, the caller's arrays untouched, loss and new weights within the one-step
    bound of refs in float64."""
    params, (x, y) = case.params(), case.batches()[0]
    want = expected(params, x, y, lr=case.lr, penalty_weight=case.penalty_weight,
                    dtypes=(case.dtype,))
    args = impl.convert(params), impl.convert(x), impl.convert(y)
    before = [_host(impl, a) for a in args]
    new, loss = impl.train_step(*args, case.lr, case.penalty_weight)
    for a, b in zip(args, before):
        assert_close(_host(impl, a), b, EXACT, path=f"{impl.label}: an argument after the step")
    _check_params_result(impl, new, params)
    assert impl.is_array(loss), f"{impl.label}: loss is a {type(loss).__name__}"
    assert_close(impl.to_numpy(loss), want.loss, want.loss_tol, dtype=case.dtype,
                 path=f"{impl.label} train_step loss")
    assert_close({k: impl.to_numpy(v) for k, v in new.items()}, want.params, want.param_tols,
                 dtype=case.dtype, path=f"{impl.label} train_step new_params")


def check_loop(impl: Impl, case: TrainCase) -> None:
    """``train_loop`` over the case's batches is ``train_step`` repeated, exactly; each step of
    that trajectory is within the one-step bound of refs in float64 from the same weights; the
    epoch loss is the sample-weighted mean of the steps' losses and the accuracy counts every
    batch, before its update (the module docstring's shadowing argument)."""
    params, batches = case.params(), case.batches()
    lr, w = case.lr, case.penalty_weight
    trajectory, total, loss_err, correct = [params], 0.0, 0.0, 0
    for x, y in batches:
        want = expected(trajectory[-1], x, y, lr=lr, penalty_weight=w, dtypes=(case.dtype,))
        new, loss = impl.train_step(impl.convert(trajectory[-1]), impl.convert(x),
                                    impl.convert(y), lr, w)
        new = {k: impl.to_numpy(v) for k, v in new.items()}
        path = f"{impl.label} step {len(trajectory)} of the loop"
        assert_close(impl.to_numpy(loss), want.loss, want.loss_tol, dtype=case.dtype,
                     path=f"{path}: loss")
        assert_close(new, want.params, want.param_tols, dtype=case.dtype,
                     path=f"{path}: new_params")
        trajectory.append(new)
        total += len(y) * float(want.loss)
        loss_err += len(y) * want.loss_tol.atol
        correct += want.correct
    got, epoch_loss, accuracy = impl.mod.train_loop(impl.convert(params), impl.convert(batches),
                                                    lr=lr, penalty_weight=w)
    _check_params_result(impl, got, params)
    assert_close({k: impl.to_numpy(v) for k, v in got.items()}, trajectory[-1], EXACT,
                 path=f"{impl.label} train_loop new_params vs train_step batch by batch")
    _check_epoch(impl, "train_loop", case, epoch_loss, accuracy, total, loss_err, correct)


def check_inference(impl: Impl, case: TrainCase) -> None:
    """``inference_loop``: the sample-weighted mean cross-entropy (no penalty) and the accuracy
    over every batch, the weights unchanged."""
    params, batches = case.params(), case.batches()
    total, loss_err, correct = 0.0, 0.0, 0
    for x, y in batches:
        want = expected(params, x, y, dtypes=(case.dtype,))
        total += len(y) * float(want.loss)
        loss_err += len(y) * want.loss_tol.atol
        correct += want.correct
    epoch_loss, accuracy = impl.mod.inference_loop(impl.convert(params), impl.convert(batches))
    _check_epoch(impl, "inference_loop", case, epoch_loss, accuracy, total, loss_err, correct)


def _check_epoch(impl, fn, case, epoch_loss, accuracy, total, loss_err, correct) -> None:
    s = case.samples
    for name, value in (("epoch_loss", epoch_loss), ("epoch_accuracy", accuracy)):
        assert type(value) is float, f"{impl.label}.{fn}: {name} is a {type(value).__name__}"
    # the implementation's float64 weighted mean: a product, a sum and a division per batch
    summing = gamma(2 * len(case.labels) + 2, np.float64) * total / s
    tol = Tolerance(0.0, loss_err / s + summing, "sum of the steps' loss bounds, per sample")
    assert_close(np.float64(epoch_loss), np.float64(total / s), tol,
                 path=f"{impl.label}.{fn} epoch_loss (the mean over {s} samples)")
    assert accuracy == 100 * correct / s, (
        f"{impl.label}.{fn}: epoch_accuracy = {accuracy!r}, expected 100 * {correct} / {s} = "
        f"{100 * correct / s!r} (argmax before each update, every batch counted)")


def _check_params_result(impl: Impl, new, params) -> None:
    assert isinstance(new, dict), f"{impl.label}: new_params is a {type(new).__name__}"
    # a jitted function returns its dict with sorted keys (documented in jax_impl.training)
    keys, want = (sorted(new), sorted(params)) if impl.jit else (list(new), list(params))
    assert keys == want, f"{impl.label}: new_params has keys {keys}, expected {want}"
    for name, v in new.items():
        assert impl.is_array(v), f"{impl.label}: new_params[{name!r}] is a {type(v).__name__}"


def _host(impl: Impl, a):
    if isinstance(a, dict):
        return {k: impl.to_numpy(v).copy() for k, v in a.items()}
    return impl.to_numpy(a).copy()


#: central-difference step: a power of two (weights on a 2**-12 grid with |w| < 1 move exactly)
STEP = 2.0**-13


def check_gradient_fd(impl: Impl, drawn) -> None:
    """The gradient recovered from ``train_step`` as ``(params - new) / lr`` (float64, ``lr`` a
    power of two) matches central differences of the refs loss at a few coordinates.

    The truncation term is bounded, not guessed: between kinks the logits are affine in any
    one weight ``w`` (each weight sits in one layer, linear in its weights and its input),
    ``z(w) = z0 + w v``, so the penalty (a mean square of an affine function) is a quadratic
    and its central difference exact, and the cross-entropy's third derivative is the third
    central moment of ``v_n`` under ``softmax(z_n)``, at most ``R_n**3 / 4`` with ``R_n`` the
    spread ``max_k v[n, k] - min_k v[n, k]`` (``|v - mean| <= R`` and variance ``<= R**2 / 4``).
    So the difference is off by at most ``STEP**2 / 6 * mean_n R_n**3 / 4`` (Taylor), plus
    the rounding of the two loss values (their float64 bound, divided by ``2 STEP``), plus the
    refs gradient's one-step bound and the recovery ``(p - new) / lr`` (``u (|new| / lr +
    |g|)``). ``v`` itself is read from the logits at ``w +- STEP`` (affine: exact up to their
    forward bound).
    """
    case, coords = drawn
    params, (x, y) = case.params(), case.batches()[0]
    lr, w = case.lr, case.penalty_weight
    want = expected(params, x, y, lr=lr, penalty_weight=w)  # assumes clear of kinks
    new, _ = impl.train_step(impl.convert(params), impl.convert(x), impl.convert(y), lr, w)
    new = {k: impl.to_numpy(v) for k, v in new.items()}
    sel = selections(refs_capture.forward(params, x)[1])
    u = unit_roundoff(np.float64)
    for name, i in coords:
        p, n = params[name].reshape(-1)[i], new[name].reshape(-1)[i]
        grad = (p - n) / lr
        recovery = u * (abs(n) / lr + abs(grad))
        sides = []
        for sign in (1, -1):
            moved = {k: v.copy() for k, v in params.items()}
            moved[name].reshape(-1)[i] = p + sign * STEP
            assert (moved[name].reshape(-1)[i] - p) * sign == STEP, "the step is not exact"
            logits, kept = refs_capture.forward(moved, x)
            assume(all(np.array_equal(v, sel[k]) for k, v in selections(kept).items()))
            at = expected(moved, x, y, penalty_weight=w)  # assumes clear of kinks
            value = float(refs_training.cross_entropy(logits, y)
                          + w * refs_capture.penalty(moved, x))
            z_err = float(np.max(layer_bounds(moved, x, "float64")["fc"].atol))
            sides.append((value, logits, float(at.loss_tol.atol), z_err))
        (plus, z_plus, e_plus, ez_plus), (minus, z_minus, e_minus, ez_minus) = sides
        fd = (plus - minus) / (2 * STEP)
        v = (z_plus - z_minus) / (2 * STEP)
        spread = v.max(axis=1) - v.min(axis=1) + 2 * (ez_plus + ez_minus) / (2 * STEP)
        truncation = STEP**2 / 6 * np.mean(spread**3) / 4
        rounding = (e_plus + e_minus) / (2 * STEP) + u * abs(fd)
        allowed = (truncation + rounding + recovery
                   + float(want.param_tols[name].atol.reshape(-1)[i]) / lr)
        tol = Tolerance(0.0, allowed, f"truncation {truncation:.3g} + rounding {rounding:.3g} "
                                      f"+ the refs step's bound")
        assert_close(np.float64(grad), np.float64(fd), tol,
                     path=f"{impl.label} grad[{name!r}][{i}] = (p - new) / lr vs central "
                          f"difference of the loss")


def check_jit_matches_eager(impl: Impl, case: TrainCase) -> None:
    """``jax.jit(train_step)`` against the eager call: the same keys (sorted under jit), and each
    value within the sum of the two one-step bounds."""
    assert impl.jit
    eager = IMPLS["jax_impl"]
    params, (x, y) = case.params(), case.batches()[0]
    want = expected(params, x, y, lr=case.lr, penalty_weight=case.penalty_weight,
                    dtypes=(case.dtype,))
    args = impl.convert(params), impl.convert(x), impl.convert(y)
    got = impl.train_step(*args, case.lr, case.penalty_weight)
    ref = eager.train_step(*args, case.lr, case.penalty_weight)
    assert sorted(got[0]) == list(got[0]) == sorted(ref[0]), "jit returns a dict, keys sorted"
    twice = {k: Tolerance(0.0, 2 * t.atol, "jit and eager, each within the one-step bound")
             for k, t in want.param_tols.items()}
    assert_close({k: impl.to_numpy(v) for k, v in got[0].items()},
                 {k: impl.to_numpy(v) for k, v in ref[0].items()}, twice, path="jit vs eager")
    assert_close(impl.to_numpy(got[1]), impl.to_numpy(ref[1]),
                 Tolerance(0.0, 2 * want.loss_tol.atol), path="jit vs eager loss")


# ------------------------------------------------------------ bad input


class BadCall(NamedTuple):
    fn: str  # "train_step", "train_loop", "inference_loop"
    args: tuple  # positional arguments, NumPy arrays converted per implementation
    kwargs: dict
    why: str
    exception: type[Exception]
    argument: str  # a word the message must contain
    value_only: bool = False  # a bad value (not shape / type): jit cannot raise on it


#: crosscheck.ops.capture's params / x faults, as train_step meets them
_CAPTURE_FAULTS = ("params not a dict", "missing key", "unexpected key", "conv1 kernel not 3x3",
                   "fc.bias too long", "mixed dtypes", "integer weights",
                   "a weight that is a list", "x of rank 3", "x with the wrong channels",
                   "x too small", "x that does not fit fc", "x of another dtype",
                   "x that is a list")
_STEP_FAULTS = ("label too large", "negative label", "float labels", "bool labels",
                "labels as a list", "labels too short", "labels of rank 2", "negative lr",
                "nan lr", "infinite lr", "lr as a string", "lr as None", "lr as a bool",
                "complex lr", "lr as a 1-element array", "negative penalty_weight",
                "nan penalty_weight", "penalty_weight as a string") + _CAPTURE_FAULTS
_LOOP_FAULTS = ("no batches", "batches not iterable", "a batch that is not a pair",
                "a batch of three", "labels out of range in a batch", "float labels in a batch",
                "x of the wrong channels in a batch", "x of another dtype in a batch",
                "negative lr", "bad params")
#: every (function, fault) pair: the tests take each one, hypothesis draws the rest
FAULTS = ([("train_step", f) for f in _STEP_FAULTS]
          + [("train_loop", f) for f in _LOOP_FAULTS]
          + [("inference_loop", f) for f in _LOOP_FAULTS if "lr" not in f])


@st.composite
def bad_calls_training(draw, fn: str, fault: str):
    """A call of ``fn`` with one ``fault`` in a drawn case."""
    case = draw(train_cases(max_batches=2, lr_exps=(-3, 0)))
    params, batches = case.params(), case.batches()
    k = case.config.classes
    lr, w = case.lr, case.penalty_weight
    rates = {} if fn == "inference_loop" else dict(lr=lr, penalty_weight=w)
    x, y = batches[0]
    exception, argument, value_only = ValueError, "y", False

    if fault in _CAPTURE_FAULTS:
        bad = draw(bad_calls((fault,)))
        n = np.shape(bad.x)[0] if hasattr(bad.x, "shape") and np.ndim(bad.x) == 4 else len(y)
        labels = np.zeros(n, dtype=y.dtype)
        return BadCall(fn, (bad.params, bad.x, labels), rates, bad.why, bad.exception,
                       bad.argument)
    if fault == "bad params":
        bad = draw(bad_calls(("missing key", "mixed dtypes", "params not a dict")))
        return BadCall(fn, (bad.params, batches), rates, bad.why, bad.exception, "params")
    if fn == "train_step":
        if fault == "label too large":
            i = draw(st.integers(0, len(y) - 1))
            y = y.copy()
            y[i] = draw(st.sampled_from((k, k + 1, 100)))
            exception, argument, value_only = IndexError, f"y[{i}] = {int(y[i])}", True
        elif fault == "negative label":
            i = draw(st.integers(0, len(y) - 1))
            y = y.astype(np.int64)
            y[i] = -1
            exception, argument, value_only = IndexError, f"y[{i}] = -1", True
        elif fault == "float labels":
            y, exception = y.astype(case.dtype), TypeError
        elif fault == "bool labels":
            y, exception = y > 0, TypeError
        elif fault == "labels as a list":
            y, exception = y.tolist(), TypeError
        elif fault == "labels too short":
            y = y[:-1]
        elif fault == "labels of rank 2":
            y = y[:, None]
        else:
            rates = dict(rates)
            arg = "penalty_weight" if "penalty_weight" in fault else "lr"
            argument = arg
            value = {"negative": -0.5, "nan": float("nan"), "infinite": float("inf"),
                     "string": "0.1", "None": None, "bool": True, "complex": 0.1 + 0j,
                     "1-element": np.array([0.1])}[_fault_word(fault)]
            rates[arg] = value
            if isinstance(value, float) and not isinstance(value, bool):
                value_only = True
            else:
                exception = TypeError
        return BadCall(fn, (params, x, y), rates, fault, exception, argument, value_only)

    argument = "batches"
    if fault == "no batches":
        batches = []
    elif fault == "batches not iterable":
        batches, exception = draw(st.sampled_from((3, None, 0.5))), TypeError
    elif fault == "a batch that is not a pair":
        batches = batches + [x]
    elif fault == "a batch of three":
        batches = [(x, y, y)] + batches
    else:
        i = draw(st.integers(0, len(batches) - 1))
        bx, by = batches[i]
        argument = f"batches[{i}]"
        if fault == "labels out of range in a batch":
            by = by.copy()
            by[0] = k
            exception = IndexError
        elif fault == "float labels in a batch":
            by, exception = by.astype(np.float32), TypeError
        elif fault == "x of the wrong channels in a batch":
            bx = np.concatenate([bx, bx[:, :1]], axis=1)
        elif fault == "x of another dtype in a batch":
            bx = bx.astype("float32" if case.dtype == "float64" else "float64")
            exception = TypeError
        elif fault == "negative lr":
            rates, argument = dict(rates, lr=-lr), "lr"
        batches = list(batches)
        batches[i] = (bx, by)
    return BadCall(fn, (params, batches), rates, fault, exception, argument)


def _fault_word(fault: str) -> str:
    for word in ("negative", "nan", "infinite", "string", "None", "bool", "complex",
                 "1-element"):
        if word in fault:
            return word
    raise AssertionError(fault)


def _call(impl: Impl, bad: BadCall):
    args = tuple(impl.convert(a) for a in bad.args)
    if bad.fn == "train_step":
        params, x, y = args
        return impl.train_step(params, x, y, bad.kwargs["lr"], bad.kwargs["penalty_weight"])
    return getattr(impl.mod, bad.fn)(*args, **bad.kwargs)


def check_rejects(impl: Impl, bad: BadCall) -> None:
    """The class the table in ``refs.checks.training`` gives, with the function and the
    argument named in the message."""
    try:
        _call(impl, bad)
    except bad.exception as e:
        message = str(e)
        named = re.search(rf"(?<!\w){re.escape(bad.argument)}(?!\w)", message)
        assert f"{bad.fn}()" in message and named, (
            f"{impl.label}.{bad.fn} raised {type(e).__name__} for {bad.why}, but the message "
            f"does not name {bad.fn}() and {bad.argument!r}: {message}")
        return
    except Exception as e:
        raise AssertionError(f"{impl.label}.{bad.fn} raised {type(e).__name__} for {bad.why}, "
                             f"expected {bad.exception.__name__}: {e}") from e
    raise AssertionError(f"{impl.label}.{bad.fn} answered a bad input silently ({bad.why})")


def check_poisoned(impl: Impl, bad: BadCall) -> None:
    """Under ``jax.jit`` a bad *value* (a label out of range, a negative or non-finite rate)
    cannot be checked before the program runs: the loss and every new weight are NaN."""
    assert impl.jit and bad.fn == "train_step" and bad.value_only
    new, loss = _call(impl, bad)
    assert np.isnan(impl.to_numpy(loss)), f"{impl.label}: loss {loss} for {bad.why}"
    for name, v in new.items():
        assert np.all(np.isnan(impl.to_numpy(v))), f"{impl.label}: new_params[{name!r}] for {bad.why}"


# ------------------------------------------------------------ the tests


@pytest.mark.parametrize("label", list(IMPLS))
def test_one_step_agrees_with_refs_in_float64(label, require_backend):
    impl = IMPLS[label]
    ready(require_backend, impl)

    @given(case=train_cases())
    def run(case):
        check_step(impl, case)

    run()


@pytest.mark.parametrize("label", EAGER)
def test_a_loop_is_the_step_repeated_and_counts_every_sample(label, require_backend):
    impl = IMPLS[label]
    ready(require_backend, impl)

    @given(case=train_cases())
    def run(case):
        check_loop(impl, case)

    run()


@pytest.mark.parametrize("label", EAGER)
def test_inference_averages_over_samples(label, require_backend):
    impl = IMPLS[label]
    ready(require_backend, impl)

    @given(case=train_cases(penalty_weights=(0.0,)))
    def run(case):
        check_inference(impl, case)

    run()


@st.composite
def cases_with_coords(draw):
    case = draw(train_cases(("float64",), max_batches=1, lr_exps=(-2, 2)))
    shapes = {k: v.shape for k, v in case.params().items()}
    coords = [(name, draw(st.integers(0, math.prod(shapes[name]) - 1)))
              for name in draw(st.lists(st.sampled_from(PARAM_NAMES), min_size=3, max_size=3))]
    return case, coords


def test_refs_gradient_matches_central_differences(require_backend):
    ready(require_backend, REFS)

    @given(drawn=cases_with_coords())
    def run(drawn):
        check_gradient_fd(REFS, drawn)

    run()


def test_train_step_under_jit_matches_eager(require_backend):
    ready(require_backend, JAX_JIT)

    @given(case=train_cases())
    def run(case):
        check_jit_matches_eager(JAX_JIT, case)

    run()


@pytest.mark.parametrize(("fn", "fault"), FAULTS, ids=[f"{fn}-{f}" for fn, f in FAULTS])
def test_bad_input_raises_the_same_class(fn, fault, require_backend):
    impls = [IMPLS[label] for label in EAGER]
    ready(require_backend, *impls)

    @given(bad=bad_calls_training(fn, fault))
    def run(bad):
        for impl in impls:
            check_rejects(impl, bad)

    run()


@pytest.mark.parametrize("fault", _STEP_FAULTS)
def test_bad_input_under_jit_raises_or_poisons(fault, require_backend):
    """Shapes and dtypes are checked at trace time; bad values make every result NaN."""
    ready(require_backend, JAX_JIT)
    if fault in ("lr as a string", "penalty_weight as a string"):
        pytest.skip("a string is no JAX type: jax.jit refuses it before train_step runs")

    @given(bad=bad_calls_training("train_step", fault))
    def run(bad):
        if bad.value_only:
            check_poisoned(JAX_JIT, bad)
        else:
            check_rejects(JAX_JIT, bad)

    run()


def test_an_empty_epoch_is_a_value_error_everywhere(require_backend):
    ready(require_backend, TORCH, JAX)
    params = refs_capture.init_params(0)
    for label in EAGER:
        impl = IMPLS[label]
        with pytest.raises(ValueError, match=r"train_loop\(\): batches is empty"):
            impl.mod.train_loop(impl.convert(params), iter(()), lr=0.1)
        with pytest.raises(ValueError, match=r"inference_loop\(\): batches is empty"):
            impl.mod.inference_loop(impl.convert(params), [])


def test_a_loop_takes_a_generator_and_a_dataloader(require_backend):
    """Iterated once, lists as pairs: what a DataLoader yields."""
    ready(require_backend, TORCH)
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    case = TrainCase(CONFIGS[1], 3, "float64", ((0, 1), (1,)))
    params, batches = case.params(), case.batches()
    want = refs_training.train_loop(params, batches, lr=0.5)
    got = refs_training.train_loop(params, ((x, y) for x, y in batches), lr=0.5)
    assert got[1:] == want[1:]
    x = torch.from_numpy(np.concatenate([b[0] for b in batches]))
    y = torch.from_numpy(np.concatenate([b[1] for b in batches]))
    loader = DataLoader(TensorDataset(x, y), batch_size=2)
    from torch_impl.training import train_loop

    new, loss, accuracy = train_loop(IMPLS["torch_impl"].convert(params), loader, lr=0.5)
    assert_close({k: v.numpy() for k, v in new.items()}, want[0])
    assert loss == pytest.approx(want[1], rel=1e-12) and accuracy == want[2]


def test_refs_backward_at_a_pool_tie_and_a_relu_zero_is_torchs(require_backend):
    """The properties draw clear of both; here the choices themselves: a max-pool tie gives
    the gradient to the first maximum in window order, a ReLU input of exactly 0 passes none."""
    ready(require_backend)
    import torch

    # window 0: three 1s (the first at the top left); window 1: 2s in three places, the
    # first at the top right; window 2: all 0 (what ReLU leaves of a dead window)
    x = np.array([[[[1.0, 1.0, 0.0, 2.0, 0.0, 0.0],
                    [1.0, 0.0, 2.0, 2.0, 0.0, 0.0]]]])
    grad = np.array([[[[3.0, 5.0, 7.0]]]])
    t = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.max_pool2d(t, 2).backward(torch.from_numpy(grad))
    assert_close(refs_training._max_pool_backward(grad, x), t.grad.numpy(), EXACT,
                 path="max-pool gradient at ties")
    z = np.array([-1.0, 0.0, 2.0])
    t = torch.from_numpy(z).requires_grad_(True)
    torch.relu(t).backward(torch.ones(3, dtype=torch.float64))
    assert_close(refs_training._relu_backward(np.ones(3), z), t.grad.numpy(), EXACT,
                 path="ReLU gradient at 0")


# ------------------------------------------------------------ planted wrong versions
# Each plant is refs with one bug put in; each must make one of the properties above fail
# with an AssertionError (a Mismatch is one), on cases drawn without shrinking.


def _runner(check, strategy, max_examples):
    @settings(max_examples=max_examples, phases=[Phase.generate], database=None,
              derandomize=True, deadline=None, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(drawn):
        check(drawn)

    return run


def caught(check, strategy) -> AssertionError:
    """Run ``check`` on drawn cases until it fails; return its AssertionError."""
    with pytest.raises(AssertionError) as info:
        _runner(check, strategy, max(settings.default.max_examples, 40))()
    return info.value


def _plant(**overrides) -> Impl:
    api = dict(train_step=refs_training.train_step, train_loop=refs_training.train_loop,
               inference_loop=refs_training.inference_loop)
    api.update(overrides)
    return Impl("plant", "numpy", SimpleNamespace(**api))


def _deck_train_loop(params, batches, *, lr, penalty_weight=0.0):
    """The slide's bookkeeping: ``running_loss +=`` dedented out of the loop, ``/ size``."""
    size = 0
    for x, y in batches:
        logits = refs_capture.forward(params, x)[0]
        params, loss = refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)
        size += len(y)
    running_loss = float(loss)
    running_corrects = refs_training._correct(logits, y)
    return params, running_loss / size, 100 * running_corrects / size


def _loop_with(loss_mean, *, post_step_accuracy=False):
    def train_loop(params, batches, *, lr, penalty_weight=0.0):
        losses, sizes, correct = [], [], 0
        for x, y in batches:
            before = refs_capture.forward(params, x)[0]
            params, loss = refs_training.train_step(params, x, y, lr=lr,
                                                    penalty_weight=penalty_weight)
            after = refs_capture.forward(params, x)[0]
            correct += refs_training._correct(after if post_step_accuracy else before, y)
            losses.append(float(loss))
            sizes.append(len(y))
        return params, loss_mean(losses, sizes), 100 * correct / sum(sizes)

    return train_loop


def _weighted(losses, sizes):
    return sum(n * v for n, v in zip(sizes, losses)) / sum(sizes)


def _deck_inference_loop(params, batches):
    """The slide's division: a sum of per-batch means over the number of samples."""
    total, correct, size = 0.0, 0, 0
    for x, y in batches:
        logits = refs_capture.forward(params, x)[0]
        total += float(refs_training.cross_entropy(logits, y))
        correct += refs_training._correct(logits, y)
        size += len(y)
    return total / size, 100 * correct / size


def _step_with(transform):
    """``train_step`` whose result passes through ``transform(params, x, y, lr, w, new, loss)``."""

    def train_step(params, x, y, *, lr, penalty_weight=0.0):
        new, loss = refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)
        return transform(params, x, y, lr, penalty_weight, new, loss)

    return train_step


def _wrong_sign(params, x, y, lr, w, new, loss):
    new = refs_training._step(refs_training._arrays(params), x, np.asarray(y), -lr, w)[0]
    return new, loss


def _no_penalty_gradient(params, x, y, lr, w, new, loss):
    return refs_training._step(refs_training._arrays(params), x, np.asarray(y), lr, 0.0)[0], loss


def _loss_after_step(params, x, y, lr, w, new, loss):
    return new, refs_training._step(new, x, np.asarray(y), 0.0, w)[1]


def _promoted(params, x, y, lr, w, new, loss):
    return {k: v.astype(np.float64) for k, v in new.items()}, loss.astype(np.float64)


def _keys_sorted(params, x, y, lr, w, new, loss):
    return dict(sorted(new.items())), loss


def _in_place(params, x, y, lr, w, new, loss):
    for k in params:
        params[k][...] = new[k]
    return params, loss


LOOP_PLANTS = {
    "the deck's loop: only the last batch counts": _deck_train_loop,
    "sum of per-batch means over the samples": _loop_with(lambda v, n: sum(v) / sum(n)),
    "mean of the per-batch means": _loop_with(lambda v, n: sum(v) / len(v)),
    "accuracy from the model after the step": _loop_with(_weighted, post_step_accuracy=True),
}
STEP_PLANTS = {
    "the step goes uphill": _wrong_sign,
    "the penalty in the loss but not in the gradient": _no_penalty_gradient,
    "the loss taken after the step": _loss_after_step,
    "float32 weights come back float64": _promoted,
    "new_params keyed in sorted order": _keys_sorted,
    "the caller's weights overwritten": _in_place,
}


@pytest.mark.parametrize("name", list(LOOP_PLANTS))
def test_planted_loop_bookkeeping_is_caught(name, require_backend):
    ready(require_backend)
    plant = _plant(train_loop=LOOP_PLANTS[name])
    error = caught(lambda case: check_loop(plant, case), train_cases())
    assert "train_loop" in str(error)


@pytest.mark.parametrize("name", list(STEP_PLANTS))
def test_planted_step_is_caught(name, require_backend):
    ready(require_backend)
    plant = _plant(train_step=_step_with(STEP_PLANTS[name]))
    caught(lambda case: check_step(plant, case), train_cases())


def test_planted_inference_division_is_caught(require_backend):
    ready(require_backend)
    plant = _plant(inference_loop=_deck_inference_loop)
    error = caught(lambda case: check_inference(plant, case), train_cases())
    assert "epoch_loss" in str(error)


def _relu_backward_unmasked(grad, input):
    return grad.copy()


def _pool_backward_to_every_element(grad, input):
    n, c, ph, pw = grad.shape
    out = np.zeros_like(input)
    for b, ch, i, j, a, e in np.ndindex(n, c, ph, pw, 2, 2):
        out[b, ch, 2 * i + a, 2 * j + e] = grad[b, ch, i, j]
    return out


def _conv_backward_flipped(grad, input, weight, padding, input_grad=True):
    dinput, dweight, dbias = refs_training_conv_backward(grad, input, weight, padding, input_grad)
    return dinput, dweight[:, :, ::-1, ::-1].copy(), dbias


refs_training_conv_backward = refs_training._conv_backward

BACKWARD_PLANTS = {
    "ReLU passes the gradient of negative inputs": ("_relu_backward", _relu_backward_unmasked),
    "max-pool gives every window element the gradient": ("_max_pool_backward",
                                                         _pool_backward_to_every_element),
    "conv weight gradient with the kernel flipped": ("_conv_backward", _conv_backward_flipped),
}


@pytest.mark.parametrize("name", list(BACKWARD_PLANTS))
def test_planted_backward_is_caught_by_central_differences(name, require_backend, monkeypatch):
    ready(require_backend)
    attr, plant = BACKWARD_PLANTS[name]
    monkeypatch.setattr(refs_training, attr, plant)
    caught(lambda drawn: check_gradient_fd(REFS, drawn), cases_with_coords())


def test_planted_missing_label_check_is_caught(require_backend):
    """jax_impl's compiled step without the checks: a bad label comes back as NaN, silently."""
    ready(require_backend, JAX)
    import crosscheck.jax_impl.training as jt

    def unchecked(params, x, y, *, lr, penalty_weight=0.0):
        params = jt._arrays(params)
        dtype = params["conv1.weight"].dtype
        new, loss, _ = jt._step(params, x, jt._labels(y), np.asarray(lr, dtype),
                                np.asarray(penalty_weight, dtype))
        return new, loss

    plant = Impl("plant", "jax-cpu", SimpleNamespace(train_step=unchecked))
    error = caught(lambda bad: check_rejects(plant, bad),
                   bad_calls_training("train_step", "label too large"))
    assert "silently" in str(error)
