"""jax, imported before anything else in ``crosscheck.jax_impl``, so that a missing jax says which extra installs it."""

from refs.checks.common import import_framework

jax = import_framework("jax", package="crosscheck.jax_impl", extra="jax")
