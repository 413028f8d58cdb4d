"""NumPy's own BLAS gemm, reached through ctypes, for the one thing NumPy does not expose.

``C = alpha * op(A) @ op(B) + beta * C`` with ``beta=1`` lets an SGD update ride inside the
gradient's matmul (``W -= a.T @ delta`` in one pass over W). NumPy's ``matmul`` has no beta, and
SciPy's BLAS wrappers load a second OpenBLAS whose thread pool stalls NumPy's when calls
alternate (measured: 8 ms instead of 0.3 ms per pair of calls on 2 cores). NumPy's pip wheels
ship OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` with prefixed ILP64 CBLAS symbols;
loading that file again returns the handle NumPy already holds, so the same threads run.

Where NumPy was built otherwise (conda with MKL, macOS Accelerate, a source build) ``gemm``
returns None and callers use NumPy's matmul: slower by one pass over the weights, same result.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from collections.abc import Callable

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL | None:
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


@functools.lru_cache(maxsize=None)
def gemm(dtype) -> Callable | None:
    """``f(c, a, b, alpha, beta, trans_a, trans_b)`` computing ``c = alpha*op(a)@op(b) + beta*c`` in
    place, for C-contiguous float32 / float64 arrays of that dtype; None when unavailable."""
    dtype = np.dtype(dtype)
    lib = _library()
    name = {np.dtype(np.float32): "scipy_cblas_sgemm64_", np.dtype(np.float64): "scipy_cblas_dgemm64_"}.get(dtype)
    if lib is None or name is None or not hasattr(lib, name):
        return None
    fn = getattr(lib, name)
    scalar, i64, ptr = (ctypes.c_float if dtype == np.float32 else ctypes.c_double), ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, scalar, ptr, i64, ptr, i64, scalar, ptr, i64]
    fn.restype = None

    def call(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float, beta: float, trans_a: bool, trans_b: bool):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        # BLAS trusts these sizes and would read past the arrays if they were wrong
        if (a.shape[::-1] if trans_a else a.shape) != (m, k) or (b.shape[::-1] if trans_b else b.shape) != (k, n):
            raise ValueError(f"shapes do not multiply into c {c.shape}: a {a.shape} (trans_a={trans_a}), "
                             f"b {b.shape} (trans_b={trans_b})")
        fn(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k,
           alpha, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], beta, c.ctypes.data, n)
        return c

    return call
