"""numba kernels: HEALPix, epoch propagation, and searches over a sorted HEALPix index.

Pure ``@njit`` functions on arrays and scalars (flags in :mod:`xmatch.kernels.jit`); the
validating public API over them is :mod:`xmatch.index`.
"""
