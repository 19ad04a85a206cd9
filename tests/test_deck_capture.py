"""The deck's "Intermediate results and hooks" slides, run as written on ``torch_impl.SmallNet``.

The slides' ``net`` is any network with a ``conv1``; ours is the suite's small
network, built from the weights that ``refs.capture`` runs as loops, so every
value a hook sees can be held against the loop reference. Two of the slides'
snippets do not do what they say; the tests below pin down what they do
instead, and the corrected ``torch_impl.Regularizer`` beside them.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import refs.capture as refs_capture
from crosscheck.backends import Backend
from crosscheck.compare import assert_close
from crosscheck.ops.capture import CONFIGS, NetCase, penalty_bound

CASE = NetCase(CONFIGS[0], 0, "float64", False)  # batch 1, 1 channel, conv1 -> 2 channels, 6x6
TORCH = Backend("torch-cpu")


@pytest.fixture
def net_and_x(require_backend):
    require_backend(TORCH)
    import torch

    from torch_impl.capture import SmallNet

    return SmallNet(CASE.params()), torch.from_numpy(CASE.x())


def _expected_penalty(layer):
    case = CASE._replace(layer=layer)
    return refs_capture.penalty(case.params(), case.x(), layer), penalty_bound(case)


def test_register_a_hook_prints_hook_and_two_shapes(net_and_x, capsys):
    net, x = net_and_x

    def my_hook(module, input, output):
        # module: the module being hooked
        # input:  a tuple of inputs
        # output: a tuple of outputs
        print("hook!", input[0].shape, output[0].shape)

    # register the hook
    net.conv1.register_forward_hook(my_hook)

    # use the hook
    y = net(x)
    # printed: "hook! torch.Size([...]) torch.Size([...])"
    assert capsys.readouterr().out == "hook! torch.Size([1, 1, 6, 6]) torch.Size([2, 6, 6])\n"
    # The slide's comment is wrong about ``output``: torch passes the inputs as a tuple
    # but the output as whatever ``forward`` returned -- here one Tensor. So
    # ``input[0]`` is the whole batch (N, C_in, H, W) while ``output[0]`` is the first
    # image of the output, (C_out, H, W): the batch dim is gone, not a mistake in conv1.
    assert y.shape == (1, 3)


def test_remove_a_hook_with_its_handle(net_and_x, capsys):
    net, x = net_and_x

    def my_hook(module, input, output):
        print("hook!", input[0].shape, output[0].shape)

    # register the hook
    handle = net.conv1.register_forward_hook(my_hook)

    # remove the hook
    handle.remove()

    y = net(x)
    # nothing is printed
    assert capsys.readouterr().out == ""
    assert len(net.conv1._forward_hooks) == 0
    handle.remove()  # a second remove is harmless
    assert y.shape == (1, 3)


class DeckRegularizer:
    """The slide's class, verbatim."""

    def __init__(self, module):
        self.loss = None
        self._handle = module.register_forward_hook(self)

    def __del__(self):
        self._handle.remove()

    def __call__(self, input, output):
        self.loss = input[0].pow(2).mean()


def test_the_decks_regularizer_raises_type_error_on_the_first_forward(net_and_x):
    net, x = net_and_x
    reg = DeckRegularizer(net.fc)
    # A forward hook is called as hook(module, input, output); the slide's __call__
    # takes (input, output), so with self that is 3 positional slots for 4 arguments.
    with pytest.raises(TypeError, match=r"takes 3 positional arguments but 4 were given"):
        net(x)
    assert reg.loss is None
    net.fc._forward_hooks.clear()  # the hook is still registered: see the next test


def test_the_decks_cleanup_in_del_never_runs_while_the_module_lives(net_and_x):
    net, x = net_and_x

    class Fixed(DeckRegularizer):  # the slide's class with the hook signature fixed
        def __call__(self, module, input, output):
            self.loss = input[0].pow(2).mean()

    reg = Fixed(net.fc)
    net(x)
    expected, tol = _expected_penalty("fc")
    assert_close(reg.loss.detach().numpy(), np.asarray(expected), tol)
    # ``del`` drops our name only: the module's hook dict holds the regularizer itself
    # (it *is* the hook), so it is never collected and __del__ never removes the hook
    del reg
    gc.collect()
    assert len(net.fc._forward_hooks) == 1
    hook = next(iter(net.fc._forward_hooks.values()))
    hook.loss = None
    net(x)
    assert hook.loss is not None, "the 'deleted' regularizer still runs on every forward"
    hook._handle.remove()


def test_the_corrected_regularizer_gives_the_loss_of_refs_and_trains(net_and_x):
    import torch

    from torch_impl.capture import Regularizer

    net, x = net_and_x
    with Regularizer(net.fc) as reg:
        y = net(x)
        loss = torch.nn.functional.cross_entropy(y, torch.tensor([1])) + reg.loss
        loss.backward()
    assert len(net.fc._forward_pre_hooks) == 0
    expected, tol = _expected_penalty("fc")
    assert_close(reg.loss.detach().numpy(), np.asarray(expected), tol)
    assert net.conv1.weight.grad.abs().sum() > 0  # the penalty trains conv1 and conv2
    # removed: a later forward leaves the last loss alone
    last = reg.loss
    net(2 * x)
    assert reg.loss is last
    reg.remove()  # idempotent


def test_a_forward_hook_on_an_inplace_module_sees_its_input_already_changed(require_backend):
    """Why the corrected Regularizer is a forward *pre*-hook (pytorch/pytorch#95617)."""
    require_backend(TORCH)
    import torch

    from torch_impl.capture import Regularizer, SmallNet

    net = SmallNet(CASE.params(), inplace=True)
    x = torch.from_numpy(CASE.x())

    seen = {}

    def input_square(module, input, output):  # the slide's penalty, as a forward hook
        seen["loss"] = input[0].pow(2).mean()

    handle = net.relu1.register_forward_hook(input_square)
    with Regularizer(net.relu1) as reg:
        net(x)
    handle.remove()
    relu1_input, tol = _expected_penalty("relu1")  # conv1's output, negatives included
    relu1_output, _ = _expected_penalty("pool1")  # what ReLU(inplace=True) left in place
    assert_close(reg.loss.detach().numpy(), np.asarray(relu1_input), tol)
    assert_close(seen["loss"].detach().numpy(), np.asarray(relu1_output), tol)
    assert abs(relu1_input - relu1_output) > 1e-3  # the two differ: the hook was fooled
