"""The capture properties can fail: each planted wrong implementation must be caught.

Every plant is the real implementation with one bug put in, and it is held
against the very property functions that ``test_capture.py`` runs on the real
ones (imported from there, which pytest's default "prepend" import mode allows:
``tests/`` has no ``__init__.py`` and is on ``sys.path``). A property catches a
plant when it raises an ``AssertionError`` (``Mismatch`` is one); a crash of
another kind does not count, and each test also checks the symptom it expects.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_capture import (
    CONFIGS,
    JAX,
    JAX_JIT,
    LAYERS,
    TORCH,
    Impl,
    NetCase,
    cases_with_coords,
    check_capture_survives_inplace,
    check_finite_differences,
    check_forward,
    check_hooks_removed,
    check_penalty_and_grads,
    fixed_cases,
    net_cases,
    ready,
)


def _runner(check, strategy, max_examples):
    @settings(max_examples=max_examples, phases=[Phase.generate], database=None,
              derandomize=True, deadline=None, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(drawn):
        check(drawn)

    return run


def caught(check, strategy) -> AssertionError:
    """Run ``check`` on drawn cases until it fails (no shrinking); return its AssertionError."""
    with pytest.raises(AssertionError) as info:
        _runner(check, strategy, max(settings.default.max_examples, 40))()
    return info.value


def passes(check, cases) -> None:
    """``check`` holds on each of ``cases`` (run under hypothesis, which its ``assume`` needs)."""
    _runner(check, st.sampled_from(cases), len(cases))()


# ------------------------------------------------------------ torch plants
# Built lazily (torch may be absent): each ``*_plant()`` returns a class whose
# attributes stand in for torch_impl.capture's functions.


def _torch_plant(**overrides):
    """torch_impl.capture's API with some names replaced (a class: hashable, for caches)."""
    import torch_impl.capture as real

    api = {name: overrides.get(name, getattr(real, name))
           for name in ("SmallNet", "Regularizer", "capture_outputs", "forward", "penalty")}
    for name in ("capture_outputs", "forward", "penalty"):
        api[name] = staticmethod(api[name])
    return type("Plant", (), api)


def _forward_with(capture=None, net_class=None):
    """torch_impl.forward with another ``capture`` or network: the same lines."""
    import torch
    from torch.func import functional_call

    import torch_impl.capture as real

    capture = capture or real.capture_outputs
    net_class = net_class or real.SmallNet

    def forward(params, x):
        params = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(v)
                  for k, v in params.items()}
        net = net_class(params)
        with capture(net, LAYERS) as kept:
            out = functional_call(net, params, (torch.as_tensor(x),))
        return out, {name: kept[name][0] for name in LAYERS}

    return forward


def _capture_plant(store, *, remove="always"):
    """A capture context that stores ``store(output)`` and removes its hooks per ``remove``."""

    @contextmanager
    def capture(module, names):
        modules = dict(module.named_modules())
        kept = {name: [] for name in names}
        handles = [modules[name].register_forward_hook(
            lambda m, i, o, out=kept[name]: out.append(store(o))) for name in names]
        if remove == "always":
            try:
                yield kept
            finally:
                for h in handles:
                    h.remove()
        elif remove == "on success":  # no try/finally: an exception skips the cleanup
            yield kept
            for h in handles:
                h.remove()
        else:  # "never"
            yield kept

    return capture


def no_clone_plant():
    """Stores the output tensor itself: the in-place ReLU after conv1 overwrites it."""
    capture = _capture_plant(lambda o: o)
    return _torch_plant(capture_outputs=capture, forward=_forward_with(capture))


def detached_plant():
    """Stores ``output.detach().clone()``: right values, but gradients vanish."""
    capture = _capture_plant(lambda o: o.detach().clone())
    return _torch_plant(capture_outputs=capture, forward=_forward_with(capture))


def never_removed_plant():
    return _torch_plant(capture_outputs=_capture_plant(lambda o: o.clone(), remove="never"))


def removed_on_success_plant():
    return _torch_plant(capture_outputs=_capture_plant(lambda o: o.clone(), remove="on success"))


def leaky_regularizer_plant():
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

    return _torch_plant(Regularizer=Regularizer)


def wrong_layer_penalty_plant():
    """The penalty of ``layer``'s output, i.e. of the next layer's input."""

    class Regularizer:
        def __init__(self, module):
            self._handle = module.register_forward_hook(self)

        def __call__(self, module, input, output):  # returns None: a value would replace output
            self.loss = output.pow(2).mean()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.remove()

    return _torch_plant(penalty=_penalty_with(regularizer=Regularizer))


def transposed_weight_plant():
    """conv1's 3x3 kernel used transposed (a square kernel: every shape still fits)."""
    import torch_impl.capture as real

    def forward(params, x):
        return real.forward({**params, "conv1.weight": params["conv1.weight"].transpose(-1, -2)},
                            x)

    return _torch_plant(forward=forward)


def _penalty_with(net_class=None, regularizer=None):
    """torch_impl.penalty with another network or regularizer: the same lines."""
    from torch.func import functional_call

    import torch_impl.capture as real

    net_class = net_class or real.SmallNet
    regularizer = regularizer or real.Regularizer

    def penalty(params, x, layer="fc"):
        net = net_class(params)
        with regularizer(getattr(net, layer)) as reg:
            functional_call(net, params, (x,))
        return reg.loss

    return penalty


def half_detached_plant():
    """``mean(h * h.detach())``: the right value, half the gradient."""
    import torch_impl.capture as real

    class Regularizer(real.Regularizer):
        def __call__(self, module, args):
            self.loss = (args[0] * args[0].detach()).mean()

    return _torch_plant(penalty=_penalty_with(regularizer=Regularizer))


def average_gradient_pool_plant():
    """A max-pool written as ``avg + detach(max - avg)``: the max's value, the average's
    gradient (a quarter to every element of the window), in every torch path. Its JAX
    twin below is wrong in the very same way."""
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

    return _torch_plant(SmallNet=SmallNet, forward=_forward_with(net_class=SmallNet),
                        penalty=_penalty_with(net_class=SmallNet))


# ------------------------------------------------------------ JAX plants


def _jax_plant(forward, penalty=None):
    import crosscheck.jax_impl.capture as real

    return type("Plant", (), {"forward": staticmethod(forward),
                              "penalty": staticmethod(penalty or real.penalty)})


def wrong_keys_plant():
    """conv1's output filed under relu1 and the other way round."""
    import crosscheck.jax_impl.capture as real

    def forward(params, x):
        out, kept = real.forward(params, x)
        kept["conv1"], kept["relu1"] = kept["relu1"], kept["conv1"]
        return out, kept

    return _jax_plant(forward)


def jax_average_gradient_pool_plant():
    import jax.numpy as jnp
    from jax import lax

    import crosscheck.jax_impl.capture as real
    from refs.network import layer_input

    def pool(h):
        n, c, hh, ww = h.shape
        win = h[:, :, :hh // 2 * 2, :ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2)
        avg = win.mean(axis=(3, 5))
        return avg + lax.stop_gradient(real.max_pool(h, 2) - avg)

    def forward(params, x):
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

    def penalty(params, x, layer="fc"):
        before = layer_input(layer)
        h = x if before is None else forward(params, x)[1][before]
        return jnp.mean(jnp.square(h))

    return _jax_plant(forward, penalty)


# ------------------------------------------------------------ the meta-tests


def _torch(plant) -> Impl:
    return Impl(f"planted {plant.__name__}", "torch-cpu", plant())


def test_capture_without_clone_is_caught_by_the_inplace_check(require_backend):
    ready(require_backend, TORCH)
    impl = _torch(no_clone_plant)
    error = caught(lambda case: check_capture_survives_inplace(impl, case), net_cases())
    assert "captured 'conv1'" in str(error)


@pytest.mark.parametrize("plant", [never_removed_plant, removed_on_success_plant,
                                   leaky_regularizer_plant], ids=lambda p: p.__name__)
def test_hooks_that_stay_are_caught_by_the_hygiene_check(plant, require_backend):
    ready(require_backend, TORCH)
    impl = _torch(plant)
    with pytest.raises(AssertionError, match="left behind|outlived"):
        check_hooks_removed(impl, fixed_cases()[0])


@pytest.mark.parametrize(("plant", "symptom"), [
    (wrong_layer_penalty_plant, "input: 1 of 1 elements differ"),  # the penalty's value
    (detached_plant, "grad["),  # right values, vanished gradients
    (half_detached_plant, "grad["),  # right value, half the gradient
], ids=["wrong_layer_penalty", "detached", "half_detached"])
def test_wrong_or_detached_penalties_are_caught_by_the_gradient_check(plant, symptom,
                                                                      require_backend):
    ready(require_backend, TORCH, JAX_JIT)
    impl = _torch(plant)
    error = caught(lambda case: check_penalty_and_grads(impl, JAX_JIT, case),
                   net_cases(integral=False))
    assert symptom in str(error)


@pytest.mark.parametrize("plant", [transposed_weight_plant, detached_plant],
                         ids=lambda p: p.__name__)
def test_wrong_torch_forwards_are_caught_by_the_forward_check(plant, require_backend):
    """The transposed kernel changes values; the detached capture keeps them (so the
    forward check must pass it) -- its bug is the gradient's, caught above."""
    ready(require_backend, TORCH)
    impl = _torch(plant)
    check = lambda case: check_forward(impl, case)
    if plant is detached_plant:
        passes(check, fixed_cases())
    else:
        assert "intermediates['conv1']" in str(caught(check, net_cases()))


def test_intermediates_under_the_wrong_names_are_caught_by_the_forward_check(require_backend):
    ready(require_backend, JAX)
    impl = Impl("planted wrong_keys", "jax-cpu", wrong_keys_plant())
    error = caught(lambda case: check_forward(impl, case), net_cases())
    assert "intermediates['conv1']" in str(error) or "intermediates['relu1']" in str(error)


def test_gradients_wrong_alike_in_torch_and_jax_are_caught_by_central_differences(
        require_backend):
    """A max-pool with the average's gradient, in every path of both frameworks: values
    right, gradients equal to each other and wrong. Only the third, independent check --
    central differences of the loop reference -- can see it."""
    ready(require_backend, TORCH, JAX)
    torch_plant = _torch(average_gradient_pool_plant)
    jax_plant = Impl("planted average_gradient_pool", "jax-cpu",
                     jax_average_gradient_pool_plant(), jit=True)
    # the torch-vs-JAX comparison is blind to it ...
    passes(lambda case: check_penalty_and_grads(torch_plant, jax_plant, case),
           [NetCase(CONFIGS[0], 0, "float64", False)])
    # ... the finite differences are not
    error = caught(lambda drawn: check_finite_differences(torch_plant, jax_plant, *drawn),
                   cases_with_coords())
    assert "central difference" in str(error)


def test_the_real_implementations_pass_the_checks_the_plants_fail(require_backend):
    """The other half of a meta-test: the same checks, on the real code, on the same cases."""
    ready(require_backend, TORCH, JAX)
    case = NetCase(CONFIGS[1], 3, "float32", False)
    check_capture_survives_inplace(TORCH, case)
    check_hooks_removed(TORCH, case)
    check_forward(TORCH, case)
    check_forward(JAX, case)

