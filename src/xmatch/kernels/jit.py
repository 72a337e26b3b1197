"""The one place JIT flags are set for every kernel, and where the compiled-code cache is
kept honest.

``fastmath`` stays off: the kernels promise results identical to astropy to 1e-9 deg, and
reassociated floating point would break ties and boundary decisions unpredictably.
``cache`` writes compiled code next to the package so later processes start fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def _drop_stale_cache() -> None:
    """Delete numba's cached code when any kernel source changed.

    numba checks only the source file of each cached function, not the files of the
    functions it calls: after a change to ``healpix.py`` alone, the cached search kernels
    would still run the old HEALPix code. A digest of all kernel sources guards them.
    """
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    cache = here / "__pycache__"
    stamp = cache / "xmatch-kernels.sha256"
    try:
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return
        for stale in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            stale.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # a read-only installation: numba then does not cache either
        pass


_drop_stale_cache()

#: Serial kernels (called per query inside parallel loops, or on small inputs).
jit = numba.njit(**FLAGS)

#: A helper inlined into its callers by numba itself (not only by LLVM): for a function that
#: takes arrays and runs once per query, this removes most of the atomic reference counting
#: numba otherwise does around each call.
jit_inline = numba.njit(inline="always", **FLAGS)

#: Kernels whose outer loop is a ``numba.prange`` over queries or rows.
parallel_jit = numba.njit(parallel=True, **FLAGS)
