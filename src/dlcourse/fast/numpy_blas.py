"""Plain SGD for the NumPy MLP with the weight update inside the gradient's matmul (opt-in).

Why: the readable step of `dlcourse.scratch.MLP.fit` computes dW = a.T @ delta into a new
array and then runs ``W -= lr * dW``, two more passes over every weight; BLAS gemm computes
``C = alpha * op(A) @ op(B) + beta * C``, so with ``beta=1, alpha=-lr`` the update is written
straight into W by the matmul that computes it. NumPy's ``matmul`` has no beta, and SciPy's
BLAS wrappers load a second OpenBLAS whose threads stall NumPy's when calls alternate, so
this module calls NumPy's own OpenBLAS through ctypes: NumPy's pip wheels ship it as
``numpy.libs/libscipy_openblas64_*.so`` with prefixed ILP64 CBLAS symbols, an internal
detail that can change with any NumPy release. Where NumPy was built otherwise (conda with
MKL, macOS Accelerate, a source build) `gemm` returns None and `matmul_into` uses NumPy's
matmul: slower by one pass over the weights, same result. The step also reuses preallocated
buffers for z and dL/da, and applies the activation in place.

What it gains: ``benchmarks/scratch_throughput.py`` (784-500-250-100-10 sigmoid network,
float32, batch 64, one epoch of 60,000 images) prints both paths side by side:
SEE_BENCHMARK_LINE.

Public fallback: ``MLP.fit(..., fast=False)``, the default. tests/test_scratch.py checks that
both give the same weights (1e-10 in float64) and that `matmul_into` equals NumPy's matmul
for every transpose, with and without the BLAS call.
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
            return ctypes.CDLL(path)  # the handle NumPy already holds: same library, same threads
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


def matmul_into(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float = 1.0, beta: float = 0.0,
                trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``c = alpha * op(a) @ op(b) + beta * c`` in place; NumPy's matmul where the BLAS call
    is unavailable or the arrays are not C-ordered."""
    blas = gemm(c.dtype)
    if (blas is not None and c.flags.c_contiguous and c.flags.writeable and a.flags.c_contiguous
            and b.flags.c_contiguous and a.dtype == b.dtype == c.dtype and c.size and a.size and b.size):
        return blas(c, a, b, alpha, beta, trans_a, trans_b)
    product = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if beta == 0.0:
        np.multiply(product, alpha, out=c)
    else:
        c *= beta
        c += alpha * product
    return c


class FusedSGDStep:
    """One plain-SGD step of an MLP, updating its `weights` and `biases` lists in place.

    ``step(x, loss_and_delta, lr)`` runs the forward pass, asks ``loss_and_delta(logits)`` for
    (loss, dL/dlogits), and walks back: each layer's dL/da is taken from the old weights
    before the gemm that computes its weight gradient writes ``W -= a.T @ (lr * delta)``.
    Backprop is linear in delta, so scaling it by lr once scales every gradient.
    Returns (loss, logits); the logits live in a buffer the next step overwrites.
    """

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], hidden, batch_size: int):
        self.weights, self.biases, self.hidden = weights, biases, hidden
        dtype = weights[0].dtype
        self.z = [np.empty((batch_size, w.shape[1]), dtype) for w in weights]
        self.grad_a = [np.empty((batch_size, w.shape[0]), dtype) for w in weights[1:]]

    def __call__(self, x: np.ndarray, loss_and_delta: Callable, lr: float) -> tuple[float, np.ndarray]:
        m, last = len(x), len(self.weights) - 1
        inputs, a = [], np.ascontiguousarray(x)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(a)
            z = self.z[i][:m]
            z[...] = b  # the bias first, then gemm adds a @ W onto it (beta=1)
            matmul_into(z, a, w, beta=1.0)
            a = self.hidden.forward(z, out=z) if i < last else z
        value, delta = loss_and_delta(a)
        delta = delta * lr
        for i in range(last, -1, -1):
            w = self.weights[i]
            if i > 0:
                grad_a = matmul_into(self.grad_a[i - 1][:m], delta, w, trans_b=True)
            grad_b = delta.sum(axis=0)
            matmul_into(w, inputs[i], delta, alpha=-1.0, beta=1.0, trans_a=True)
            self.biases[i] -= grad_b
            if i > 0:
                delta = self.hidden.backward(inputs[i], grad_a)
        return value, a


__all__ = ["gemm", "matmul_into", "FusedSGDStep"]
