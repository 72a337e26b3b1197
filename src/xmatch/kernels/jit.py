"""The one place JIT flags are set for every kernel.

``fastmath`` stays off: the kernels promise results identical to astropy to 1e-9 deg, and
reassociated floating point would break ties and boundary decisions unpredictably.
``cache`` writes compiled code next to the package so later processes start fast.
"""

from __future__ import annotations

import numba

FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

#: Serial kernels (called per query inside parallel loops, or on small inputs).
jit = numba.njit(**FLAGS)

#: Kernels whose outer loop is a ``numba.prange`` over queries or rows.
parallel_jit = numba.njit(parallel=True, **FLAGS)

