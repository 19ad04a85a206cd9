"""The capture topic's network in the op table: ``forward`` and ``penalty`` on every backend.

``forward(params, x)`` returns ``(out, intermediates)`` and ``penalty(params,
x, layer)`` the course's regularizer; both take the weights as a dict. The
comparison is the table's usual one, against ``refs`` run in float64, with a
tolerance per layer from an a-priori rounding bound:

* a conv or linear layer with ``n`` terms per output (the bias counted) adds at
  most ``gamma(n) * (|W| @ |h| + |b|)`` to the error it receives through
  ``|W|``; ReLU and max-pool are 1-Lipschitz and exact and only pass an error
  on. By induction a layer's output is off by at most ``gamma(K) * A``, ``K``
  the summed term counts of the linear layers up to it and ``A`` the same
  network run on absolute values (:func:`abs_network`);
* the penalty ``mean(h**2)``: squaring doubles ``h``'s relative error and the
  mean adds ``M + 1`` roundings: ``gamma(2 K + M + 1) * mean(A**2)``.

The strategies and bounds here are also what ``tests/test_capture.py`` uses for
its gradient, hook-hygiene and alias properties (torch hooks, ``jax.grad``,
central differences), which need more than one target at a time.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from hypothesis import note
from hypothesis import strategies as st

import refs.capture as refs_capture
from crosscheck.optable import Case, OpSpec, bad_case
from crosscheck.tolerance import Tolerance, rounding_bound
from refs.checks.capture import check_init
from refs.network import LAYERS, PARAM_NAMES, PENALTY_LAYER, layer_input, param_shapes

FLOAT_DTYPES = ("float32", "float64")

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


@st.composite
def net_cases(draw, dtypes=FLOAT_DTYPES, *, integral=True, layers=LAYERS):
    case = NetCase(draw(st.sampled_from(CONFIGS)), draw(st.integers(0, 2**16)),
                   draw(st.sampled_from(dtypes)), draw(st.booleans()) if integral else False,
                   draw(st.sampled_from(layers)))
    note(f"case = {case!r}")
    return case


def fixed_cases(dtypes=FLOAT_DTYPES) -> list[NetCase]:
    return [NetCase(c, i, d, False) for i, c in enumerate(CONFIGS) for d in dtypes]


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
    arrays, and on torch tensors with ``conv=F.conv2d`` (for autograd).
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


# ------------------------------------------------------------ bad input


class BadCall(NamedTuple):
    params: Any
    x: Any
    layer: Any
    why: str
    exception: type[Exception]
    argument: str


_FAULTS = ("params not a dict", "missing key", "unexpected key", "conv1 kernel not 3x3",
           "conv1.bias too long", "conv2 reading the wrong channels", "fc.bias too long",
           "fc.weight of rank 3", "mixed dtypes", "integer weights", "a weight that is a list",
           "x of rank 3", "x with the wrong channels", "x too small", "x that does not fit fc",
           "empty batch", "x of another dtype", "x that is a list", "unknown layer")


@st.composite
def bad_calls(draw, faults=_FAULTS):
    case = draw(net_cases(integral=False))
    params, x, layer = case.params(), case.x(), case.layer
    fault = draw(st.sampled_from(faults))
    exception, argument = ValueError, "params"
    other = "float32" if case.dtype == "float64" else "float64"
    n, c, h, w = x.shape
    if fault == "params not a dict":
        params, exception = list(params.values()), TypeError
    elif fault == "missing key":
        del params[draw(st.sampled_from(PARAM_NAMES))]
    elif fault == "unexpected key":
        params["conv3.weight"] = params["conv2.weight"]
    elif fault == "conv1 kernel not 3x3":
        params["conv1.weight"] = params["conv1.weight"][:, :, :2, :2].copy()
    elif fault == "conv1.bias too long":
        params["conv1.bias"] = np.concatenate([params["conv1.bias"], params["conv1.bias"][:1]])
    elif fault == "conv2 reading the wrong channels":
        w2 = params["conv2.weight"]
        params["conv2.weight"] = np.concatenate([w2, w2[:, :1]], axis=1)
    elif fault == "fc.bias too long":
        params["fc.bias"] = np.concatenate([params["fc.bias"], params["fc.bias"][:1]])
    elif fault == "fc.weight of rank 3":
        params["fc.weight"] = params["fc.weight"][None]
    elif fault == "mixed dtypes":
        name = draw(st.sampled_from(PARAM_NAMES[1:]))
        params[name], exception = params[name].astype(other), TypeError
    elif fault == "integer weights":
        params = {k: v.astype(np.int64) for k, v in params.items()}
        exception = TypeError
    elif fault == "a weight that is a list":
        name = draw(st.sampled_from(PARAM_NAMES))
        params[name], exception = params[name].tolist(), TypeError
    else:
        argument = "x"
        if fault == "x of rank 3":
            x = x[0]
        elif fault == "x with the wrong channels":
            x = np.concatenate([x, x[:, :1]], axis=1)
        elif fault == "x too small":
            x = x[..., :3, :]
        elif fault == "x that does not fit fc":
            x = np.zeros((n, c, h + 2, w), case.dtype)
        elif fault == "empty batch":
            x = x[:0]
        elif fault == "x of another dtype":
            x, exception = x.astype(other), TypeError
        elif fault == "x that is a list":
            x, exception = x.tolist(), TypeError
        elif fault == "unknown layer":
            layer = draw(st.sampled_from(("conv3", "Conv1", "", "conv1.weight", 0, None)))
            argument = "layer"
    return BadCall(params, x, layer, fault, exception, argument)



# ------------------------------------------------------------ op table


def _forward_tolerance(case: Case, expected) -> Any:
    params, x = case.args
    bounds = layer_bounds(params, x, x.dtype)
    return (bounds["fc"], {name: bounds[name] for name in LAYERS})


def _penalty_tolerance(case: Case, expected) -> Tolerance:
    params, x, layer = case.args
    return penalty_bound_of(params, x, layer, x.dtype)


def _bad(op: str):
    faults = _FAULTS if op == "penalty" else tuple(f for f in _FAULTS if f != "unknown layer")

    def to_case(bad: BadCall):
        args = (bad.params, bad.x, bad.layer) if op == "penalty" else (bad.params, bad.x)
        return bad_case(args, bad.exception, bad.argument, bad.why, ("params", "x", "layer")[:len(args)])

    return lambda: bad_calls(faults).map(to_case)


OPS = (
    OpSpec(
        name="forward",
        topic="capture",
        arg_names=("params", "x"),
        cases=lambda: net_cases().map(lambda c: Case((c.params(), c.x()))),
        bad_cases=_bad("forward"),
        tolerance_of=_forward_tolerance,
    ),
    OpSpec(
        name="penalty",
        topic="capture",
        arg_names=("params", "x", "layer"),
        cases=lambda: net_cases().map(lambda c: Case((c.params(), c.x(), c.layer))),
        bad_cases=_bad("penalty"),
        tolerance_of=_penalty_tolerance,
    ),
)

PROPERTIES = ()
