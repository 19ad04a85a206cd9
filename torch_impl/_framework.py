"""torch, imported before anything else in ``torch_impl``, so that a missing torch says which extra installs it."""

from refs.checks.common import import_framework

torch = import_framework("torch", package="torch_impl", extra="torch")
