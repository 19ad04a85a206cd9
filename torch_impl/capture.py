"""Intermediate capture with forward hooks on a ``torch.nn.Module``, as the course teaches it.

``SmallNet`` is the network of :mod:`refs.checks.capture` built from standard
layers (``nn.Conv2d``, ``nn.ReLU``, ``nn.MaxPool2d``, ``nn.Flatten``,
``nn.Linear``) and loaded with given weights. Two hook tools sit on top:

* :func:`capture_outputs`, a context manager that registers a forward hook on each
  named submodule and stores what it returns -- a *clone*, so that an
  in-place op later in the forward pass (``nn.ReLU(inplace=True)``, ``x +=
  ...``) cannot overwrite the stored value (pytorch/pytorch#95617), and not
  detached, so that a loss on it back-propagates. The hooks are removed when
  the block exits, normally or by an exception.
* :class:`Regularizer`, the deck's class corrected: the deck's ``__call__``
  takes ``(input, output)`` where torch calls a hook with ``(module, input,
  output)``, so it raises ``TypeError`` on the first forward; and it relies on
  ``__del__`` to remove its hook, which never runs while the module lives
  (the module's hook dict holds the regularizer). This one is a forward
  *pre*-hook (it must see the input before an in-place module changes it),
  with ``remove()`` and a ``with`` form.

``forward`` and ``penalty`` use them on a ``SmallNet`` whose parameters are
swapped for the given tensors (``torch.func.functional_call``), so that both
are differentiable with respect to the weights the caller passes.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from refs.capture import init_params as _init_params_numpy
from refs.checks.common import fail
from refs.network import (
    CONV1_KERNEL,
    CONV1_PADDING,
    CONV2_KERNEL,
    LAYERS,
    PARAM_NAMES,
    PENALTY_LAYER,
    POOL,
)
from torch_impl._host import check_input, check_layer, check_params


class SmallNet(nn.Module):
    """The network with named layers ``conv1, relu1, pool1, conv2, relu2, flatten, fc``.

    Args:
        params: weights keyed like ``state_dict`` (NumPy arrays or tensors of
            one float dtype); their values are copied into the layers, which
            are created with that dtype and on the first tensor's device.
        inplace: use ``nn.ReLU(inplace=True)``, which overwrites the conv
            layers' outputs in place -- what :func:`capture_outputs`'s clone is for.

    Raises:
        TypeError, ValueError: bad weights, as in :func:`forward`.

    >>> net = SmallNet(init_params(0))
    >>> [name for name, _ in net.named_children()]
    ['conv1', 'relu1', 'pool1', 'conv2', 'relu2', 'flatten', 'fc']
    >>> net(torch.zeros(2, 1, 6, 6, dtype=torch.float64)).shape
    torch.Size([2, 4])
    """

    def __init__(self, params, *, inplace: bool = False):
        super().__init__()
        arch = check_params("SmallNet", params)
        first = params[PARAM_NAMES[0]]
        kw = dict(dtype=getattr(torch, arch.dtype),
                  device=first.device if isinstance(first, torch.Tensor) else None)
        self.conv1 = nn.Conv2d(arch.in_channels, arch.channels1, CONV1_KERNEL,
                               padding=CONV1_PADDING, **kw)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.pool1 = nn.MaxPool2d(POOL)
        self.conv2 = nn.Conv2d(arch.channels1, arch.channels2, CONV2_KERNEL, **kw)
        self.relu2 = nn.ReLU(inplace=inplace)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(arch.features, arch.classes, **kw)
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.as_tensor(params[name]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.pool1(x)
        x = self.relu2(self.conv2(x))
        return self.fc(self.flatten(x))


@contextmanager
def capture_outputs(module: nn.Module, names):
    """Record the outputs of ``module``'s submodules ``names`` while the block runs.

    Yields a dict ``{name: [output, ...]}``, one list per name in ``names``
    order, which every call of that submodule appends to: a submodule that
    runs twice in one forward (a shared ``nn.ReLU``, say) contributes two
    entries, in call order, as Flax's ``sow`` does. Each entry is a clone of
    the output taken when the hook fires, still attached to the autograd
    graph. On exit -- normal or by an exception -- every hook this call
    registered is removed, so later forwards neither run hooks nor grow the
    lists; the dict keeps what was recorded.

    Args:
        module: any ``nn.Module``.
        names: names of submodules as ``module.named_modules()`` gives them
            (``""`` is ``module`` itself), each at most once.

    Raises:
        TypeError: ``names`` given as one string, or not strings.
        ValueError: a name that is not a submodule of ``module``, or a name
            given twice.

    >>> net = SmallNet(init_params(0))
    >>> with capture_outputs(net, ["conv1", "pool1"]) as kept:
    ...     y = net(torch.ones(1, 1, 6, 6, dtype=torch.float64))
    >>> {name: [tuple(t.shape) for t in outs] for name, outs in kept.items()}
    {'conv1': [(1, 2, 6, 6)], 'pool1': [(1, 2, 3, 3)]}
    >>> sum(len(m._forward_hooks) for m in net.modules())  # removed on exit
    0
    """
    fn = "capture_outputs"
    if isinstance(names, str):
        fail(TypeError, fn, f"names must be a list of submodule names, got the string {names!r} "
                            f"(write [{names!r}])")
    names = tuple(names)
    modules = dict(module.named_modules())
    for name in names:
        if not isinstance(name, str):
            fail(TypeError, fn, f"names must hold strings, got {type(name).__name__} {name!r}")
        if name not in modules:
            fail(ValueError, fn, f"names contains {name!r}, which is not a submodule of "
                                 f"{type(module).__name__}; its submodules are {[n for n in modules if n]}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        fail(ValueError, fn, f"names lists {twice[0]!r} more than once")

    kept = {name: [] for name in names}
    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(_recorder(kept[name])))
        yield kept
    finally:
        for handle in handles:
            handle.remove()


def _recorder(store: list):
    def hook(module, input, output):
        store.append(_clone(output))

    return hook


def _clone(output):
    """A copy the module's later in-place ops cannot reach; ``clone`` keeps the graph."""
    if isinstance(output, torch.Tensor):
        return output.clone()
    if isinstance(output, (tuple, list)):
        return type(output)(_clone(o) for o in output)
    return output


class Regularizer:
    """The deck's regularizer, corrected: ``loss = input[0].pow(2).mean()`` of the hooked module.

    Registered as a forward *pre*-hook, called as ``hook(module, args)``
    before the module runs: the input it squares is what the module receives,
    even when the module then overwrites it in place (a forward hook on
    ``nn.ReLU(inplace=True)`` would see the input already rectified). ``loss``
    is recomputed on every forward and stays attached to the graph, so
    ``(criterion + reg.loss).backward()`` trains through it. Remove the hook
    with :meth:`remove` or by using the regularizer as a context manager; do
    not rely on garbage collection: the module's hook dict keeps it alive.

    >>> net = SmallNet(init_params(0))
    >>> with Regularizer(net.fc) as reg:
    ...     y = net(torch.zeros(1, 1, 6, 6, dtype=torch.float64))
    >>> reg.loss.shape, len(net.fc._forward_pre_hooks)
    (torch.Size([]), 0)
    """

    def __init__(self, module: nn.Module):
        self.loss = None
        self._handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.loss = args[0].pow(2).mean()

    def remove(self) -> None:
        """Unregister the hook; calling it again does nothing."""
        self._handle.remove()

    def __enter__(self) -> Regularizer:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def init_params(seed=0, *, in_channels=1, channels=(2, 3), num_classes=4, image_size=(6, 6),
                dtype="float64"):
    """``refs.capture.init_params``'s weights as CPU tensors (the same numbers); ``dtype``
    may also be a torch dtype.

    >>> init_params(0, dtype="float32")["conv1.bias"].dtype
    torch.float32
    """
    numpy = _init_params_numpy(seed, in_channels=in_channels, channels=channels,
                               num_classes=num_classes, image_size=image_size, dtype=dtype)
    return {name: torch.from_numpy(w) for name, w in numpy.items()}


def forward(params, x):
    """The network's output and every layer's output, as ``refs.capture.forward``.

    The intermediates are recorded by :func:`capture_outputs` on a :class:`SmallNet`
    that runs with the given tensors as its parameters, so they are
    differentiable with respect to ``params`` (and ``x``).

    Returns:
        ``(out, intermediates)``, ``intermediates`` a dict over :data:`LAYERS`.

    >>> out, kept = forward(init_params(0), torch.ones(2, 1, 6, 6, dtype=torch.float64))
    >>> out.shape, list(kept) == list(LAYERS)
    (torch.Size([2, 4]), True)
    """
    check_input("forward", x, check_params("forward", params))
    params, x = _tensors(params), torch.as_tensor(x)
    net = SmallNet(params)
    with capture_outputs(net, LAYERS) as kept:
        out = functional_call(net, params, (x,))
    for name, outs in kept.items():
        if len(outs) != 1:  # SmallNet runs each layer once; anything else is a bug here
            raise RuntimeError(f"forward(): layer {name!r} ran {len(outs)} times")
    return out, {name: kept[name][0] for name in LAYERS}


def penalty(params, x, layer=PENALTY_LAYER):
    """``refs.capture.penalty``: the mean square of ``layer``'s input, from a :class:`Regularizer`.

    A 0-d tensor, differentiable with respect to ``params``.

    >>> params = init_params(0)
    >>> x = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    >>> bool(penalty(params, x, "conv1") == 1.0)  # conv1's input is x
    True
    """
    check_input("penalty", x, check_params("penalty", params))
    check_layer("penalty", layer)
    params, x = _tensors(params), torch.as_tensor(x)
    net = SmallNet(params)
    with Regularizer(getattr(net, layer)) as reg:
        functional_call(net, params, (x,))
    return reg.loss


def _tensors(params) -> dict[str, torch.Tensor]:
    return {name: w if isinstance(w, torch.Tensor) else torch.from_numpy(np.asarray(w))
            for name, w in params.items()}
