"""Hook-like capture: forward, penalty, capture_outputs, init_params in the op table.

The topic's small network (:mod:`refs.network`) runs as loops in ``refs``, as a
``torch.nn.Module`` with forward hooks in ``torch_impl`` and as a pure JAX
function in ``jax_impl``. Its ops:

* ``forward(params, x) -> (out, intermediates)`` and ``penalty(params, x,
  layer)``, the course's regularizer (the mean square of ``layer``'s input), in
  all three implementations;
* ``capture_outputs(params, x, names, inplace)``, torch only: a ``SmallNet`` of
  ``params`` (``nn.ReLU(inplace=inplace)``) run on ``x`` inside
  ``torch_impl.capture_outputs(net, names)``; the truth is refs' forward pass,
  one record per name (``""`` is the whole network);
* ``init_params(seed, in_channels, channels, num_classes, image_size, dtype)``:
  the same numbers everywhere (``refs.capture.init_params``'s keyword arguments,
  passed by name).

Tolerances are a-priori rounding bounds, not guesses (:mod:`crosscheck.tolerance`):

* Forward values. A conv or linear layer with ``n`` terms per output (the bias
  counted) adds at most ``gamma(n) * (|W| @ |h| + |b|)`` to the error it
  receives through ``|W|``; ReLU and max-pool are 1-Lipschitz and exact, so they
  pass an error on without adding to it (``|max(a) - max(b)| <= max |a - b|``).
  By induction a layer's output is off by at most ``gamma(K) * A``, ``K`` the
  summed term counts of the linear layers up to it and ``A`` the same network
  run on absolute values (:func:`abs_network`: ReLU as the identity, max-pool
  as the max of the absolute values). Against a float64 reference,
  ``rounding_bound`` adds float64's own ``gamma(K)``.
* The penalty ``mean(h**2)``: squaring doubles ``h``'s relative error and the
  mean adds ``M + 1`` roundings: ``gamma(2 K + M + 1) * mean(A**2)``.
* Gradients. Away from kinks (no ReLU input near 0, no near-tie in a pooling
  window -- checked, with twice the forward bound as the margin), ReLU and
  max-pool are fixed 0/1 selections and every gradient is a polynomial in the
  weights and ``x``. Back-propagation evaluates each of its monomials with at
  most ``K_grad`` roundings (:func:`grad_terms_of`: the forward pass, then the
  backward sums), so the error is at most ``gamma(K_grad)`` times the same
  gradient of the network on absolute values with the same selections
  (:func:`fixed_selection_grads`, torch autograd of ``F.conv2d`` in float64: a
  bound's magnitude and a float64 reference, not a result under test).
* Central differences of the float64 loop reference: no truncation term at
  all (:func:`_check_central_differences`), only rounding.

Each target is checked on its own: its value by every path it offers (torch:
the ``Regularizer`` behind ``penalty``, ``forward``'s captured dict, a user's
``SmallNet`` + ``capture_outputs``; JAX: ``penalty`` and ``forward``'s dict)
against refs in float64, its gradients by every path against the float64
gradient of the network with the same selections, and its ``penalty``
gradient against central differences of refs. So torch and JAX agree with
each other because each agrees with the same float64 truth, in every mode
(``jax.jit``, ``torch.compile``) the selection runs. The hooks' lifetime, the
clone that in-place ops cannot reach, and the graph a captured value keeps are
torch properties of ``capture_outputs`` and ``penalty``, through
``target.api``; a plant brings its own ``api``.
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import Any, NamedTuple

import numpy as np
from hypothesis import assume, note
from hypothesis import strategies as st

import refs.capture as refs_capture
from crosscheck import modes, optable, sizes
from crosscheck.backends import load_jax, load_torch
from crosscheck.compare import Comparison, assert_close
from crosscheck.optable import (
    BadCase,
    Case,
    Fault,
    Historic,
    OpSpec,
    Property,
    Target,
)
from crosscheck.strategies import BOOLEANS, pick
from crosscheck.tolerance import EXACT, Tolerance, gamma, rounding_bound
from refs.checks.capture import check_init
from refs.network import (
    CONV1_KERNEL,
    CONV2_KERNEL,
    LAYERS,
    PARAM_NAMES,
    PENALTY_LAYER,
    layer_input,
    param_shapes,
)

FLOAT_DTYPES = ("float32", "float64")
FORWARD_ARGS = ("params", "x")
PENALTY_ARGS = ("params", "x", "layer")
CAPTURE_ARGS = ("params", "x", "names", "inplace")
INIT_ARGS = ("seed", "in_channels", "channels", "num_classes", "image_size", "dtype")

# ------------------------------------------------------------ cases
# A few fixed architectures, so that shapes repeat (JAX compiles once per shape);
# non-square images and unequal channel counts, so that a transposed or
# mis-flattened layer cannot pass by coincidence.


class Config(NamedTuple):
    batch: int
    in_channels: int
    channels: tuple[int, int]
    classes: int
    size: tuple[int, int]


CONFIGS = (
    Config(1, 1, (2, 2), 3, (6, 6)),
    Config(2, 2, (2, 3), 2, (6, 5)),
    Config(1, 3, (2, 2), 4, (4, 6)),  # fc is 4 x 4: a transposed fc weight would still run
)


class NetCase(NamedTuple):
    """Weights, images and a penalty layer; ``repr`` is a reproducer (``case.params()``, ``case.x()``)."""

    config: Config
    seed: int
    dtype: str
    integral: bool  # small-integer weights and images: exact arithmetic, ReLU at 0, ties
    layer: str = PENALTY_LAYER

    def params(self) -> dict[str, np.ndarray]:
        c = self.config
        if not self.integral:
            return refs_capture.init_params(self.seed, in_channels=c.in_channels,
                                            channels=c.channels, num_classes=c.classes,
                                            image_size=c.size, dtype=self.dtype)
        rng = np.random.default_rng([self.seed, 2])
        arch = check_init("init_params", c.in_channels, c.channels, c.classes, c.size, self.dtype)
        return {name: rng.integers(-2, 3, size=shape).astype(self.dtype)
                for name, shape in param_shapes(arch).items()}

    def x(self) -> np.ndarray:
        c = self.config
        shape = (c.batch, c.in_channels) + c.size
        rng = np.random.default_rng([self.seed, 1])
        if self.integral:
            return rng.integers(-3, 4, size=shape).astype(self.dtype)
        # on the same 2**-12 grid as the weights: exact in float32 and float64
        return (np.round(rng.standard_normal(shape) * 4096) / 4096).astype(self.dtype)

    def params64(self) -> dict[str, np.ndarray]:
        return {k: v.astype(np.float64) for k, v in self.params().items()}

    def x64(self) -> np.ndarray:
        return self.x().astype(np.float64)

    def forward_case(self) -> Case:
        return Case((self.params(), self.x()), names=FORWARD_ARGS)

    def penalty_case(self) -> Case:
        return Case((self.params(), self.x(), self.layer), names=PENALTY_ARGS)


@st.composite
def net_cases(draw, dtypes=FLOAT_DTYPES, *, integral=True, layers=LAYERS):
    case = NetCase(draw(pick(CONFIGS), label="config"),
                   draw(st.integers(0, 2**16), label="seed"),
                   draw(pick(dtypes), label="dtype"),
                   draw(BOOLEANS, label="integral") if integral else False,
                   draw(pick(layers), label="layer"))
    note(f"case = {case!r}")
    return case


def fixed_cases(dtypes=FLOAT_DTYPES) -> list[NetCase]:
    return [NetCase(c, i, d, False) for i, c in enumerate(CONFIGS) for d in dtypes]


def forward_cases(integral=True):
    return net_cases(integral=integral).map(NetCase.forward_case)


def penalty_cases(integral=True, layers=LAYERS):
    return net_cases(integral=integral, layers=layers).map(NetCase.penalty_case)


#: what capture_outputs may record besides the layers: the whole network
NAMES = LAYERS + ("",)


@st.composite
def capture_cases(draw, integral=True, inplace=None):
    net = draw(net_cases(integral=integral))
    names = draw(st.lists(pick(NAMES), unique=True, max_size=len(NAMES)), label="names")
    inplace = draw(BOOLEANS, label="inplace") if inplace is None else inplace
    return Case((net.params(), net.x(), names, inplace), names=CAPTURE_ARGS)


@st.composite
def init_cases(draw):
    return Case((draw(st.integers(0, 2**16), label="seed"), draw(st.integers(1, 3)),
                 (draw(st.integers(1, 3)), draw(st.integers(1, 3))), draw(st.integers(1, 5)),
                 (draw(st.integers(4, 8)), draw(st.integers(4, 8))),
                 draw(pick(FLOAT_DTYPES))), names=INIT_ARGS)


# ------------------------------------------------------------ error bounds


def layer_terms(params) -> dict[str, int]:
    """``K`` per layer: the term counts (bias included) of the linear layers up to it."""
    n1 = math.prod(np.shape(params["conv1.weight"])[1:]) + 1
    n2 = math.prod(np.shape(params["conv2.weight"])[1:]) + 1
    n3 = np.shape(params["fc.weight"])[1] + 1
    return {"conv1": n1, "relu1": n1, "pool1": n1, "conv2": n1 + n2, "relu2": n1 + n2,
            "flatten": n1 + n2, "fc": n1 + n2 + n3}


def linear_terms(case: NetCase) -> dict[str, int]:
    return layer_terms(case.params())


def conv_numpy(x, w, b, padding=0):
    """Cross-correlation as a sum of shifted slices (vectorized; test-side only)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    k = w.shape[-1]
    h, wd = x.shape[2] - k + 1, x.shape[3] - k + 1
    out = np.broadcast_to(b[None, :, None, None], (x.shape[0], w.shape[0], h, wd))
    for i in range(k):
        for j in range(k):
            out = out + np.einsum("oc,nchw->nohw", w[:, :, i, j], x[:, :, i:i + h, j:j + wd])
    return out


def windows(h):
    """``(N, C, H, W) -> (N, C, H // 2, 2, W // 2, 2)``: the 2 x 2 pooling windows."""
    n, c, hh, ww = h.shape
    p, q = hh // 2, ww // 2
    return h[:, :, :2 * p, :2 * q].reshape(n, c, p, 2, q, 2)


def abs_network(params, x, selections=None, conv=conv_numpy) -> dict[str, Any]:
    """Every layer's output for |weights| and |x| (pass them as absolute values).

    Without ``selections`` ReLU is the identity and max-pool the max (the
    magnitudes that bound forward errors); with them (from :func:`selections`)
    ReLU keeps what the real network keeps and the pool takes what it takes
    (the selections under which a gradient is a polynomial). Works on NumPy
    arrays, and on torch tensors with ``conv=F.conv2d`` (for autograd); given
    signed values and selections, it is the network itself.
    """
    p, s = params, selections
    kept = {"conv1": conv(x, p["conv1.weight"], p["conv1.bias"], padding=1)}
    kept["relu1"] = kept["conv1"] if s is None else kept["conv1"] * s["relu1"]
    win = windows(kept["relu1"])
    kept["pool1"] = win.max(axis=(3, 5)) if s is None else (win * s["pool1"]).sum(axis=(3, 5))
    kept["conv2"] = conv(kept["pool1"], p["conv2.weight"], p["conv2.bias"])
    kept["relu2"] = kept["conv2"] if s is None else kept["conv2"] * s["relu2"]
    kept["flatten"] = kept["relu2"].reshape(kept["relu2"].shape[0], -1)
    kept["fc"] = kept["flatten"] @ p["fc.weight"].T + p["fc.bias"]
    return kept


def layer_bounds(params, x, dtype) -> dict[str, Tolerance]:
    """The error bound of every layer's output in ``dtype`` against a float64 reference."""
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    mags = abs_network({k: np.abs(v) for k, v in params.items()}, np.abs(np.asarray(x, np.float64)))
    terms = layer_terms(params)
    return {name: rounding_bound(dtype, terms[name], mags[name]) for name in LAYERS}


def forward_bounds(case: NetCase, params=None, x=None) -> dict[str, Tolerance]:
    """:func:`layer_bounds` of a drawn case (or of ``params`` / ``x`` in its dtype)."""
    return layer_bounds(case.params64() if params is None else params,
                        case.x64() if x is None else x, case.dtype)


def penalty_bound_of(params, x, layer, dtype) -> Tolerance:
    """``mean(h**2)`` for ``h`` = ``layer``'s input: ``gamma(2 K + M + 1) * mean(A**2)``."""
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    before = layer_input(layer)
    if before is None:
        h = np.abs(x)
    else:
        h = abs_network({k: np.abs(v) for k, v in params.items()}, np.abs(x))[before]
    k = 0 if before is None else layer_terms(params)[before]
    return rounding_bound(dtype, 2 * k + h.size + 1, np.mean(h**2))


def penalty_bound(case: NetCase, dtype=None, params=None, x=None) -> Tolerance:
    return penalty_bound_of(case.params64() if params is None else params,
                            case.x64() if x is None else x, case.layer,
                            case.dtype if dtype is None else dtype)


def grad_terms_of(params, x) -> int:
    """``K_grad``: every rounding a monomial of a gradient can meet, generously counted.

    The forward pass twice (the penalty squares a forward value), the penalty's
    own backward (1/M, times 2, times h), and for each linear layer the sums of
    its backward: fan-out terms into each input element, N * positions terms
    into each weight element (the jax_impl conv's transpose adds at most
    kernel-area terms per position, inside the fan-out).
    """
    n, _, h, w = np.shape(x)
    c1, c2 = np.shape(params["conv1.weight"])[0], np.shape(params["conv2.weight"])[0]
    classes = np.shape(params["fc.weight"])[0]
    conv2_positions = (h // 2 - CONV2_KERNEL + 1) * (w // 2 - CONV2_KERNEL + 1)
    backward = (c1 * CONV1_KERNEL**2 + n * h * w + c2 * CONV2_KERNEL**2 + n * conv2_positions
                + classes + n)
    return 2 * layer_terms(params)["fc"] + 4 + backward


def grad_terms(case: NetCase) -> int:
    return grad_terms_of(case.params(), case.x())


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


def fixed_selection_grads(params, x, layer, sel, *, absolute: bool) -> dict[str, np.ndarray]:
    """The penalty's gradient for the network with the selections ``sel`` held fixed.

    ``absolute``: on |weights| and |x| (the magnitude in the gradient bounds);
    otherwise on the values themselves (the float64 reference gradient: where
    ``sel`` are the exact selections, the network's own gradient). Torch
    autograd of ``F.conv2d`` in float64: torch's eager autograd needs no
    compilation per shape.
    """
    torch = load_torch()
    import torch.nn.functional as F

    f = np.abs if absolute else (lambda a: a)
    p = {k: torch.from_numpy(f(np.asarray(v, np.float64))).requires_grad_(True)
         for k, v in params.items()}
    before = layer_input(layer)
    if before is None:  # the mean square of x depends on no weight
        return {k: np.zeros(v.shape) for k, v in p.items()}
    sel = {k: torch.from_numpy(v) for k, v in sel.items()}
    h = abs_network(p, torch.from_numpy(f(np.asarray(x, np.float64))), sel, conv=F.conv2d)[before]
    h.pow(2).mean().backward()
    return {k: np.zeros(v.shape) if v.grad is None else v.grad.numpy() for k, v in p.items()}


def grad_magnitudes(case: NetCase, sel) -> dict[str, np.ndarray]:
    return fixed_selection_grads(case.params64(), case.x64(), case.layer, sel, absolute=True)


def grad_tolerance(dtype, k: int, magnitude, sides: int = 2, why="") -> Tolerance:
    """``sides`` results, each within gamma(k) * magnitude of the exact gradient."""
    atol = sides * gamma(k, dtype) * np.asarray(magnitude) + 2 * k * float(np.finfo(dtype).tiny)
    return Tolerance(0.0, atol, why or f"{sides} x gamma({k}) in {dtype} on |grad| magnitudes")


# ------------------------------------------------------------ the vectorized oracles
# The truth at sizes the loops cannot reach (the large tier), held against refs on the
# small tier: the same layers as shifted-slice einsums, window maxima and a matmul.


def np_forward(params, x):
    """``refs.capture.forward``, vectorized NumPy."""
    p = params
    kept = {"conv1": conv_numpy(x, p["conv1.weight"], p["conv1.bias"], padding=1)}
    kept["relu1"] = np.where(kept["conv1"] > 0, kept["conv1"], np.zeros((), x.dtype))
    kept["pool1"] = windows(kept["relu1"]).max(axis=(3, 5))
    kept["conv2"] = conv_numpy(kept["pool1"], p["conv2.weight"], p["conv2.bias"])
    kept["relu2"] = np.where(kept["conv2"] > 0, kept["conv2"], np.zeros((), x.dtype))
    kept["flatten"] = kept["relu2"].reshape(kept["relu2"].shape[0], -1)
    kept["fc"] = kept["flatten"] @ p["fc.weight"].T + p["fc.bias"]
    return kept["fc"], kept


def np_penalty(params, x, layer=PENALTY_LAYER):
    """``refs.capture.penalty``, vectorized NumPy."""
    before = layer_input(layer)
    h = x if before is None else np_forward(params, x)[1][before]
    return np.mean(h**2)


# ------------------------------------------------------------ the large tier
# Two architectures only (each shape and dtype is one compilation for jax.jit and
# torch.compile); batch x channels = 64, a side of 64, 2**17 elements per image batch.

LARGE_CONFIGS = (
    Config(8, 8, (8, 4), 10, (64, 32)),
    Config(4, 16, (4, 8), 6, (32, 64)),
)


def _large_net(rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    c = LARGE_CONFIGS[int(rng.integers(len(LARGE_CONFIGS)))]
    dtype = str(rng.choice(FLOAT_DTYPES))
    params = refs_capture.init_params(int(rng.integers(2**16)), in_channels=c.in_channels,
                                      channels=c.channels, num_classes=c.classes,
                                      image_size=c.size, dtype=dtype)
    return params, sizes.values(rng, (c.batch, c.in_channels) + c.size, dtype)


def large_forward(rng: np.random.Generator) -> tuple:
    return _large_net(rng)


def large_penalty(rng: np.random.Generator) -> tuple:
    params, x = _large_net(rng)
    return params, x, str(rng.choice(("pool1", PENALTY_LAYER)))


# ------------------------------------------------------------ bad input
# Each fault breaks one thing of a valid call and says what API.md promises for it.


def _other_dtype(a: np.ndarray) -> str:
    return "float32" if a.dtype == np.float64 else "float64"


def _set_param(draw, call, name, value_of, names=PARAM_NAMES):
    name = draw(pick(names)) if name is None else name
    params = dict(call["params"])
    params[name] = value_of(params[name], call)
    return {**call, "params": params}


def _without_one(draw, call):
    params = dict(call["params"])
    del params[draw(pick(PARAM_NAMES))]
    return {**call, "params": params}


def _param_fault(why, name, value_of, exception=ValueError, names=PARAM_NAMES):
    return Fault(why, "params", exception,
                 lambda draw, call: _set_param(draw, call, name, value_of, names))


def _x_fault(why, value_of, exception=ValueError):
    return Fault(why, "x", exception, lambda draw, call: {**call, "x": value_of(call["x"])})


def _grow(a, axis=0):
    return np.concatenate([a, np.take(a, [0], axis=axis)], axis=axis)


PARAMS_FAULTS = (
    Fault("params not a dict", "params", TypeError,
          lambda draw, call: {**call, "params": list(call["params"].values())}),
    Fault("missing key", "params", ValueError, _without_one),
    Fault("unexpected key", "params", ValueError,
          lambda draw, call: {**call, "params": {**call["params"],
                                                 "conv3.weight": call["params"]["conv2.weight"]}}),
    _param_fault("conv1 kernel not 3x3", "conv1.weight", lambda w, c: w[:, :, :2, :2].copy()),
    _param_fault("conv1.bias too long", "conv1.bias", lambda b, c: _grow(b)),
    _param_fault("conv2 reading the wrong channels", "conv2.weight", lambda w, c: _grow(w, 1)),
    _param_fault("fc.bias too long", "fc.bias", lambda b, c: _grow(b)),
    _param_fault("fc.weight of rank 3", "fc.weight", lambda w, c: w[None]),
    _param_fault("mixed dtypes", None, lambda w, c: w.astype(_other_dtype(w)), TypeError,
                 PARAM_NAMES[1:]),
    Fault("integer weights", "params", TypeError,
          lambda draw, call: {**call, "params": {k: v.astype(np.int64)
                                                 for k, v in call["params"].items()}}),
    _param_fault("a weight that is a list", None, lambda w, c: w.tolist(), TypeError),
)
X_FAULTS = (
    _x_fault("x of rank 3", lambda x: x[0]),
    _x_fault("x with the wrong channels", lambda x: _grow(x, 1)),
    _x_fault("x too small", lambda x: x[..., :3, :]),
    _x_fault("x that does not fit fc",
             lambda x: np.zeros(x.shape[:2] + (x.shape[2] + 2, x.shape[3]), x.dtype)),
    _x_fault("empty batch", lambda x: x[:0]),
    _x_fault("x of another dtype", lambda x: x.astype(_other_dtype(x)), TypeError),
    _x_fault("x that is a list", lambda x: x.tolist(), TypeError),
)
LAYER_FAULTS = (
    Fault("unknown layer", "layer", ValueError,
          lambda draw, call: {**call, "layer": draw(pick(
              ("conv3", "Conv1", "", "conv1.weight", 0, None)))}),
)


def _insert(draw, names, extra):
    names = list(names)
    names.insert(draw(st.integers(0, len(names))), extra)
    return names


NAMES_FAULTS = (
    Fault("a name that is not a submodule", "names", ValueError,
          lambda draw, call: {**call, "names": _insert(draw, call["names"], draw(
              pick(("conv3", "Conv1", "conv1.weight", "fc ", "net"))))}),
    Fault("a name given twice", "names", ValueError,
          lambda draw, call: {**call, "names": _insert(
              draw, call["names"] or [LAYERS[0]],
              draw(pick(list(call["names"] or [LAYERS[0]]))))}),
    Fault("names as one string", "names", TypeError,
          lambda draw, call: {**call, "names": draw(pick(LAYERS))}),
    Fault("a name that is not a string", "names", TypeError,
          lambda draw, call: {**call, "names": _insert(draw, call["names"], draw(
              pick((1, None, b"conv1", ("conv1",)))))}),
)
INIT_FAULTS = (
    Fault("no input channels", "in_channels", ValueError,
          lambda draw, call: {**call, "in_channels": draw(pick((0, -1, 2.0, True)))}),
    Fault("one channel count", "channels", ValueError,
          lambda draw, call: {**call, "channels": draw(pick(
              ((2,), (2, 0), (1, 2, 3), "23", 2)))}),
    Fault("classes not a positive int", "num_classes", ValueError,
          lambda draw, call: {**call, "num_classes": draw(pick((0, 2.0, "4")))}),
    Fault("an image side below 4", "image_size", ValueError,
          lambda draw, call: {**call, "image_size": draw(pick(
              ((3, 6), (6,), (6, 6.0), 6)))}),
    Fault("not a float dtype", "dtype", TypeError,
          lambda draw, call: {**call, "dtype": draw(pick(
              ("int64", "float16", "bfloat16", "complex64")))}),
)


# ------------------------------------------------------------ op table


def _forward_tolerance(case: Case, expected) -> Any:
    bounds = layer_bounds(case["params"], case["x"], case["x"].dtype)
    return (bounds["fc"], {name: bounds[name] for name in LAYERS})


def _penalty_tolerance(case: Case, expected) -> Tolerance:
    return penalty_bound_of(case["params"], case["x"], case["layer"], case["x"].dtype)


def _capture_tolerance(case: Case, expected) -> Any:
    bounds = layer_bounds(case["params"], case["x"], case["x"].dtype)
    return {name: [bounds[name or "fc"]] for name in case["names"]}


def refs_captured(params, x, names, inplace=False):
    """What ``capture_outputs`` must record: refs' intermediates, one call each (``""``: the
    network's output). ``inplace`` changes nothing that a clone keeps."""
    out, kept = refs_capture.forward(params, x)
    return {name: [kept[name] if name else out] for name in names}


def captured_by_hooks(api, params, x, names, inplace=False):
    """A ``SmallNet`` of ``params`` run on ``x`` inside ``api.capture_outputs(net, names)``."""
    net = api.SmallNet(params, inplace=inplace)
    with api.capture_outputs(net, names) as kept:
        net(x)
    return kept


@functools.cache
def _hooks_of(module):
    # one function per module, so that modes.wrap caches one compilation of it
    return functools.partial(captured_by_hooks, module)


@functools.cache
def _init_params_of(module):
    def init_params(seed, in_channels, channels, num_classes, image_size, dtype):
        return module.init_params(seed, in_channels=in_channels, channels=channels,
                                  num_classes=num_classes, image_size=image_size, dtype=dtype)

    return init_params


FORWARD = OpSpec(
    name="forward",
    topic="capture",
    arg_names=FORWARD_ARGS,
    cases=forward_cases,
    bad_cases=lambda: optable.bad_calls(FORWARD_ARGS, lambda: forward_cases(integral=False),
                                        PARAMS_FAULTS + X_FAULTS),
    tolerance_of=_forward_tolerance,
    oracle=np_forward,
    large=large_forward,
)
PENALTY = OpSpec(
    name="penalty",
    topic="capture",
    arg_names=PENALTY_ARGS,
    cases=penalty_cases,
    bad_cases=lambda: optable.bad_calls(PENALTY_ARGS, lambda: penalty_cases(integral=False),
                                        PARAMS_FAULTS + X_FAULTS + LAYER_FAULTS),
    tolerance_of=_penalty_tolerance,
    oracle=np_penalty,
    large=large_penalty,
)
CAPTURE_OUTPUTS = OpSpec(
    name="capture_outputs",
    topic="capture",
    arg_names=CAPTURE_ARGS,
    cases=capture_cases,
    bad_cases=lambda: optable.bad_calls(CAPTURE_ARGS, capture_cases, NAMES_FAULTS),
    tolerance_of=_capture_tolerance,
    impls=("torch_impl",),
    adapters={"refs": lambda module: refs_captured, "torch_impl": _hooks_of},
    # eager only: every distinct names list is a recompilation (seconds each), and hooks
    # registered inside a compiled function are what forward's and penalty's compile
    # cells already run (torch_impl.forward is capture_outputs on a SmallNet)
    modes=("eager",),
)
INIT_PARAMS = OpSpec(
    name="init_params",
    topic="capture",
    arg_names=INIT_ARGS,
    cases=init_cases,
    bad_cases=lambda: optable.bad_calls(INIT_ARGS, init_cases, INIT_FAULTS),
    float64_reference=False,  # the same numbers in each dtype, exactly
    adapters={impl: _init_params_of for impl in optable.OURS},
    # eager only: the weights are drawn on the host by NumPy; there is no kernel to compile
    modes=("eager",),
    ordered_keys=True,  # keyed in state_dict order, as SmallNet names its parameters
)
OPS = (FORWARD, PENALTY, CAPTURE_OUTPUTS, INIT_PARAMS)

# --------------------------------------------------------------- properties


def _is_oracle(target: Target) -> bool:
    return target.native is not None and target.native.fn is target.op.oracle


def _not_oracle(target: Target) -> bool:
    return not _is_oracle(target)


def differentiable(target: Target) -> bool:
    return target.framework in ("torch", "jax") and not _is_oracle(target)


def _torch(target: Target) -> bool:
    return target.framework == "torch"


def _of(target: Target, spec: OpSpec):
    """``spec``'s function in the target's implementation and mode: a plant's own where
    its ``api`` has one, else :meth:`Target.sibling`'s."""
    api = target.native.api if target.native is not None else None
    if api is not None and hasattr(api, spec.name):
        return modes.wrap(getattr(api, spec.name), target.mode)
    return target.sibling(spec).fn


def _float64(params, x):
    return {k: np.asarray(v, np.float64) for k, v in params.items()}, np.asarray(x, np.float64)


#: the ways each framework computes the penalty of a captured value
PATHS = {"numpy": ("penalty", "forward"), "torch": ("penalty", "forward", "capture_outputs"),
         "jax": ("penalty", "forward")}


def _torch_loss(target: Target, params, x, layer, via):
    """``(loss, leaves)`` by one torch path: ``penalty`` (its Regularizer), the mean square
    read from ``forward``'s dict, or a user's ``SmallNet`` + ``capture_outputs`` (leaves:
    the module's own parameters)."""
    before = layer_input(layer)
    if via == "penalty":
        return target.fn(params, x, layer), params
    if via == "forward":
        _, kept = _of(target, FORWARD)(params, x)
        return (x if before is None else kept[before]).pow(2).mean(), params
    net = target.api.SmallNet(params)
    if before is None:
        net(x)
        return x.pow(2).mean(), dict(net.named_parameters())
    with target.api.capture_outputs(net, [before]) as got:
        net(x)
    return got[before][0].pow(2).mean(), dict(net.named_parameters())


def _jax_loss(target: Target, x, layer, via):
    """The penalty as a function of the weights, by one JAX path."""
    if via == "penalty":
        return lambda p: target.fn(p, x, layer)
    before = layer_input(layer)
    fwd = _of(target, FORWARD)
    mean_square = _jax_mean_square()
    return lambda p: mean_square(x if before is None else fwd(p, x)[1][before])


@functools.cache
def _jax_mean_square():
    """``mean(h**2)`` under ``jax.jit``, as JAX code would write it: one program per shape
    (and, under ``jax.grad``, one linearization and one transpose), where the eager
    ``jnp.square`` and ``jnp.mean`` were each a program of their own, and so were their
    derivatives' ``mul`` and ``broadcast_in_dim`` (the capture cells with an empty cache:
    235 programs before, 178 with this)."""
    jax = load_jax()
    return jax.jit(lambda h: jax.numpy.mean(jax.numpy.square(h)))


def _values_and_grads(target: Target, case: Case, grads: bool) -> dict[str, tuple]:
    """``{path: (value, grads or None)}`` as NumPy, for every path of the target's framework."""
    params, x = target.convert(case)[:2]
    layer = case["layer"]
    out = {}
    for via in PATHS[target.framework]:
        label = f"{target.name} via {via}"
        if target.framework == "numpy":
            if via == "penalty":
                out[label] = (np.asarray(target.fn(params, x, layer)), None)
            else:
                before = layer_input(layer)
                h = x if before is None else _of(target, FORWARD)(params, x)[1][before]
                out[label] = (np.asarray(np.mean(h**2)), None)
        elif target.framework == "torch":
            leaves = {k: v.detach().clone().requires_grad_(grads) for k, v in params.items()}
            loss, leaves = _torch_loss(target, leaves, x, layer, via)
            if grads and loss.requires_grad:  # the penalty of x itself depends on no weight
                loss.backward()
            g = None if not grads else {
                k: np.zeros(v.shape, _np_dtype(v)) if v.grad is None else target.backend.to_numpy(v.grad) for k, v in leaves.items()}
            out[label] = (target.backend.to_numpy(loss), g)
        else:
            jax = load_jax()
            f = _jax_loss(target, x, layer, via)
            if grads:
                value, g = jax.value_and_grad(f)(params)
                out[label] = (np.asarray(value), {k: np.asarray(v) for k, v in g.items()})
            else:
                out[label] = (np.asarray(f(params)), None)
    return out


def _np_dtype(tensor) -> np.dtype:
    return np.dtype(str(tensor.dtype).removeprefix("torch."))


def _check_value_on_every_path(target: Target, case: Case) -> Comparison:
    """Every path's penalty equals refs' (float64) within the penalty bound."""
    params, x, layer = case.args
    expected = np.asarray(refs_capture.penalty(*_float64(params, x), layer))
    tol = penalty_bound_of(params, x, layer, x.dtype)
    result = Comparison()
    for label, (value, _) in _values_and_grads(target, case, grads=False).items():
        result = result.merge(assert_close(value, expected, tol, dtype=x.dtype,
                                           path=f"{label}: penalty of {layer}'s input"))
    return result


def _kink_free(params, x) -> dict[str, np.ndarray]:
    """The selections of refs' forward pass; ``assume`` it is clear of kinks."""
    p64, x64 = _float64(params, x)
    kept = refs_capture.forward(p64, x64)[1]
    assume(clear_of_kinks(kept, layer_bounds(p64, x64, x.dtype)))
    return selections(kept)


def _check_grads_on_every_path(target: Target, case: Case) -> Comparison:
    """Every path's gradients equal the float64 gradient of the network with the same selections.

    Needs a case clear of kinks (``assume``): at a kink torch and JAX may pick
    different subgradients (JAX splits a max-pool tie evenly, torch gives it all
    to one element), and neither is wrong.
    """
    params, x, layer = case.args
    sel = _kink_free(params, x)
    p64, x64 = _float64(params, x)
    reference = fixed_selection_grads(p64, x64, layer, sel, absolute=False)
    mags = fixed_selection_grads(p64, x64, layer, sel, absolute=True)
    k = grad_terms_of(params, x)
    result = Comparison()
    for label, (_, grads) in _values_and_grads(target, case, grads=True).items():
        for name in PARAM_NAMES:
            # the target's rounding and the float64 reference's, each gamma(K_grad) |grad|
            atol = ((gamma(k, x.dtype) + gamma(k, np.float64)) * mags[name]
                    + 2 * k * float(np.finfo(x.dtype).tiny))
            tol = Tolerance(0.0, atol, f"gamma({k}) in {x.dtype} + in float64 on |grad|")
            result = result.merge(assert_close(
                grads[name], reference[name], tol, dtype=x.dtype,
                path=f"{label}, penalty of {layer}'s input: grad[{name!r}]"))
    return result


#: penalty layers whose input depends on weights (conv1's input is x) and is not another
#: layer's again (flatten's input is relu2's output, fc's the same flattened)
GRAD_LAYERS = ("relu1", "pool1", "conv2", "relu2", "fc")
#: central-difference step: a power of two, so that weight +- STEP is exact (weights sit
#: on a 2**-12 grid with |w| < 1)
STEP = 2.0**-10


@st.composite
def _central_difference_cases(draw):
    net = draw(net_cases(integral=False, layers=GRAD_LAYERS))
    upstream = PARAM_NAMES[:2] if LAYERS.index(net.layer) <= 3 else PARAM_NAMES[:4]
    shapes = {k: v.shape for k, v in net.params().items()}
    coords = []
    for _ in range(3):
        name = draw(pick(upstream), label="weight")
        coords.append((name, draw(st.integers(0, math.prod(shapes[name]) - 1), label="element")))
    return net.penalty_case(), tuple(coords)


def _penalty_grads(target: Target, case: Case) -> dict[str, np.ndarray]:
    """The gradient of the target's ``penalty`` (its own function, in its mode)."""
    params, x = target.convert(case)[:2]
    layer = case["layer"]
    if target.framework == "torch":
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        loss = target.fn(leaves, x, layer)
        if loss.requires_grad:
            loss.backward()
        return {k: np.zeros(v.shape) if v.grad is None else target.backend.to_numpy(v.grad)
                for k, v in leaves.items()}
    jax = load_jax()
    grads = jax.grad(lambda p: target.fn(p, x, layer))(params)
    return {k: np.asarray(v) for k, v in grads.items()}


def _check_central_differences(target: Target, drawn) -> Comparison:
    """The penalty's gradient matches central differences of refs' penalty in float64.

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
    difference itself rounds once more (``u |fd|``); and the target's gradient
    is within ``gamma(K_grad) |grad|`` of the exact one.
    """
    case, coords = drawn
    params, x, layer = case.args
    sel = _kink_free(params, x)
    p64, x64 = _float64(params, x)
    grads = _penalty_grads(target, case)
    mags = fixed_selection_grads(p64, x64, layer, sel, absolute=True)
    before = layer_input(layer)
    k = grad_terms_of(params, x)
    result = Comparison()
    for name, i in coords:
        w = p64[name].reshape(-1)[i]
        sides = []
        for sign in (1, -1):
            moved = {key: v.copy() for key, v in p64.items()}
            moved[name].reshape(-1)[i] = w + sign * STEP
            assert (moved[name].reshape(-1)[i] - w) * sign == STEP, "the step is not exact"
            kept = refs_capture.forward(moved, x64)[1]
            same = all(np.array_equal(v, sel[key]) for key, v in selections(kept).items())
            assume(same and clear_of_kinks(kept, layer_bounds(moved, x64, "float64")))
            # refs.penalty's value from the forward pass already run (the penalty bound holds
            # for any order of the mean's sum): one loop forward per side, not two
            value = np.mean(np.square(x64 if before is None else kept[before]))
            sides.append((value, penalty_bound_of(moved, x64, layer, "float64").allowed(value)))
        (plus, e_plus), (minus, e_minus) = sides
        fd = (plus - minus) / (2 * STEP)
        fd_error = (e_plus + e_minus) / (2 * STEP) + np.finfo(np.float64).eps / 2 * abs(fd)
        magnitude = mags[name].reshape(-1)[i]
        allowed = fd_error + gamma(k, x.dtype) * magnitude + 2 * k * np.finfo(x.dtype).tiny
        tol = Tolerance(0.0, allowed, f"finite-difference rounding {fd_error:.3g} + gamma({k}) "
                                      f"in {x.dtype} on |grad| {magnitude:.3g}")
        got = np.float64(grads[name].reshape(-1)[i])
        result = result.merge(assert_close(got, np.float64(fd), tol, path=(
            f"{target.name} grad[{name!r}][{i}] vs central difference")))
    return result


# -- hooks ------------------------------------------------------------------------------


def hook_count(net) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


class Boom(Exception):
    """Raised inside a capture block to check that the hooks still go."""


def _global_hooks():
    from torch.nn.modules import module as module_globals

    return (dict(module_globals._global_forward_hooks),
            dict(module_globals._global_forward_pre_hooks))


def _expect_raise(exception, block, what: str) -> None:
    try:
        block()
    except exception:
        return
    raise AssertionError(f"{what}: expected {exception.__name__}")


def _check_hooks_removed(target: Target, case: Case) -> Comparison:
    """capture_outputs' hooks live exactly as long as its block: gone after a normal exit,
    an exception in the block, an exception in the forward; no growth with repeated
    forwards; one record per call; forward() leaves no global hooks behind."""
    api = target.api
    params, x = target.convert(case)[:2]
    net = api.SmallNet(params)
    assert hook_count(net) == 0
    with api.capture_outputs(net, LAYERS) as kept:
        assert hook_count(net) == len(LAYERS), "capture must register one hook per name"
        net(x)
        net(x)
        assert hook_count(net) == len(LAYERS), "hooks grew with repeated forwards"
    assert hook_count(net) == 0, "hooks left behind after a normal exit"
    assert [len(v) for v in kept.values()] == [2] * len(LAYERS), "not one record per call"
    net(x)
    assert [len(v) for v in kept.values()] == [2] * len(LAYERS), "recorded after exit"

    def boom():
        with api.capture_outputs(net, LAYERS):
            net(x)
            raise Boom

    _expect_raise(Boom, boom, "an exception in the block")
    assert hook_count(net) == 0, "hooks left behind after an exception in the block"

    def too_small():
        with api.capture_outputs(net, LAYERS):
            net(x[..., :2, :2])  # pool1 leaves 1 x 1 for conv2's 2 x 2: torch raises mid-forward

    _expect_raise(RuntimeError, too_small, "a forward too small for conv2")
    assert hook_count(net) == 0, "hooks left behind after an exception in the forward"

    before = _global_hooks()
    for _ in range(2):
        api.forward(params, x)
    assert _global_hooks() == before, "forward() left global hooks behind"
    return Comparison()


def _check_regularizer_removed(target: Target, case: Case) -> Comparison:
    """The Regularizer's pre-hook lives as long as its ``with`` block or until ``remove()``
    (idempotent); once removed, nothing holds the regularizer (the deck's ``__del__``
    cleanup never ran: the module's hook dict kept it alive); penalty() leaves no hooks."""
    api = target.api
    params, x, layer = target.convert(case)
    net = api.SmallNet(params)
    with api.Regularizer(getattr(net, layer)) as reg:
        net(x)
        net(x)
        assert hook_count(net) == 1, "the regularizer's hooks grew with repeated forwards"
        assert reg.loss is not None, "the regularizer computed no loss"
    assert hook_count(net) == 0, "the regularizer's hook outlived its block"
    reg = api.Regularizer(getattr(net, layer))
    reg.remove()
    reg.remove()  # idempotent
    assert hook_count(net) == 0, "Regularizer.remove() left its hook"
    alive = weakref.ref(reg)
    del reg  # no cycle holds a regularizer: reference counting frees it here, or something holds it
    assert alive() is None, "something still holds a removed regularizer (its module's hooks?)"

    before = _global_hooks()
    for _ in range(2):
        api.penalty(params, x, layer)
    assert _global_hooks() == before, "penalty() left global hooks behind"
    return Comparison()


def _check_survives_inplace(target: Target, case: Case) -> Comparison:
    """In-place ops after a hooked layer (ReLU(inplace=True), ``out += 1``) leave the
    capture intact: what was recorded equals refs' intermediates."""
    api = target.api
    params, x = target.convert(case)[:2]
    net = api.SmallNet(params, inplace=True)
    with api.capture_outputs(net, LAYERS) as kept:
        out = net(x)
        out.add_(1.0)  # after fc's hook ran: must not reach the stored fc output
    p, xx = case["params"], case["x"]
    expected = refs_capture.forward(*_float64(p, xx))[1]
    bounds = layer_bounds(p, xx, xx.dtype)
    result = Comparison()
    for name in LAYERS:
        assert len(kept[name]) == 1, f"{len(kept[name])} records of {name!r} for one call"
        result = result.merge(assert_close(
            target.backend.to_numpy(kept[name][0]), expected[name], bounds[name], dtype=xx.dtype,
            path=f"{target.name}, in-place net, out += 1 after the block: captured {name!r}"))
    return result


def _check_keeps_graph(target: Target, case: Case) -> Comparison:
    """Every captured value is attached to the graph, and a loss on all of them
    back-propagates to conv1 -- also through ReLU(inplace=True)."""
    api = target.api
    params, x, _, inplace = target.convert(case)
    net = api.SmallNet(params, inplace=inplace)
    with api.capture_outputs(net, LAYERS) as kept:
        net(x)
    for name, values in kept.items():
        assert all(v.requires_grad and v.grad_fn is not None for v in values), (
            f"the captured {name!r} is detached from the graph")
    try:
        sum(v.pow(2).sum() for values in kept.values() for v in values).backward()
    except RuntimeError as e:
        raise AssertionError(f"backward through the captured values failed: {e}") from e
    assert net.conv1.weight.grad is not None, "no gradient reached conv1 through the capture"
    return Comparison()


def _check_bad_names_register_nothing(target: Target, bad: BadCase) -> Comparison:
    """A rejected ``names`` raises before any hook is registered."""
    api = target.api
    params, x, names, _ = target.convert(bad.case)
    net = api.SmallNet(params)

    def enter():
        with api.capture_outputs(net, names):
            net(x)

    _expect_raise(bad.exception, enter, f"capture_outputs with {bad.why}")
    assert hook_count(net) == 0, f"capture_outputs registered hooks before rejecting {bad.why}"
    return Comparison()


class TwiceCase(NamedTuple):
    """A network that calls one ReLU twice: ``relu(lin(relu(x)))``, integer-valued (exact)."""

    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray


@st.composite
def _twice_cases(draw):
    ints = lambda shape: st.lists(st.integers(-3, 3), min_size=math.prod(shape),  # noqa: E731
                                  max_size=math.prod(shape)).map(
        lambda v: np.asarray(v, np.float64).reshape(shape))
    n = draw(st.integers(1, 3), label="batch")
    return TwiceCase(draw(ints((n, 3))), draw(ints((3, 3))), draw(ints((3,))))


def _check_records_each_call(target: Target, drawn: TwiceCase) -> Comparison:
    """A module called twice in one forward is recorded twice, in call order."""
    torch = load_torch()
    from torch import nn

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.lin = nn.Linear(3, 3, dtype=torch.float64)

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    net = Twice().to(target.backend.device)
    with torch.no_grad():
        net.lin.weight.copy_(target.backend.asarray(drawn.weight))
        net.lin.bias.copy_(target.backend.asarray(drawn.bias))
    with target.api.capture_outputs(net, ["act", "lin", ""]) as kept:
        net(target.backend.asarray(drawn.x))
    first = np.maximum(drawn.x, 0)
    lin = first @ drawn.weight.T + drawn.bias
    expected = {"act": [first, np.maximum(lin, 0)], "lin": [lin], "": [np.maximum(lin, 0)]}
    got = {k: [target.backend.to_numpy(v) for v in values] for k, values in kept.items()}
    result = assert_close(got, expected, EXACT, path="records of a ReLU called twice")
    assert hook_count(net) == 0, "hooks left behind"
    return result


EAGER = ("eager",)  # a property that drives hooks through target.api: no function to compile
#: Under torch.compile the other paths' compiled parts are penalty and forward, whose values
#: agrees_with_ref and whose penalty gradient grad_matches_central_differences already check
#: compiled; the rest (SmallNet + capture_outputs) runs eagerly. Each new shape, dtype, layout
#: and layer retraces torch_impl's per-call SmallNet (5-10 s on CPU), so these two stay off
#: the compile axis; jax.jit compiles the whole path, once per shape, and keeps them.
NOT_COMPILED = ("eager", "jit")

PROPERTIES = (
    # cheap checks first (the planted-bug runner stops at the first property that catches);
    # central differences before the paths' gradients, so that each catches a plant of its own
    Property("penalty", "regularizer_hook_removed",
             "the Regularizer's pre-hook goes with its block or remove() (idempotent), and "
             "nothing holds it afterwards; penalty() leaves no global hooks",
             penalty_cases, _check_regularizer_removed, _torch, modes=EAGER),
    Property("penalty", "value_on_every_path",
             "the penalty by every path (torch: Regularizer, forward's dict, SmallNet + "
             "capture_outputs; JAX: penalty, forward's dict) equals refs in float64",
             penalty_cases, _check_value_on_every_path, _not_oracle, layouts=True,
             modes=NOT_COMPILED),
    Property("penalty", "grad_matches_central_differences",
             "penalty's gradient equals central differences of refs' penalty in float64 (the "
             "loops' forward pass; exact for the quadratic between kinks: rounding bounds only)",
             _central_difference_cases, _check_central_differences, differentiable,
             layouts=True),
    Property("penalty", "grads_on_every_path",
             "the gradients by every path equal the float64 gradient of the network with the "
             "same ReLU / max-pool selections, within gamma(K_grad) bounds",
             lambda: penalty_cases(integral=False), _check_grads_on_every_path, differentiable,
             layouts=True, modes=NOT_COMPILED),
    Property("capture_outputs", "records_each_call",
             "a module called twice in one forward is recorded twice, in call order (exact)",
             _twice_cases, _check_records_each_call, _torch, modes=EAGER),
    Property("capture_outputs", "bad_names_register_nothing",
             "a rejected names list raises before any hook is registered",
             lambda: CAPTURE_OUTPUTS.bad_cases(), _check_bad_names_register_nothing, _torch,
             modes=EAGER),
    Property("capture_outputs", "keeps_the_graph",
             "captured values stay attached to the graph; a loss on them reaches conv1, also "
             "through ReLU(inplace=True)",
             capture_cases, _check_keeps_graph, _torch, modes=EAGER),
    Property("capture_outputs", "survives_inplace_ops",
             "ReLU(inplace=True) and out += 1 after the hooks ran leave the records equal to "
             "refs (the capture is a clone)",
             capture_cases, _check_survives_inplace, _torch, layouts=True, modes=EAGER),
    Property("capture_outputs", "hooks_removed_on_every_exit",
             "hooks removed after a normal exit, an exception in the block or in the "
             "forward; no growth with repeated forwards; forward() leaves no global hooks",
             capture_cases, _check_hooks_removed, _torch, modes=EAGER),
)

# ------------------------------------------------------------ historic cases
# Each reproduces a published bug or surprise of hook-based capture; the expected values
# come from refs, never from the framework that had the bug.

#: float64, clear of kinks (tests/test_capture.py checks it), so the gradients are compared
HISTORIC_NET = NetCase(CONFIGS[1], 0, "float64", False)


def _historic_inplace_relu():
    # a forward hook runs after the module: on ReLU(inplace=True) it sees its input
    # already rectified (pytorch/pytorch#95617), and a record of conv1's output that is
    # not a clone is rectified by relu1 the same way
    net = HISTORIC_NET
    return Case((net.params(), net.x(), ["conv1", "relu1", "conv2"], True), names=CAPTURE_ARGS)


def _historic_inplace_backward():
    # in-place ReLU and full backward hooks: "Output 0 of BackwardHookFunctionBackward is a
    # view and is being modified in-place" (pytorch/pytorch#61519); forward hooks + clone
    # must back-propagate through ReLU(inplace=True)
    net = HISTORIC_NET
    return Case((net.params(), net.x(), list(LAYERS), True), names=CAPTURE_ARGS)


def _historic_regularizer_leak():
    # a hook that is never removed keeps what it refers to alive (pytorch/pytorch#46386);
    # the deck's Regularizer relied on __del__, which the module's hook dict never lets run
    return HISTORIC_NET._replace(layer="fc").penalty_case()


def _historic_activation_penalty():
    # the request for capture_activations(): loss = ce + L2(net.conv.activation)
    # (pytorch/pytorch#20637) -- the penalty of a captured value must train what is before it
    return HISTORIC_NET._replace(layer="fc").penalty_case()


HISTORIC = (
    Historic("capture_outputs", "agrees_with_ref", "forward hook on an in-place ReLU",
             "https://github.com/pytorch/pytorch/issues/95617",
             "a forward hook on nn.ReLU(inplace=True) sees its input already modified; a capture "
             "must store a clone or later in-place ops rewrite it", _historic_inplace_relu),
    Historic("capture_outputs", "keeps_the_graph", "in-place ReLU and backward hooks",
             "https://github.com/pytorch/pytorch/issues/61519",
             "full backward hooks reject a module whose output is modified in place; capture "
             "with forward hooks and clones must back-propagate through ReLU(inplace=True)",
             _historic_inplace_backward),
    Historic("penalty", "regularizer_hook_removed", "a hook keeps its owner alive",
             "https://github.com/pytorch/pytorch/issues/46386",
             "a forward hook that refers to its owner keeps it (and its GPU memory) alive until "
             "removed; the Regularizer must remove its hook, not wait for __del__",
             _historic_regularizer_leak),
    Historic("penalty", "grads_on_every_path", "a penalty on a captured activation",
             "https://github.com/pytorch/pytorch/issues/20637",
             "users asked for captured activations to regularize with (loss = ce + "
             "L2(activation)); the penalty of a captured value must give the gradients of refs",
             _historic_activation_penalty),
)
