"""The nonlinearities between the layers, each with its derivative.

Backpropagation needs, for every activation a = f(z), the map from dL/da to dL/dz. For the
element-wise ones that is dL/dz = dL/da * f'(z), and f'(z) can be written with the output a
alone (sigmoid: a (1 - a); tanh: 1 - a^2; ReLU: 1 where a > 0), so the network keeps the
outputs of its layers and nothing else. Each class therefore has

* ``forward(z)``: a = f(z);
* ``gradient(z)``: f'(z), the derivative you would write on paper (used by the tests);
* ``backward(a, grad)``: dL/dz from the output a and the upstream gradient dL/da.

Softmax is not element-wise: it turns a row of scores (logits) into probabilities, so its
derivative is a matrix per row. It serves as the output layer of a classifier, where the
cross-entropy loss folds it in (see `losses.cross_entropy`).

The names come from `dlcourse.vocabulary`; "identity" is no nonlinearity at all.
"""

from __future__ import annotations

import numpy as np

from .. import validate, vocabulary


class Activation:
    """A nonlinearity a = f(z); `out=` lets ``forward`` write into an existing array."""

    name = "activation"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.forward(z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """max(0, z): gradient 1 where the unit is on, 0 where it is off."""

    name = "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def gradient(self, z):
        return (z > 0).astype(z.dtype)

    def backward(self, a, grad):
        return grad * (a > 0)


class Sigmoid(Activation):
    """1 / (1 + exp(-z)), a smooth step from 0 to 1; its slope a (1 - a) is at most 1/4."""

    name = "sigmoid"

    def forward(self, z, out=None):
        # The same function written as (1 + tanh(z / 2)) / 2: exp(-z) would overflow for
        # very negative z (below about -88 in float32), tanh never does.
        return np.multiply(0.5, np.tanh(0.5 * z) + 1.0, out=out)

    def gradient(self, z):
        a = self.forward(z)
        return a * (1 - a)

    def backward(self, a, grad):
        return grad * a * (1 - a)


class Tanh(Activation):
    """tanh(z), a step from -1 to 1 centred on 0; slope 1 - a^2, 1 at z = 0."""

    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def gradient(self, z):
        return 1 - np.tanh(z) ** 2

    def backward(self, a, grad):
        return grad * (1 - a * a)


class Identity(Activation):
    """f(z) = z: a linear layer (regression outputs, logits, or a network without nonlinearity)."""

    name = "identity"

    def forward(self, z, out=None):
        if out is None:
            return z.copy()
        out[...] = z
        return out

    def gradient(self, z):
        return np.ones_like(z)

    def backward(self, a, grad):
        return grad


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise exp(z) / sum(exp(z)); subtracting each row's maximum first keeps exp from
    overflowing and does not change the result."""
    out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log(softmax(z)) by log-sum-exp: exact where softmax would round to 0 and its log to -inf."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Softmax(Activation):
    """Probabilities over the last axis.

    Each output depends on every input of its row, so ``gradient`` returns one Jacobian
    matrix per row, diag(p) - p p^T, and ``backward`` is its product with the upstream
    gradient, p * (g - <g, p>) (the Jacobian is symmetric).
    """

    name = "softmax"

    def forward(self, z, out=None):
        return softmax(z, out=out)

    def gradient(self, z):
        p = softmax(z)
        return p[:, :, None] * np.eye(p.shape[-1], dtype=p.dtype) - p[:, :, None] * p[:, None, :]

    def backward(self, a, grad):
        return a * (grad - (grad * a).sum(axis=-1, keepdims=True))


_CLASSES = {cls.name: cls for cls in (ReLU, Sigmoid, Tanh, Identity, Softmax)}

#: Between the layers: the vocabulary's activations that this package implements.
HIDDEN_ACTIVATIONS = tuple(name for name in vocabulary.ACTIVATIONS if name in _CLASSES)
#: After the last layer: probabilities for classification, or the scores themselves.
OUTPUT_ACTIVATIONS = ("softmax", "identity")
#: Every name `get_activation` accepts.
ACTIVATIONS = HIDDEN_ACTIVATIONS + ("softmax",)


def get_activation(name: str) -> Activation:
    """A fresh activation by name: "relu", "sigmoid", "tanh", "identity" or "softmax"."""
    return _CLASSES[validate.choice("activation", name, ACTIVATIONS)]()


__all__ = ["Activation", "ReLU", "Sigmoid", "Tanh", "Identity", "Softmax", "softmax", "log_softmax",
           "HIDDEN_ACTIVATIONS", "OUTPUT_ACTIVATIONS", "ACTIVATIONS", "get_activation"]
