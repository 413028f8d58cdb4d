"""A fully connected (dense) layer: where its weights start, its forward formula, its gradients.

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

Where the weights start matters: a network learns only if the signal neither dies nor
explodes on its way through the layers. The fixed-scale schemes ("uniform", "normal": small
random numbers of scale 0.05 whatever the width) are kept to show what goes wrong in a deep
sigmoid network; the Glorot (Xavier) schemes scale the weights by the layer's fan-in and
fan-out so that the variance of the activations and of the gradients stays roughly constant
from layer to layer; "he" does the same for ReLU, which zeroes half of its inputs. The names
and their meanings come from `dlcourse.vocabulary`, so "xavier_uniform" here is the scheme of
`torch.nn.init.xavier_uniform_` in the torch labs.
"""

from __future__ import annotations

import numpy as np

from .. import validate, vocabulary

#: The schemes this package implements, in the vocabulary's order ("default", PyTorch's own
#: per-layer scheme, exists only for torch models).
INITS = tuple(name for name in vocabulary.INITS if name != "default")

#: The fixed scale of "uniform" and "normal".
PLAIN_INIT_SCALE = vocabulary.PLAIN_INIT_SCALE


def init_weights(fan_in: int, fan_out: int, scheme: str = "xavier_uniform",
                 rng: np.random.Generator | None = None, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Weight matrix of shape (fan_in, fan_out) and a zero bias of shape (fan_out,) for one layer.

    "uniform" draws from U(-s, s), "normal" from N(0, s^2), with s given by the scheme:
    0.05 for the plain ones, sqrt(6 / (fan_in + fan_out)) for "xavier_uniform",
    sqrt(2 / (fan_in + fan_out)) for "xavier_normal" and sqrt(2 / fan_in) for "he".
    """
    scheme = validate.choice("init", scheme, INITS)
    validate.positive_int("fan_in", fan_in)
    validate.positive_int("fan_out", fan_out)
    rng = np.random.default_rng() if rng is None else rng
    if scheme in ("uniform", "normal"):
        scale = PLAIN_INIT_SCALE
    elif scheme == "xavier_uniform":
        scale = np.sqrt(6.0 / (fan_in + fan_out))
    elif scheme == "xavier_normal":
        scale = np.sqrt(2.0 / (fan_in + fan_out))
    else:  # "he"
        scale = np.sqrt(2.0 / fan_in)
    if scheme.endswith("uniform"):
        w = rng.uniform(-scale, scale, size=(fan_in, fan_out))
    else:
        w = rng.normal(0.0, scale, size=(fan_in, fan_out))
    return w.astype(dtype), np.zeros(fan_out, dtype=dtype)


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


__all__ = ["INITS", "PLAIN_INIT_SCALE", "init_weights", "dense_forward", "dense_backward"]
