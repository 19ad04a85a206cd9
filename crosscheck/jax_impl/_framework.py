"""jax, imported before anything else in ``crosscheck.jax_impl``, so that a missing jax says
which extra installs it; and how the public functions take their array arguments."""

import numpy as np

from refs.checks.common import import_framework

jax = import_framework("jax", package="crosscheck.jax_impl", extra="jax")


def as_array(x):
    """``x`` as a ``jax.Array`` without compiling anything: an array (a tracer too) as it
    is, a NumPy array by ``jax.device_put``, anything else (lists, Python scalars, with
    their weak types) by ``jnp.asarray``.

    ``jnp.asarray`` is not free on arrays in jax 0.10: on a NumPy array it compiles a
    ``stage`` program for every new shape, and on a tracer it binds
    ``convert_element_type``, which under an eager ``jax.vjp`` is one more compiled
    program per shape. (The cross-check lowers a few thousand programs per run; each
    costs ~10 ms even when the persistent cache holds it.)
    """
    if isinstance(x, jax.Array):
        return x
    if isinstance(x, np.ndarray):
        return jax.device_put(x)
    return jax.numpy.asarray(x)


def on_host(x) -> bool:
    """Whether every shard of the concrete array ``x`` lives in host memory (a CPU device),
    where NumPy can read it without a transfer."""
    return all(d.platform == "cpu" for d in x.devices())
