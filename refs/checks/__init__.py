"""Framework-free argument checks, shared by all three implementations.

``refs``, ``torch_impl`` and ``crosscheck.jax_impl`` call the same function
before they compute anything, so one bad input raises one exception class with
one message everywhere, and it does so before any device kernel could assert
(CUDA) or clamp (JAX). Only NumPy is imported here; arrays of the other
frameworks are read through ``.shape``, ``.dtype`` and a host copy.
"""
