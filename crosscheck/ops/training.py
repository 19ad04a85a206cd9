"""Training and inference: train_step, train_loop and inference_loop in the op table.

The deck's last slides, on the capture topic's small network: one SGD step
(``refs`` writes the backward pass out by hand, ``torch_impl`` uses autograd
and ``torch.optim.SGD``, ``jax_impl`` ``jax.value_and_grad``), and the two
loops around it. The table calls them positionally:

* ``train_step(params, x, y, lr, penalty_weight) -> (new_params, loss)``;
* ``train_loop(params, batches, lr, penalty_weight) -> (new_params, epoch_loss,
  epoch_accuracy)``, ``batches`` a list of ``(x, y)`` pairs;
* ``inference_loop(params, batches) -> (epoch_loss, epoch_accuracy)``;

through ``OpSpec.adapters`` where the API takes ``lr`` and ``penalty_weight``
by keyword. ``lr`` and ``penalty_weight`` are drawn as Python floats or as 0-d
arrays of the weights' dtype (both are allowed); as arrays they are traced
under ``jax.jit``, so one compilation serves every rate.

Each op has a vectorized float64 NumPy oracle (:func:`np_train_step`: the
forward pass of ``crosscheck.ops.capture``, the backward pass as shifted-slice
einsums, one-hot selections for ReLU and max-pool), held against refs on the
small tier and the truth of the large tier.

The rounding bound of one step
------------------------------

Every tolerance below is an a-priori bound, ``|computed - exact|``, summed for
the implementation (in its dtype) and the reference (float64, or the case's
dtype where the reference runs in it), as ``crosscheck.tolerance.rounding_bound``
does. ``u`` is a dtype's unit roundoff, ``gamma(n) = n u / (1 - n u)``
(Higham), and the cases are checked clear of kinks
(:func:`crosscheck.ops.capture.clear_of_kinks`: no ReLU input and no pooling
near-tie within twice the forward bound; ``assume`` discards the others), so
ReLU and max-pool make the same 0/1 selections in every implementation and in
exact arithmetic.

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
   ``K_grad`` roundings (:func:`crosscheck.ops.capture.grad_terms_of`,
   generous), plus 3 for adding the two parts and weighting the penalty. So
   ``|dg| <= M(gamma' (|dz| + e_dz) + e_dz) + gamma' w Mpen``, where ``M(s)``
   is the gradient of ``sum s * A_fc`` over the absolute-value network with
   the same selections and ``Mpen`` that of its ``mean(A_flat**2)``
   (:func:`np_backward` on absolute values in float64: a bound's magnitude,
   not a result under test), ``gamma' = gamma(K_grad + 3)``.
6. The update ``p - lr * g``: ``lr * |dg|`` plus ``gamma(3) (|p| + lr |g|)`` (the
   product, the difference, and ``lr`` rounded to the dtype).

Magnitudes use a float64 evaluation for the exact values (``p``, losses): the
difference is of second order. Accuracy is compared exactly: the cases are
also checked to have every sample's top logit ahead of the runner-up by more
than twice the logit bound, so every implementation and exact arithmetic pick
the same class.

Loops: the shadowing argument
-----------------------------

No a-priori bound follows a rounding error through later steps (that would
need the loss's curvature), so a loop of several steps is checked the way a
backward-error analysis would (property ``train_loop.is_the_step_repeated``):
each step of an implementation's trajectory -- its own ``train_step``, batch by
batch -- is held against a float64 ``refs`` step *from the implementation's
own weights* with the one-step bound, and the loop must return exactly the
weights of that trajectory ("the loop is the step repeated"; exact on these
deterministic CPU backends). The epoch loss then has the bound ``sum_b N_b
tol_b / S`` plus the float64 rounding of that weighted mean, and the accuracy
is exact. The generic ``agrees_with_ref`` of ``train_loop`` draws what has an
a-priori bound against refs itself: one batch at any ``lr``, or several at
``lr = 0`` (every batch then meets the same weights). The loops return Python
floats beside arrays of the weights' dtype, so their reference runs in the
case's dtype (``float64_reference=False``) and their bounds count both sides
in it.

Modes: ``train_step`` runs eagerly and under ``jax.jit`` (there a label, an
``lr`` or a ``penalty_weight`` that is traced cannot be checked before the
program runs: ``jax_impl`` answers NaN, property
``train_step.poisons_bad_values_under_jit``). It does not run under
``torch.compile``: a step builds a module and an optimizer and calls
``backward()`` inside, which Dynamo breaks into fragments; on this CPU the
first call of a shape took 40-65 s and every new ``lr`` 8-13 s more. The torch
kernels a step runs are compiled in ``forward``'s and ``penalty``'s cells. The
loops run eagerly only: they read each batch's loss back as a Python float,
which a tracer does not have (their steps are jitted inside ``jax_impl``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from hypothesis import assume, note
from hypothesis import strategies as st

import refs.capture as refs_capture
import refs.training as refs_training
from crosscheck import modes, sizes
from crosscheck.compare import Comparison, assert_close
from crosscheck.ops.capture import (
    CONFIGS,
    FLOAT_DTYPES,
    LARGE_CONFIGS,
    PARAMS_FAULTS,
    X_FAULTS,
    Config,
    NetCase,
    abs_network,
    clear_of_kinks,
    grad_terms_of,
    layer_bounds,
    layer_terms,
    np_forward,
    selections,
)
from crosscheck.optable import (
    OURS,
    BadCase,
    Case,
    Fault,
    Historic,
    OpSpec,
    Property,
    Target,
    bad_calls,
)
from crosscheck.strategies import BOOLEANS, pick
from crosscheck.tolerance import EXACT, Tolerance, gamma, unit_roundoff
from refs.checks.common import INTEGER_DTYPES
from refs.checks.training import (
    check_batch,
    check_batches,
    check_loop,
    check_samples,
    check_train_step,
)
from refs.network import CONV1_PADDING, PARAM_NAMES
from refs.trees import map_tree

STEP_ARGS = ("params", "x", "y", "lr", "penalty_weight")
LOOP_ARGS = ("params", "batches", "lr", "penalty_weight")
INFERENCE_ARGS = ("params", "batches")

#: roundings charged to one exp or log (a few ulps in NumPy, Sleef and XLA; generous)
TRANSCENDENTAL = 8
#: label dtypes the cases draw from: any integer dtype is allowed (int64 first: the simplest)
LABEL_DTYPES = ("int64",) + tuple(sorted(INTEGER_DTYPES - {"int64"}))
#: penalty weights: 0 (the deck's loop) and two powers of two (exact in float32)
PENALTY_WEIGHTS = (0.0, 0.25, 2.0)
IDENTITY = tuple(range(len(PARAM_NAMES)))

# ------------------------------------------------------------ cases


class TrainCase(NamedTuple):
    """A network, its batches and the step's settings; ``repr`` is a reproducer.

    Weights and images are ``crosscheck.ops.capture``'s (on a ``2**-12`` grid, so
    the float32 ones are the same numbers in float64).
    """

    config: Config  # the architecture (config.batch is not used: labels give the sizes)
    seed: int
    dtype: str
    labels: tuple[tuple[int, ...], ...]  # one tuple of class indices per batch
    label_dtype: str = "int64"
    lr_exp: int | None = -3  # lr = 2**lr_exp: exact in every dtype; None: lr = 0
    penalty_weight: float = 0.0
    rates_as_arrays: bool = False  # lr and penalty_weight as 0-d arrays of the weights' dtype
    key_order: tuple[int, ...] = IDENTITY  # the order of params' keys (PARAM_NAMES indices)

    @property
    def lr(self) -> float:
        return 0.0 if self.lr_exp is None else 2.0**self.lr_exp

    def rates(self) -> tuple:
        if self.rates_as_arrays:
            return np.asarray(self.lr, self.dtype), np.asarray(self.penalty_weight, self.dtype)
        return self.lr, self.penalty_weight

    def net(self, batch: int = 1, index: int = 0) -> NetCase:
        """The capture topic's case for the weights (``index`` 0) and for the images of
        batch ``index`` (its own seed)."""
        return NetCase(self.config._replace(batch=batch), self.seed + 7919 * index, self.dtype,
                       False)

    def params(self) -> dict[str, np.ndarray]:
        params = self.net().params()
        return {PARAM_NAMES[i]: params[PARAM_NAMES[i]] for i in self.key_order}

    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.net(len(y), b + 1).x(), np.array(y, dtype=self.label_dtype))
                for b, y in enumerate(self.labels)]

    @property
    def samples(self) -> int:
        return sum(len(y) for y in self.labels)

    def step_case(self) -> Case:
        x, y = self.batches()[0]
        return Case((self.params(), x, y, *self.rates()), names=STEP_ARGS)

    def loop_case(self) -> Case:
        return Case((self.params(), self.batches(), *self.rates()), names=LOOP_ARGS)

    def inference_case(self) -> Case:
        return Case((self.params(), self.batches()), names=INFERENCE_ARGS)


@st.composite
def train_cases(draw, dtypes=FLOAT_DTYPES, *, max_batches=3, lr_exps=(-6, 3),
                penalty_weights=PENALTY_WEIGHTS):
    config = draw(pick(CONFIGS), label="config")
    batch_sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=max_batches),
                       label="batch sizes")
    labels = tuple(tuple(draw(st.lists(st.integers(0, config.classes - 1), min_size=n,
                                       max_size=n))) for n in batch_sizes)
    order = draw(pick((IDENTITY, IDENTITY[::-1], (4, 0, 2, 5, 1, 3))),
                 label="key order")
    case = TrainCase(config, draw(st.integers(0, 2**16), label="seed"),
                     draw(pick(dtypes), label="dtype"), labels,
                     draw(pick(LABEL_DTYPES), label="label dtype"),
                     draw(st.integers(*lr_exps), label="lr_exp"),
                     draw(pick(penalty_weights), label="penalty_weight"),
                     draw(BOOLEANS, label="rates as arrays"), order)
    note(f"case = {case!r}")
    return case


def step_cases():
    return train_cases(max_batches=1).map(TrainCase.step_case)


def _loop_case(case: TrainCase) -> TrainCase:
    # several batches at lr = 0, or one at any lr: what has an a-priori bound against refs
    return case._replace(lr_exp=None) if len(case.labels) > 1 else case


def loop_cases():
    return train_cases().map(lambda c: _loop_case(c).loop_case())


def inference_cases():
    return train_cases().map(TrainCase.inference_case)


# ------------------------------------------------------------ the vectorized oracles


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_cross_entropy(z, y):
    """``mean_n (logsumexp(z_n) - z_n[y_n])`` in ``z``'s dtype."""
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return np.mean(lse - z[np.arange(z.shape[0]), y])


def np_conv_backward(grad, input, weight, padding, input_grad=True):
    """``refs.training._conv_backward`` as shifted-slice einsums: ``(dinput, dweight, dbias)``."""
    kh, kw = weight.shape[2:]
    h, w = input.shape[2:]
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    xp = np.pad(input, pad) if padding else input
    oh, ow = grad.shape[2:]
    dweight = np.empty_like(weight)
    for a in range(kh):
        for b in range(kw):
            dweight[:, :, a, b] = np.einsum("noij,ncij->oc", grad, xp[:, :, a:a + oh, b:b + ow])
    dbias = grad.sum(axis=(0, 2, 3))
    if not input_grad:
        return None, dweight, dbias
    dxp = np.zeros_like(xp)
    for a in range(kh):
        for b in range(kw):
            dxp[:, :, a:a + oh, b:b + ow] += np.einsum("noij,oc->ncij", grad, weight[:, :, a, b])
    return dxp[:, :, padding:padding + h, padding:padding + w], dweight, dbias


def np_unpool(grad, onehot, shape):
    """Max-pool backward: each window's gradient to its selected element (``onehot``, shaped as
    :func:`crosscheck.ops.capture.windows`); the rows and columns no window reads get 0."""
    n, c, p, q = grad.shape
    out = np.zeros(shape, grad.dtype)
    out[:, :, :2 * p, :2 * q] = (onehot * grad[:, :, :, None, :, None]).reshape(n, c, 2 * p, 2 * q)
    return out


def np_backward(params, x, kept, sel, dz, dflat=0.0) -> dict[str, np.ndarray]:
    """The gradient of ``sum(dz * fc) + sum(dflat * flatten)`` for every weight, for the network
    with the ReLU / max-pool selections ``sel`` (0/1 arrays, :func:`crosscheck.ops.capture.
    selections`) and its outputs ``kept``. On absolute values it is the magnitude of the
    bounds (item 5 of the module docstring)."""
    grads = {}
    grads["fc.weight"] = dz.T @ kept["flatten"]
    grads["fc.bias"] = dz.sum(axis=0)
    d = (dz @ params["fc.weight"] + dflat).reshape(kept["relu2"].shape) * sel["relu2"]
    dpool, grads["conv2.weight"], grads["conv2.bias"] = np_conv_backward(
        d, kept["pool1"], params["conv2.weight"], 0)
    d = np_unpool(dpool, sel["pool1"], kept["relu1"].shape) * sel["relu1"]
    _, grads["conv1.weight"], grads["conv1.bias"] = np_conv_backward(
        d, x, params["conv1.weight"], CONV1_PADDING, input_grad=False)
    return grads


def _np_step(params, x, y, lr, penalty_weight):
    """``(new_params, loss, logits)`` for checked arguments, in the weights' dtype."""
    dtype = params["conv1.weight"].dtype
    weight = dtype.type(penalty_weight)
    logits, kept = np_forward(params, x)
    h = kept["flatten"]
    loss = np_cross_entropy(logits, y) + weight * np.mean(h * h)
    n, k = logits.shape
    dz = (np_softmax(logits) - np.eye(k, dtype=dtype)[y]) / dtype.type(n)
    sel = {name: s.astype(dtype) for name, s in selections(kept).items()}
    grads = np_backward(params, x, kept, sel, dz, weight * (2 * h / dtype.type(h.size)))
    rate = dtype.type(lr)
    new = {name: p - rate * grads[name] for name, p in params.items()}
    return new, np.asarray(loss, dtype), logits


def _np_arrays(params):
    return {name: np.asarray(w) for name, w in params.items()}


def _np_labels(y):
    return np.asarray(y).astype(np.int64)


def np_train_step(params, x, y, lr, penalty_weight=0.0):
    """``refs.train_step``, vectorized NumPy (the arguments checked as refs checks them)."""
    step = check_train_step("train_step", params, x, y, lr, penalty_weight)
    new, loss, _ = _np_step(_np_arrays(params), np.asarray(x), _np_labels(y), step.lr,
                            step.penalty_weight)
    return new, loss


def np_train_loop(params, batches, lr, penalty_weight=0.0):
    """``refs.train_loop``, vectorized NumPy."""
    fn = "train_loop"
    step = check_loop(fn, params, lr, penalty_weight)
    params = _np_arrays(params)
    samples, total, correct = 0, 0.0, 0
    for i, batch in check_batches(fn, batches):
        x, y = check_batch(fn, i, batch, step.arch)
        y = _np_labels(y)
        params, loss, logits = _np_step(params, np.asarray(x), y, step.lr, step.penalty_weight)
        samples += len(y)
        total += float(loss) * len(y)
        correct += int(np.sum(np.argmax(logits, axis=1) == y))
    check_samples(fn, samples)
    return params, total / samples, 100 * correct / samples


def np_inference_loop(params, batches):
    """``refs.inference_loop``, vectorized NumPy."""
    fn = "inference_loop"
    arch = check_loop(fn, params).arch
    params = _np_arrays(params)
    samples, total, correct = 0, 0.0, 0
    for i, batch in check_batches(fn, batches):
        x, y = check_batch(fn, i, batch, arch)
        y = _np_labels(y)
        logits = np_forward(params, np.asarray(x))[0]
        samples += len(y)
        total += float(np_cross_entropy(logits, y)) * len(y)
        correct += int(np.sum(np.argmax(logits, axis=1) == y))
    check_samples(fn, samples)
    return total / samples, 100 * correct / samples


# ------------------------------------------------------------ bounds


@dataclass(frozen=True)
class StepBounds:
    """A float64 evaluation of one step (vectorized) and the bounds of the module docstring."""

    logits: np.ndarray
    loss: float  # the loss in float64 (a magnitude for the epoch's rounding)
    loss_tol: Tolerance
    correct: int  # samples whose top logit is the label, in exact arithmetic too
    param_tols: dict[str, Tolerance] | None = None  # after the step (None: no step)


def step_bounds(params, x, y, *, lr=None, penalty_weight=0.0, dtypes=("float64",),
                clear=assume) -> StepBounds:
    """The bounds of one step from ``params`` on ``(x, y)`` for results in each of ``dtypes``
    and a float64 reference, summed; ``lr=None``: the forward pass and the loss only.

    Calls ``clear(condition)`` (default ``assume``) twice: the case must be clear of kinks
    and of argmax near-ties.
    """
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    logits, kept = np_forward(params, x)
    names = tuple(np.dtype(d).name for d in dtypes)
    sides = names + ("float64",)
    forward = layer_bounds(params, x, names[0])
    for d in names[1:]:
        other = layer_bounds(params, x, d)
        forward = {k: Tolerance(0.0, np.maximum(forward[k].atol, other[k].atol)) for k in forward}
    clear(clear_of_kinks(kept, forward))
    terms = layer_terms(params)
    absolute = {k: np.abs(v) for k, v in params.items()}
    mags = abs_network(absolute, np.abs(x))
    n, k = logits.shape
    z_err = {d: gamma(terms["fc"], d) * mags["fc"] + terms["fc"] * float(np.finfo(d).tiny)
             for d in sides}
    if k > 1:
        top2 = np.sort(logits, axis=1)[:, -2:]
        margin = sum(z_err[d] for d in sides).max(axis=1)
        clear(bool(np.all(top2[:, 1] - top2[:, 0] > 2 * margin)))

    y = np.asarray(y).astype(np.int64)
    h = kept["flatten"]
    top = logits.max(axis=1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    per_sample = lse - logits[np.arange(n), y]
    p = np.exp(logits - lse[:, None])
    pen = float(np.mean(h**2))
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
    loss_tol = Tolerance(0.0, float(loss_err), f"cross-entropy bound in {'+'.join(sides)}")
    loss = float(np.mean(per_sample) + penalty_weight * pen)
    correct = int(np.sum(np.argmax(logits, axis=1) == y))
    if lr is None:
        return StepBounds(logits, loss, loss_tol, correct)

    dz = (p - np.eye(k)[y]) / n
    p_up = p * (1 + rel["float64"][:, None]) + 4 * unit_roundoff("float64")
    dz_err = {d: (p_up * rel[d][:, None] + 4 * unit_roundoff(d)) / n for d in sides}
    dz_up = np.abs(dz) + dz_err["float64"]
    k_grad = grad_terms_of(params, x) + 3
    seed_err = sum(gamma(k_grad, d) * (dz_up + dz_err[d]) + dz_err[d] for d in sides)
    pen_gamma = sum(gamma(k_grad, d) for d in sides) * penalty_weight
    sel = selections(kept)
    g_mag, g_err = grad_magnitudes(absolute, np.abs(x), sel, dz_up, penalty_weight, seed_err,
                                   pen_gamma)
    step = sum(gamma(3, d) for d in sides)
    param_tols = {
        name: Tolerance(0.0, lr * g_err[name] + step * (np.abs(params[name])
                                                        + lr * (g_mag[name] + g_err[name])),
                        f"one-step bound in {'+'.join(sides)}")
        for name in params}
    return StepBounds(logits, loss, loss_tol, correct, param_tols)


def grad_magnitudes(absolute, abs_x, sel, seed, penalty_weight, seed_err, penalty_err):
    """``M(seed) + w Mpen`` and ``M(seed_err) + penalty_err Mpen`` (module docstring, item 5):
    gradients of ``sum s * A_fc + c * mean(A_flat**2)`` over the absolute-value network with
    the selections ``sel``, in float64."""
    kept = abs_network(absolute, abs_x, sel)
    flat = kept["flatten"]
    square = 2 * flat / flat.size  # d mean(A_flat**2) / d A_flat
    return (np_backward(absolute, abs_x, kept, sel, seed, penalty_weight * square),
            np_backward(absolute, abs_x, kept, sel, seed_err, penalty_err * square))


@dataclass(frozen=True)
class Expected:
    """refs in float64 for one step or one forward pass, with the bounds of the module docstring."""

    logits: np.ndarray
    loss: np.ndarray  # 0-d float64, the penalty included when asked
    loss_tol: Tolerance
    correct: int
    params: dict[str, np.ndarray] | None = None  # after the step
    param_tols: dict[str, Tolerance] | None = None


def expected_step(params, x, y, *, lr=None, penalty_weight=0.0, dtypes=("float64",),
                  clear=assume) -> Expected:
    """``refs.train_step`` (or, with ``lr=None``, ``refs``' loss) in float64 from ``params``
    and ``x`` (as float64), with :func:`step_bounds`."""
    bounds = step_bounds(params, x, y, lr=lr, penalty_weight=penalty_weight, dtypes=dtypes,
                         clear=clear)
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    if lr is None:
        loss = np.asarray(refs_training.cross_entropy(refs_capture.forward(params, x)[0], y)
                          + penalty_weight * refs_capture.penalty(params, x))
        return Expected(bounds.logits, loss, bounds.loss_tol, bounds.correct)
    new, loss = refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)
    return Expected(bounds.logits, np.asarray(loss), bounds.loss_tol, bounds.correct, new,
                    bounds.param_tols)


def epoch_rounding(total: float, batches: int, samples: int) -> float:
    """The float64 rounding of a sample-weighted mean over ``batches`` batch losses (a product,
    a sum and a division per batch), ``total`` the sum of ``N_b * loss_b``."""
    return gamma(2 * batches + 2, np.float64) * abs(total) / samples


def _rate(value) -> float:
    return float(np.asarray(value))


def _step_tolerance(case: Case, expected):
    x = case["x"]
    bounds = step_bounds(case["params"], x, case["y"], lr=_rate(case["lr"]),
                         penalty_weight=_rate(case["penalty_weight"]), dtypes=(x.dtype,))
    return bounds.param_tols, bounds.loss_tol


def _epoch_tolerance(params, batches, lr, penalty_weight):
    """``(param_tols, epoch-loss tolerance)`` against refs in the weights' dtype; ``lr`` is 0
    or there is one batch (``_loop_case``), so every batch meets ``params``."""
    dtype = np.asarray(params["conv1.weight"]).dtype
    total, err, samples, tols = 0.0, 0.0, 0, None
    for x, y in batches:
        # the implementation and refs, both in the weights' dtype
        bounds = step_bounds(params, x, y, lr=lr, penalty_weight=penalty_weight,
                             dtypes=(dtype, dtype))
        total += len(y) * bounds.loss
        err += len(y) * bounds.loss_tol.atol
        samples += len(y)
        tols = bounds.param_tols
    # both sides round the weighted mean in float64
    atol = err / samples + 2 * epoch_rounding(total, len(batches), samples)
    return tols, Tolerance(0.0, atol, "the batches' loss bounds, per sample")


def _loop_tolerance(case: Case, expected):
    lr = _rate(case["lr"])
    assert lr == 0 or len(case["batches"]) == 1, "a loop case of several batches has lr = 0"
    tols, loss_tol = _epoch_tolerance(case["params"], case["batches"], lr,
                                      _rate(case["penalty_weight"]))
    return tols, loss_tol, EXACT


def _inference_tolerance(case: Case, expected):
    _, loss_tol = _epoch_tolerance(case["params"], case["batches"], None, 0.0)
    return loss_tol, EXACT


# ------------------------------------------------------------ the large tier
# Batch x channels = 64 and a side of 64 (capture's two large architectures): 2**17
# elements per batch of images. float64 only: at this size float32 leaves some ReLU input
# within its rounding bound of 0 in almost every case, where the implementations may take
# another subgradient (a kink: no rounding bound holds); in float64 the margin is 2**29
# times narrower and a case clear of kinks is found at once.

LARGE_DTYPE = "float64"


def _large_batch(rng, config: Config, batch: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (batch, config.in_channels) + config.size
    return (sizes.values(rng, shape, LARGE_DTYPE),
            rng.integers(0, config.classes, size=batch).astype(np.int64))


def _large_params(rng, config: Config) -> dict[str, np.ndarray]:
    return refs_capture.init_params(int(rng.integers(2**16)), in_channels=config.in_channels,
                                    channels=config.channels, num_classes=config.classes,
                                    image_size=config.size, dtype=LARGE_DTYPE)


def _clear(params, batches, lr) -> bool:
    """Every batch clear of kinks and argmax near-ties (rejected cases are redrawn)."""
    flags = []
    for x, y in batches:
        step_bounds(params, x, y, lr=None, dtypes=(LARGE_DTYPE,), clear=flags.append)
    return all(flags)


def _large_net(rng, batch_counts) -> tuple[dict, list]:
    config = LARGE_CONFIGS[int(rng.integers(len(LARGE_CONFIGS)))]
    for _ in range(8):
        params = _large_params(rng, config)
        batches = [_large_batch(rng, config, n) for n in batch_counts(config)]
        if _clear(params, batches, None):
            break
    return params, batches


def _large_rates(rng) -> tuple[float, float]:
    return 2.0 ** int(rng.integers(-4, 2)), float(rng.choice(PENALTY_WEIGHTS))


def large_train_step(rng: np.random.Generator) -> tuple:
    params, [(x, y)] = _large_net(rng, lambda c: [c.batch])
    return (params, x, y, *_large_rates(rng))


def large_train_loop(rng: np.random.Generator) -> tuple:
    several = bool(rng.integers(2))
    params, batches = _large_net(rng, lambda c: [c.batch, c.batch - 3] if several else [c.batch])
    lr, weight = _large_rates(rng)
    return params, batches, 0.0 if several else lr, weight


def large_inference_loop(rng: np.random.Generator) -> tuple:
    return _large_net(rng, lambda c: [c.batch, c.batch - 3])


# ------------------------------------------------------------ bad input
# Each fault breaks one thing of a valid call and says what API.md promises for it. A value
# that is traced under jax.jit (a label, a rate given as an array) is `needs_values`.


def _classes(call) -> int:
    return int(np.shape(call["params"]["fc.weight"])[0])


def _poke_label(value_of):
    def apply(draw, call):
        y = call["y"]
        value = value_of(draw, _classes(call))
        y = (y.astype(np.int64) if value < 0 else y).copy()
        i = draw(st.integers(0, len(y) - 1))
        y[i] = value
        return {**call, "y": y}, "y", f"y[{i}] = {value}"

    return apply


def _rate_fault(arg: str, why: str, value_of, exception, *, array=False):
    """``arg`` replaced by ``value_of(call)``; a ValueError quotes the value; ``array``: as a 0-d
    array of the weights' dtype (traced under jax.jit)."""

    def apply(draw, call):
        value = value_of(call)
        if array:
            value = np.asarray(value, np.asarray(call["params"]["conv1.weight"]).dtype)
        broken = {**call, arg: value}
        return (broken, arg, f"{arg} = {float(value)!r}") if exception is ValueError else broken

    return Fault(why, arg, exception, apply, needs_values=array)


LABEL_FAULTS = (
    Fault("label too large", "y", IndexError,
          _poke_label(lambda draw, k: draw(pick((k, k + 1, 100)))), needs_values=True),
    Fault("negative label", "y", IndexError,
          _poke_label(lambda draw, k: draw(pick((-1, -k - 1)))), needs_values=True),
    Fault("float labels", "y", TypeError,
          lambda draw, call: {**call, "y": call["y"].astype(np.float32)}),
    Fault("bool labels", "y", TypeError, lambda draw, call: {**call, "y": call["y"] > 0}),
    Fault("labels as a list", "y", TypeError,
          lambda draw, call: {**call, "y": call["y"].tolist()}),
    Fault("labels too short", "y", ValueError, lambda draw, call: {**call, "y": call["y"][:-1]}),
    Fault("labels of rank 2", "y", ValueError,
          lambda draw, call: {**call, "y": call["y"][:, None]}),
)


def _bad_rates(arg: str) -> tuple[Fault, ...]:
    values = {"negative": lambda call: -0.5, "nan": lambda call: float("nan"),
              "infinite": lambda call: float("inf")}
    faults = []
    for word, value_of in values.items():
        faults.append(_rate_fault(arg, f"{word} {arg}", value_of, ValueError))
        faults.append(_rate_fault(arg, f"{word} {arg} as a 0-d array", value_of, ValueError,
                                  array=True))
    for why, value in (("a string", "0.1"), ("None", None), ("a bool", True),
                       ("complex", 0.1 + 0j), ("a 1-element array", np.array([0.1]))):
        faults.append(_rate_fault(arg, f"{arg} as {why}", lambda call, v=value: v, TypeError))
    return tuple(faults)


RATE_FAULTS = _bad_rates("lr") + _bad_rates("penalty_weight")
STEP_FAULTS = PARAMS_FAULTS + X_FAULTS + LABEL_FAULTS + RATE_FAULTS
#: the faults jax.jit cannot see before the program runs: its values are traced
TRACED_FAULTS = tuple(f for f in STEP_FAULTS if f.needs_values)


def _in_batch(why: str, exception, change):
    """A fault of one batch ``i``: ``change(draw, x, y, call) -> (x, y)`` or ``(x, y, quoted)``;
    the message must name ``batches[i]``."""

    def apply(draw, call):
        batches = list(call["batches"])
        i = draw(st.integers(0, len(batches) - 1))
        changed = change(draw, *batches[i], call)
        batches[i] = changed[:2]
        quoted = changed[2] if len(changed) > 2 else None
        return {**call, "batches": batches}, f"batches[{i}]", quoted

    return Fault(why, "batches", exception, apply)


def _label_out_of_range(draw, x, y, call):
    y = y.copy()
    y[0] = _classes(call)
    return x, y, f"y[0] = {_classes(call)}"


def _other_dtype(x):
    return x.astype(np.float32 if x.dtype == np.float64 else np.float64)


BATCH_FAULTS = (
    Fault("no batches", "batches", ValueError, lambda draw, call: {**call, "batches": []}),
    Fault("batches not iterable", "batches", TypeError,
          lambda draw, call: {**call, "batches": draw(pick((3, None, 0.5)))}),
    Fault("a batch that is not a pair", "batches", ValueError,
          lambda draw, call: ({**call, "batches": [*call["batches"], call["batches"][0][0]]},
                              f"batches[{len(call['batches'])}]")),
    Fault("a batch of three", "batches", ValueError,
          lambda draw, call: ({**call, "batches": [(*call["batches"][0], call["batches"][0][1]),
                                                   *call["batches"][1:]]}, "batches[0]")),
    _in_batch("a label out of range in a batch", IndexError, _label_out_of_range),
    _in_batch("float labels in a batch", TypeError,
              lambda draw, x, y, call: (x, y.astype(np.float32))),
    _in_batch("labels too short in a batch", ValueError, lambda draw, x, y, call: (x, y[:-1])),
    _in_batch("x with the wrong channels in a batch", ValueError,
              lambda draw, x, y, call: (np.concatenate([x, x[:, :1]], axis=1), y)),
    _in_batch("x of another dtype in a batch", TypeError,
              lambda draw, x, y, call: (_other_dtype(x), y)),
)
#: the rates of a loop are Python numbers (a loop is never traced)
LOOP_RATE_FAULTS = tuple(f for f in RATE_FAULTS if not f.needs_values)


def bad_step_cases():
    return bad_calls(STEP_ARGS, step_cases, STEP_FAULTS)


def bad_loop_cases():
    return bad_calls(LOOP_ARGS, loop_cases, PARAMS_FAULTS + BATCH_FAULTS + LOOP_RATE_FAULTS)


def bad_inference_cases():
    return bad_calls(INFERENCE_ARGS, inference_cases, PARAMS_FAULTS + BATCH_FAULTS)


# ------------------------------------------------------------ op table


@functools.cache
def _step_of(module):
    # one function per module, so that modes.wrap caches one compilation of it
    def train_step(params, x, y, lr, penalty_weight):
        return module.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)

    return train_step


@functools.cache
def _loop_of(module):
    def train_loop(params, batches, lr, penalty_weight):
        return module.train_loop(params, batches, lr=lr, penalty_weight=penalty_weight)

    return train_loop


TRAIN_STEP = OpSpec(
    name="train_step",
    topic="training",
    arg_names=STEP_ARGS,
    cases=step_cases,
    bad_cases=bad_step_cases,
    tolerance_of=_step_tolerance,
    adapters={impl: _step_of for impl in OURS},
    # no torch.compile (module docstring: 40-65 s per shape on CPU, Dynamo breaks a step
    # into fragments around the module, the optimizer and backward())
    modes=("eager", "jit"),
    oracle=np_train_step,
    large=large_train_step,
)
TRAIN_LOOP = OpSpec(
    name="train_loop",
    topic="training",
    arg_names=LOOP_ARGS,
    cases=loop_cases,
    bad_cases=bad_loop_cases,
    tolerance_of=_loop_tolerance,
    # epoch_loss and epoch_accuracy are Python floats: refs runs in the case's dtype
    float64_reference=False,
    adapters={impl: _loop_of for impl in OURS},
    modes=("eager",),  # a Python loop that reads each loss back as a float: nothing to trace
    oracle=np_train_loop,
    large=large_train_loop,
)
INFERENCE_LOOP = OpSpec(
    name="inference_loop",
    topic="training",
    arg_names=INFERENCE_ARGS,
    cases=inference_cases,
    bad_cases=bad_inference_cases,
    tolerance_of=_inference_tolerance,
    float64_reference=False,
    modes=("eager",),
    oracle=np_inference_loop,
    large=large_inference_loop,
)
OPS = (TRAIN_STEP, TRAIN_LOOP, INFERENCE_LOOP)

# --------------------------------------------------------------- properties


def _is_oracle(target: Target) -> bool:
    return target.native is not None and target.native.fn is target.op.oracle


def _numpy(target: Target) -> bool:
    return target.framework == "numpy"


def _jax(target: Target) -> bool:
    return target.framework == "jax"


def _on(backend, value):
    """``value`` with every NumPy array (also in dicts, lists, tuples) on ``backend``."""
    backend.load()
    return map_tree(value, backend.asarray, np.ndarray)


def _snapshot(backend, value):
    """A host copy of every array in ``value`` (torch's ``.numpy()`` shares memory)."""
    return map_tree(backend.to_host(value), lambda a: np.array(a, copy=True), np.ndarray)


def _key_order(target: Target, new, params) -> None:
    # a jitted function returns its dict with sorted keys (documented in jax_impl.training)
    want = sorted(params) if target.mode == "jit" else list(params)
    assert isinstance(new, dict), f"{target.name}: new_params is a {type(new).__name__}"
    assert list(new) == want, f"{target.name}: new_params has keys {list(new)}, expected {want}"


def _check_arguments_untouched(target: Target, case: Case) -> Comparison:
    """The call changes none of its arguments (every weight and batch as given), and new
    weights come keyed in ``params``' order (sorted under jax.jit)."""
    args = target.convert(case)
    before = _snapshot(target.backend, args)
    result = target.fn(*args)
    if target.op is not INFERENCE_LOOP:
        _key_order(target, result[0], case["params"])
    return assert_close(_snapshot(target.backend, args), before, EXACT,
                        path=f"{target.name}: the arguments after the call")


def _step_fn(target: Target):
    """The target's own ``train_step``: the oracle's beside the oracle, a plant's where its
    ``api`` has one, else :meth:`Target.sibling`'s."""
    if _is_oracle(target):
        return np_train_step
    api = target.native.api if target.native is not None else None
    if api is not None and hasattr(api, "train_step"):
        return modes.wrap(api.train_step, target.mode)
    return target.sibling(TRAIN_STEP).fn


def _check_loop_is_the_step_repeated(target: Target, case: Case) -> Comparison:
    """The shadowing argument (module docstring): each step of the target's own trajectory
    within the one-step bound of a float64 refs step from the same weights; the loop's
    weights exactly the trajectory's end; the epoch loss the sample-weighted mean of the
    steps' losses, the accuracy every batch's, each counted before its update."""
    params, batches, lr, weight = case.args
    lr, weight = _rate(lr), _rate(weight)
    dtype = params["conv1.weight"].dtype
    step, backend = _step_fn(target), target.backend
    trajectory, total, err, correct, samples = [params], 0.0, 0.0, 0, 0
    result = Comparison()
    for b, (x, y) in enumerate(batches):
        want = expected_step(trajectory[-1], x, y, lr=lr, penalty_weight=weight, dtypes=(dtype,))
        new, loss = backend.to_host(step(*_on(backend, (trajectory[-1], x, y, *case.args[2:]))))
        path = f"{target.name}: train_step on batches[{b}] from the loop's weights"
        result = result.merge(assert_close(loss, want.loss, want.loss_tol, dtype=dtype,
                                           path=f"{path}: loss"))
        result = result.merge(assert_close(new, want.params, want.param_tols, dtype=dtype,
                                           path=f"{path}: new_params"))
        trajectory.append({k: new[k] for k in params})
        total += len(y) * float(want.loss)
        err += len(y) * want.loss_tol.atol
        correct += want.correct
        samples += len(y)
    got, epoch_loss, accuracy = target.call(case)
    result = result.merge(assert_close(got, trajectory[-1], EXACT, path=(
        f"{target.name}: train_loop's new_params vs its train_step batch by batch")))
    return result.merge(_check_epoch(target, epoch_loss, accuracy, total, err, correct,
                                     samples, len(batches)))


def _check_epoch(target, epoch_loss, accuracy, total, err, correct, samples, count):
    for name, value in (("epoch_loss", epoch_loss), ("epoch_accuracy", accuracy)):
        assert type(value) is float, f"{target.name}: {name} is a {type(value).__name__}"
    tol = Tolerance(0.0, err / samples + 2 * epoch_rounding(total, count, samples),
                    "the steps' loss bounds, per sample")
    result = assert_close(np.float64(epoch_loss), np.float64(total / samples), tol,
                          path=f"{target.name}: epoch_loss (the mean over {samples} samples)")
    assert accuracy == 100 * correct / samples, (
        f"{target.name}: epoch_accuracy = {accuracy!r}, expected 100 * {correct} / {samples} = "
        f"{100 * correct / samples!r} (argmax before each update, every batch counted)")
    return result


def _streamed(target: Target, batches):
    """The batches as a loader hands them out: a ``DataLoader`` of ``[x, y]`` lists (torch), a
    generator of lists (the others); either iterates once."""
    if target.framework != "torch":
        return ([x, y] for x, y in batches)
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))
    starts = np.cumsum([0] + [len(y) for _, y in batches])
    sampler = [list(range(a, b)) for a, b in zip(starts[:-1], starts[1:])]
    return DataLoader(dataset, batch_sampler=sampler)


def _check_takes_a_loader(target: Target, case: Case) -> Comparison:
    """The batches given as a loader gives them -- lists, iterable once (torch: a DataLoader)
    -- the loop agrees with refs as for a list of tuples."""
    op = target.op
    args = target.convert(case)
    batches = _streamed(target, args[1])
    try:
        got = target.fn(args[0], batches, *args[2:])
    except Exception as e:
        raise AssertionError(f"{target.name} raised {type(e).__name__} for batches streamed as "
                             f"{type(batches).__name__} of [x, y] lists: {e}") from e
    expected = op.expected(case)
    return assert_close(target.backend.to_host(got), expected, op.tolerance(case, expected),
                        path=f"{target.name} on streamed batches")


def _check_poisoned(target: Target, bad: BadCase) -> Comparison:
    """Under jax.jit a traced bad value (a label out of range, a bad rate as an array) cannot
    be checked before the program runs: the loss and every new weight are NaN (or the call
    raises the promised class, which is better still)."""
    try:
        new, loss = target.call(bad.case)
    except bad.exception:
        return Comparison()
    assert np.isnan(loss), f"{target.name}: loss {loss} for {bad.why}, expected NaN"
    for name, value in new.items():
        assert np.all(np.isnan(value)), (
            f"{target.name}: new_params[{name!r}] holds numbers for {bad.why}, expected NaN")
    return Comparison()


#: central-difference step: a power of two (weights on a 2**-12 grid with |w| < 1 move exactly)
STEP = 2.0**-13


@st.composite
def _central_difference_cases(draw):
    case = draw(train_cases(("float64",), max_batches=1, lr_exps=(-2, 2)))
    shapes = {k: v.shape for k, v in case.params().items()}
    coords = tuple((name, draw(st.integers(0, math.prod(shapes[name]) - 1), label="element"))
                   for name in draw(st.lists(pick(PARAM_NAMES), min_size=3,
                                             max_size=3), label="weights"))
    return case.step_case(), coords


def _check_central_differences(target: Target, drawn) -> Comparison:
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
    target's one-step bound and the recovery ``(p - new) / lr`` (``u (|new| / lr + |g|)``).
    ``v`` itself is read from the logits at ``w +- STEP`` (affine: exact up to their forward
    bound).
    """
    case, coords = drawn
    params, x, y, lr, weight = case.args
    lr, weight = _rate(lr), _rate(weight)
    want = step_bounds(params, x, y, lr=lr, penalty_weight=weight)  # assumes clear of kinks
    new = target.call(case)[0]
    sel = selections(refs_capture.forward(params, x)[1])
    u = unit_roundoff(np.float64)
    result = Comparison()
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
            at = step_bounds(moved, x, y, penalty_weight=weight)  # assumes clear of kinks
            value = float(refs_training.cross_entropy(logits, y)
                          + weight * refs_capture.penalty(moved, x))
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
                                      f"+ the step's bound")
        result = result.merge(assert_close(
            np.float64(grad), np.float64(fd), tol,
            path=f"{target.name} grad[{name!r}][{i}] = (p - new) / lr vs central difference"))
    return result


def _loop_shadow_cases():
    return train_cases().map(TrainCase.loop_case)


def _traced_bad_cases():
    return bad_calls(STEP_ARGS, step_cases, TRACED_FAULTS)


def _not_refs(target: Target) -> bool:
    # refs' own loop is its own step repeated by construction; the oracle and the others are not
    return not (target.native is None and target.impl == "refs")


PROPERTIES = (
    # cheap checks first (the planted-bug runner stops at the first property that catches)
    Property("train_step", "leaves_its_arguments_alone",
             "the caller's weights, images and labels are unchanged after a step, and the new "
             "weights are keyed in params' order (sorted under jax.jit)",
             step_cases, _check_arguments_untouched, layouts=True),
    Property("train_step", "poisons_bad_values_under_jit",
             "under jax.jit a traced bad label or rate makes the loss and every weight NaN "
             "(values cannot be checked before the program runs)",
             _traced_bad_cases, _check_poisoned, _jax, modes=("jit",)),
    Property("train_step", "grad_matches_central_differences",
             "the gradient recovered as (params - new) / lr matches central differences of "
             "the refs loss in float64 (truncation and rounding bounded)",
             _central_difference_cases, _check_central_differences, _numpy, max_examples=25),
    Property("train_loop", "leaves_its_arguments_alone",
             "the caller's weights and batches are unchanged after an epoch, and the new "
             "weights are keyed in params' order",
             loop_cases, _check_arguments_untouched),
    Property("train_loop", "takes_a_loader",
             "batches streamed as [x, y] lists, iterable once (torch: a DataLoader), give the "
             "same epoch as a list of tuples",
             loop_cases, _check_takes_a_loader),
    Property("train_loop", "is_the_step_repeated",
             "each step of the loop's trajectory within the one-step bound of a float64 refs "
             "step from the same weights; the loop returns exactly that trajectory's end and "
             "the sample-weighted epoch loss and accuracy (the shadowing argument)",
             _loop_shadow_cases, _check_loop_is_the_step_repeated, _not_refs),
    Property("inference_loop", "leaves_its_arguments_alone",
             "the caller's weights and batches are unchanged after an evaluation",
             inference_cases, _check_arguments_untouched),
    Property("inference_loop", "takes_a_loader",
             "batches streamed as [x, y] lists, iterable once (torch: a DataLoader), give the "
             "same evaluation as a list of tuples",
             inference_cases, _check_takes_a_loader),
)

# ------------------------------------------------------------ historic cases
# Each reproduces a published bug or surprise of a training loop; the expected values come
# from refs, never from the framework that had the bug. The cases are clear of kinks and
# argmax near-ties (tests/test_training.py checks it), so the bounds hold.

#: five samples in batches of 2, 2 and 1 (the deck's setting), float64
HISTORIC_LOOP = TrainCase(CONFIGS[1], 11, "float64", ((1, 0), (1, 1), (0,)), lr_exp=-1)
#: four samples of one label, float32, for labels stored with a stride of 0
HISTORIC_STEP = TrainCase(CONFIGS[2], 5, "float32", ((2, 2, 2),), lr_exp=-2)


def _historic_expanded_labels():
    # F.cross_entropy on CUDA tripped its `t >= 0 && t < n_classes` assert for valid labels
    # stored as zeros(()).expand(n) (pytorch/pytorch#71550): labels of stride 0
    from crosscheck.layouts import Layout

    case = HISTORIC_STEP.step_case()
    return Case(case.args, (None, None, Layout("expanded", dim=0)), STEP_ARGS)


def _historic_label_out_of_range():
    # a label >= K: nn.CrossEntropyLoss ends in a device-side assert on CUDA, which kills the
    # process (pytorch/pytorch#18014); ours raise IndexError before any kernel runs
    params, x, y, lr, weight = HISTORIC_STEP.step_case().args
    bad = y.copy()
    bad[1] = 4
    case = Case((params, x, bad, lr, weight), names=STEP_ARGS)
    return BadCase(case, LABEL_FAULTS[0], "y", "y[1] = 4")


def _historic_negative_label():
    # nll_loss with negative targets raised IndexError on CPU but ran without an error on
    # CUDA (pytorch/pytorch#66872); ours raise IndexError everywhere
    params, x, y, lr, weight = HISTORIC_STEP.step_case().args
    bad = y.astype(np.int64)
    bad[0] = -1
    case = Case((params, x, bad, lr, weight), names=STEP_ARGS)
    return BadCase(case, LABEL_FAULTS[1], "y", "y[0] = -1")


HISTORIC = (
    Historic("train_step", "agrees_with_ref", "labels of stride 0",
             "https://github.com/pytorch/pytorch/issues/71550",
             "F.cross_entropy tripped its class-range assert on CUDA for valid labels given as "
             "an expanded tensor; an expanded y must train like a contiguous one",
             _historic_expanded_labels),
    Historic("train_step", "rejects_bad_input", "a label out of range",
             "https://github.com/pytorch/pytorch/issues/18014",
             "nn.CrossEntropyLoss with a label >= K ends in a CUDA device-side assert that "
             "kills the process; ours must raise IndexError first",
             _historic_label_out_of_range),
    Historic("train_step", "rejects_bad_input", "a negative label",
             "https://github.com/pytorch/pytorch/issues/66872",
             "nll_loss with negative targets raised IndexError on CPU and ran silently on CUDA; "
             "ours must raise IndexError on every device", _historic_negative_label),
    Historic("train_loop", "is_the_step_repeated", "the epoch loss of the last batch",
             "https://github.com/nicknochnack/PyTorchin15/issues/4",
             "a tutorial printed the last batch's loss as the epoch's (the loss variable read "
             "after the batch loop), as the deck's dedented running_loss does",
             HISTORIC_LOOP.loop_case),
    Historic("train_loop", "is_the_step_repeated", "zero_grad between minibatches",
             "https://github.com/huggingface/transformers/issues/340",
             "an example script never zeroed the gradients between minibatches, so each step "
             "used the sum of every gradient so far; a loop must be its step repeated",
             HISTORIC_LOOP.loop_case),
    Historic("inference_loop", "agrees_with_ref", "a sum of batch means over the samples",
             "https://github.com/pytorch/tutorials/issues/179",
             "the transfer-learning tutorial added per-batch mean losses and divided by the "
             "dataset size, as the deck's inference_loop does; the epoch loss is the mean over "
             "samples", HISTORIC_LOOP.inference_case),
)
