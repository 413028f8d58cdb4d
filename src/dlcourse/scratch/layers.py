"""A fully connected (dense) layer: its forward formula and its three gradients.

A batch is a matrix with one sample per row. A layer with weight matrix W of shape
(inputs, outputs) and bias b of shape (outputs,) maps the batch `a` (n, inputs) to

    z = a @ W + b                                   (n, outputs)

Writing W as (inputs, outputs), rows as samples, makes the whole batch one matrix product and
matches PyTorch's ``x @ W.T`` with its (outputs, inputs) weights transposed. Given the
gradient of the loss with respect to z, delta = dL/dz (n, outputs), the chain rule gives

    dL/dW = a.T @ delta          each weight collects input times error over the batch
    dL/db = delta summed over the rows
    dL/da = delta @ W.T          the error sent back to the previous layer

The network (`mlp.MLP`) chains these, with an activation between two layers.
"""

from __future__ import annotations

import numpy as np


def dense_forward(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z = a @ W + b for a batch `a` of shape (n, inputs)."""
    return a @ w + b


def dense_backward(a: np.ndarray, w: np.ndarray, delta: np.ndarray,
                   input_grad: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(dL/dW, dL/db, dL/da) from the layer's input `a` and delta = dL/dz.

    ``input_grad=False`` skips dL/da, which the first layer does not need (its input is the
    data, which training does not change): that saves one of the three matrix products.
    """
    grad_w = a.T @ delta
    grad_b = delta.sum(axis=0)
    grad_a = delta @ w.T if input_grad else None
    return grad_w, grad_b, grad_a


__all__ = ["dense_forward", "dense_backward"]
