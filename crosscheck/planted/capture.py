"""Planted wrong networks, penalties, captures and regularizers; each must be caught.

A torch plant is ``torch_impl.capture`` with one part replaced, brought as an
``api`` (:class:`TorchApi`) so that the properties that build a ``SmallNet``,
enter ``capture_outputs`` or hold a ``Regularizer`` meet the planted part too;
its ``forward`` and ``penalty`` are rebuilt from its parts, as torch_impl's are.
Every plant checks its arguments as the real code does, so that only the
planted bug can be caught.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

import refs.capture as refs_capture
from crosscheck.ops.capture import captured_by_hooks, np_forward
from crosscheck.optable import Plant
from refs.checks.capture import check_init, check_input, check_layer, check_params
from refs.network import LAYERS, PENALTY_LAYER, layer_input

# ------------------------------------------------------------ NumPy plants


def conv1_transposed(params, x):
    """conv1's kernel read as (o, c, b, a): wrong unless every kernel is symmetric."""
    check_input("forward", x, check_params("forward", params))
    swapped = dict(params, **{"conv1.weight": np.swapaxes(params["conv1.weight"], 2, 3).copy()})
    return refs_capture.forward(swapped, x)


def keys_shifted(params, x):
    """Each intermediate filed under the next layer's name (what an off-by-one hook list does)."""
    out, kept = refs_capture.forward(params, x)
    values = list(kept.values())
    return out, dict(zip(LAYERS, values[1:] + values[:1]))


def x_never_checked(params, x):
    """The weights checked, the images not: the loops run on whatever arrives."""
    check_params("forward", params)
    return refs_capture._forward(params, np.asarray(x))


def penalty_of_output(params, x, layer=PENALTY_LAYER):
    """The mean square of the layer's output, where the deck's regularizer takes its input."""
    check_input("penalty", x, check_params("penalty", params))
    check_layer("penalty", layer)
    _, kept = refs_capture.forward(params, x)
    return np.mean(kept[layer] ** 2)


def last_image_wrong_when_large(params, x):
    """The vectorized forward, except that from 2**16 input elements on the last image gets
    the first one's logits (the shape of a kernel that changes path with the size)."""
    check_input("forward", x, check_params("forward", params))
    out, kept = np_forward(params, x)
    if x.size >= 2**16:
        out = out.copy()
        out[-1] = out[0]
        kept = {**kept, "fc": out}
    return out, kept


def init_params_off_grid(seed=0, in_channels=1, channels=(2, 3), num_classes=4,
                         image_size=(6, 6), dtype="float64"):
    """torch's initialization without the 2**-12 grid: float32 and float64 weights differ."""
    check_init("init_params", in_channels, channels, num_classes, image_size, dtype)
    params = refs_capture.init_params(seed, in_channels=in_channels, channels=channels,
                                      num_classes=num_classes, image_size=image_size,
                                      dtype="float64")
    rng = np.random.default_rng([seed, 7])
    return {k: (v + rng.uniform(-1, 1, v.shape) * refs_capture.GRID / 2).astype(dtype)
            for k, v in params.items()}


def init_params_sorted_keys(seed=0, in_channels=1, channels=(2, 3), num_classes=4,
                            image_size=(6, 6), dtype="float64"):
    """The right weights, keyed alphabetically instead of in state_dict order."""
    params = refs_capture.init_params(seed, in_channels=in_channels, channels=channels,
                                      num_classes=num_classes, image_size=image_size, dtype=dtype)
    return dict(sorted(params.items()))


# ------------------------------------------------------------ torch plants


class TorchApi:
    """``torch_impl.capture``'s names with some replaced, resolved on first use (importing the
    plants needs no torch). ``planted`` maps a name to ``factory(api)``; unless planted,
    ``forward`` and ``penalty`` are torch_impl's lines on this api's ``SmallNet``,
    ``capture_outputs`` and ``Regularizer``."""

    def __init__(self, **planted):
        self._planted = {"forward": _forward_on, "penalty": _penalty_on, **planted}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        import torch_impl.capture as real

        value = self._planted[name](self) if name in self._planted else getattr(real, name)
        setattr(self, name, value)
        return value


def _tensors(params):
    import torch

    return {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))
            for k, v in params.items()}


def _forward_on(api):
    def forward(params, x):
        import torch
        from torch.func import functional_call

        check_input("forward", x, check_params("forward", params))
        params, x = _tensors(params), torch.as_tensor(x)
        net = api.SmallNet(params)
        with api.capture_outputs(net, LAYERS) as kept:
            out = functional_call(net, params, (x,))
        return out, {name: kept[name][0] for name in LAYERS}

    return forward


def _penalty_on(api):
    def penalty(params, x, layer=PENALTY_LAYER):
        import torch
        from torch.func import functional_call

        check_input("penalty", x, check_params("penalty", params))
        check_layer("penalty", layer)
        params, x = _tensors(params), torch.as_tensor(x)
        net = api.SmallNet(params)
        with api.Regularizer(getattr(net, layer)) as reg:
            functional_call(net, params, (x,))
        return reg.loss

    return penalty


def _named(api, name: str):
    """The plant's ``fn``: ``api.<name>``, looked up at call time."""

    def call(*args):
        return getattr(api, name)(*args)

    call.__name__ = f"planted_{name}"
    return call


def _capture(store, *, remove="always", check=True, append=True):
    """A capture context recording ``store(module, output)``; ``remove``: "always" (in a finally),
    "on success" (no finally: an exception skips it) or "never"; ``check``: validate
    ``names`` first (with the real context, entered and left at once: nothing stays), or
    only after registering hooks;
    ``append``: one record per call, else only the last call's."""

    def factory(api):
        import torch_impl.capture as real

        @contextmanager
        def capture_outputs(module, names):
            # unchecked: hooks registered first and the names checked afterwards, so that a
            # bad name leaves them behind
            early = [] if check else [m.register_forward_hook(_nothing) for m in module.modules()]
            with real.capture_outputs(module, names):
                pass
            for h in early:
                h.remove()
            modules = dict(module.named_modules())
            kept = {name: [] for name in names}

            def recorder(out):
                return (lambda m, i, o: out.append(store(m, o))) if append else (
                    lambda m, i, o: out.__setitem__(slice(None), [store(m, o)]))

            handles = [modules[name].register_forward_hook(recorder(kept[name]))
                       for name in names]
            if remove == "always":
                try:
                    yield kept
                finally:
                    for h in handles:
                        h.remove()
            elif remove == "on success":
                yield kept
                for h in handles:
                    h.remove()
            else:
                yield kept

        return capture_outputs

    return factory


def _nothing(module, input, output):
    return None


def _clone(module, o):
    return o.clone()


def _detached(module, o):
    return o.detach().clone()


def _itself(module, o):
    return o


def _rectified(module, o):
    return o.clamp(min=0)


def _last_layer_itself(module, o):
    """A clone of every output but a ``Linear``'s (the network's last, where nothing in place
    follows inside the forward)."""
    from torch import nn

    return o if isinstance(module, nn.Linear) else o.clone()


def _capture_plant(bug, **capture_options):
    api = TorchApi(capture_outputs=_capture(**capture_options))
    return Plant("capture_outputs", bug, functools.partial(captured_by_hooks, api), "torch",
                 api=api)


def _penalty_plant(bug, api):
    return Plant("penalty", bug, _named(api, "penalty"), "torch", api=api)


def _output_regularizer(api):
    """A forward hook squaring the module's output: the next layer's input."""

    class Regularizer:
        def __init__(self, module):
            self.loss = None
            self._handle = module.register_forward_hook(self)

        def __call__(self, module, input, output):  # returns None: a value would replace output
            self.loss = output.pow(2).mean()

        def remove(self):
            self._handle.remove()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.remove()

    return Regularizer


def _half_detached_regularizer(api):
    """``mean(h * h.detach())``: the right value, half the gradient."""
    import torch_impl.capture as real

    class Regularizer(real.Regularizer):
        def __call__(self, module, args):
            self.loss = (args[0] * args[0].detach()).mean()

    return Regularizer


def _leaky_regularizer(api):
    """The deck's cleanup: the hook goes in ``__del__`` only, which never runs while the
    module's hook dict holds the regularizer; ``remove()`` and ``with`` do nothing."""

    class Regularizer:
        def __init__(self, module):
            self.loss = None
            self._handle = module.register_forward_pre_hook(self)

        def __del__(self):
            self._handle.remove()

        def __call__(self, module, args):
            self.loss = args[0].pow(2).mean()

        def remove(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    return Regularizer


def _average_gradient_net(api):
    """A max-pool written as ``avg + detach(max - avg)``: the max's value, the average's
    gradient (a quarter to every element of the window)."""
    import torch.nn.functional as F
    from torch import nn

    import torch_impl.capture as real

    class Pool(nn.Module):
        def forward(self, x):
            avg = F.avg_pool2d(x, 2)
            return avg + (F.max_pool2d(x, 2) - avg).detach()

    class SmallNet(real.SmallNet):
        def __init__(self, params, **kw):
            super().__init__(params, **kw)
            self.pool1 = Pool()

    return SmallNet


def _kernel_transposed_forward(api):
    """conv1's 3x3 kernel used transposed (a square kernel: every shape still fits)."""
    import torch_impl.capture as real

    def forward(params, x):
        check_input("forward", x, check_params("forward", params))
        params = _tensors(params)
        return real.forward({**params, "conv1.weight": params["conv1.weight"].transpose(-1, -2)},
                            x)

    return forward


def _channels_last_forward(api):
    """torch_impl.forward, except that images stored channels_last are read mirrored (the
    shape of a kernel that takes another path for another memory format)."""
    import torch

    import torch_impl.capture as real

    def forward(params, x):
        if (isinstance(x, torch.Tensor) and x.dim() == 4 and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            x = x.flip(-1)
        return real.forward(params, x)

    return forward


TRANSPOSED = TorchApi(forward=_kernel_transposed_forward)
CHANNELS_LAST = TorchApi(forward=_channels_last_forward)

# ------------------------------------------------------------ JAX plants


def jax_keys_swapped(params, x):
    """conv1's output filed under relu1 and the other way round."""
    import crosscheck.jax_impl.capture as real

    out, kept = real.forward(params, x)
    kept["conv1"], kept["relu1"] = kept["relu1"], kept["conv1"]
    return out, kept


def jax_average_gradient_forward(params, x):
    """jax_impl.forward with the max-pool's gradient replaced by the average's."""
    import jax.numpy as jnp
    from jax import lax

    import crosscheck.jax_impl.capture as real

    def pool(h):
        n, c, hh, ww = h.shape
        win = h[:, :, :hh // 2 * 2, :ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2)
        avg = win.mean(axis=(3, 5))
        return avg + lax.stop_gradient(real.max_pool(h, 2) - avg)

    check_input("forward", x, check_params("forward", params))
    x = jnp.asarray(x)
    kept = {}
    h = real.conv(x, params["conv1.weight"], params["conv1.bias"], padding=1)
    kept["conv1"] = h
    kept["relu1"] = h = real._relu(h)
    kept["pool1"] = h = pool(h)
    kept["conv2"] = h = real.conv(h, params["conv2.weight"], params["conv2.bias"])
    kept["relu2"] = h = real._relu(h)
    kept["flatten"] = h = h.reshape(h.shape[0], -1)
    kept["fc"] = h = real._linear(h, params["fc.weight"], params["fc.bias"])
    return h, kept


def jax_average_gradient_penalty(params, x, layer=PENALTY_LAYER):
    import jax.numpy as jnp

    check_input("penalty", x, check_params("penalty", params))
    check_layer("penalty", layer)
    before = layer_input(layer)
    h = x if before is None else jax_average_gradient_forward(params, x)[1][before]
    return jnp.mean(jnp.square(h))


def jax_keys_swapped_under_jit(params, x):
    """jax_impl.forward, except when traced under jax.jit: then conv1's output is filed under
    relu1 and the other way round (the shape of a bug in one execution path only)."""
    import jax

    import crosscheck.jax_impl.capture as real

    if not isinstance(x, jax.core.Tracer):
        return real.forward(params, x)
    return jax_keys_swapped(params, x)


AVERAGE_GRADIENT_JAX = SimpleNamespace(forward=jax_average_gradient_forward,
                                       penalty=jax_average_gradient_penalty)

PLANTED = (
    # forward
    Plant("forward", "conv1's kernel transposed", conv1_transposed),
    Plant("forward", "intermediates keyed to the wrong layer", keys_shifted),
    Plant("forward", "x never checked", x_never_checked),
    Plant("forward", "conv1's kernel transposed (torch)", _named(TRANSPOSED, "forward"), "torch",
          api=TRANSPOSED),
    Plant("forward", "conv1 and relu1 swapped in the dict", jax_keys_swapped, "jax"),
    # penalty
    Plant("penalty", "penalty of the layer's output, not its input", penalty_of_output),
    _penalty_plant("a forward hook squaring the output",
                   TorchApi(Regularizer=_output_regularizer)),
    _penalty_plant("mean(h * h.detach()): half the gradient",
                   TorchApi(Regularizer=_half_detached_regularizer)),
    _penalty_plant("forward's capture detached",
                   TorchApi(capture_outputs=_capture(_detached))),
    _penalty_plant("forward's capture rectified", TorchApi(capture_outputs=_capture(_rectified))),
    _penalty_plant("max-pool with the average's gradient",
                   TorchApi(SmallNet=_average_gradient_net)),
    _penalty_plant("the deck's Regularizer cleanup (__del__ only)",
                   TorchApi(Regularizer=_leaky_regularizer)),
    Plant("penalty", "max-pool with the average's gradient (JAX)", jax_average_gradient_penalty,
          "jax", api=AVERAGE_GRADIENT_JAX),
    # capture_outputs
    _capture_plant("records the output itself, not a clone", store=_itself),
    _capture_plant("records detached copies", store=_detached),
    _capture_plant("records the last layer's output itself", store=_last_layer_itself),
    _capture_plant("hooks never removed", store=_clone, remove="never"),
    _capture_plant("hooks removed on success only", store=_clone, remove="on success"),
    _capture_plant("hooks registered before names are checked", store=_clone, check=False),
    _capture_plant("only the last call recorded", store=_clone, append=False),
    # init_params
    Plant("init_params", "weights off the 2**-12 grid", init_params_off_grid),
    Plant("init_params", "keys in alphabetical order", init_params_sorted_keys),
    # wrong only where the regression run goes
    Plant("forward", "mirrored images when stored channels_last",
          _named(CHANNELS_LAST, "forward"), "torch", axis="layout:channels_last",
          api=CHANNELS_LAST),
    Plant("forward", "the last image wrong past 2**16 elements", last_image_wrong_when_large,
          axis="size:large"),
    Plant("forward", "conv1 and relu1 swapped under jax.jit", jax_keys_swapped_under_jit, "jax",
          axis="mode:jit"),
)
