"""What training minimizes: a loss on the outputs plus an optional penalty on the weights.

Each loss returns its value and its gradient with respect to what it was given, which is
where backpropagation starts. The conventions are PyTorch's, so the tests can compare the
numbers exactly:

* "mse": the mean of (pred - target)^2 over all elements (`torch.nn.functional.mse_loss`);
  integer labels are read as one-hot rows.
* "ce" (cross-entropy): takes the *logits* z of the last layer, not probabilities, and
  averages over the batch (`torch.nn.functional.cross_entropy`). Softmax is folded in:
  the gradient collapses to (softmax(z) - y) / n, cheaper than going through the softmax
  Jacobian and finite where log(p) would be -inf.
* Penalties act on weights, not biases, and are not divided by the batch size:
  l1 * sum|W| + l2 / 2 * sum W^2. The gradient of the second term, l2 * W, is exactly what
  ``weight_decay=l2`` adds in ``torch.optim``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import validate, vocabulary
from .activations import log_softmax

#: The vocabulary's losses; both are implemented here.
LOSSES = vocabulary.LOSSES


def penalty(weights: Sequence[np.ndarray], l1: float = 0.0, l2: float = 0.0) -> float:
    """l1 * sum|W| + l2 / 2 * sum W^2 over all weight matrices."""
    value = 0.0
    for w in weights:
        value += l1 * float(np.abs(w).sum()) + 0.5 * l2 * float(np.sum(w * w))
    return value


def penalty_grad(w: np.ndarray, l1: float = 0.0, l2: float = 0.0) -> np.ndarray:
    """Gradient of `penalty` with respect to one weight matrix (sign(0) = 0, as in torch)."""
    return l1 * np.sign(w) + l2 * w


def check_penalty(l1, l2) -> tuple[float, float]:
    """Both strengths as floats >= 0, or a ValueError naming the bad one."""
    return validate.non_negative_float("l1", l1), validate.non_negative_float("l2", l2)


def one_hot(labels: np.ndarray, classes: int, dtype=np.float32) -> np.ndarray:
    """Row i is all zeros except a 1 in column labels[i]."""
    rows = np.zeros((len(labels), classes), dtype=dtype)
    rows[np.arange(len(labels)), labels] = 1
    return rows


def _is_labels(target: np.ndarray) -> bool:
    return target.ndim == 1 and np.issubdtype(target.dtype, np.integer)


def _dense_target(pred: np.ndarray, target) -> np.ndarray:
    """Integer labels as one-hot rows; any other target must have the shape of `pred`."""
    target = np.asarray(target)
    if _is_labels(target) and pred.ndim == 2:
        return one_hot(target, pred.shape[1], pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"target=array of shape {target.shape} is not valid; it must have the shape of "
                         f"the predictions {pred.shape}, or be {len(pred)} integer labels")
    return target.astype(pred.dtype, copy=False)


def mse(pred: np.ndarray, target, weights: Sequence[np.ndarray] = (), l1: float = 0.0,
        l2: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean squared error plus penalty: (value, dL/dpred).

    The penalty's gradient with respect to each weight matrix comes from `penalty_grad`.
    """
    l1, l2 = check_penalty(l1, l2)
    diff = pred - _dense_target(pred, target)
    value = float(np.sum(diff * diff)) / diff.size + penalty(weights, l1, l2)
    return value, 2.0 * diff / diff.size


def cross_entropy(logits: np.ndarray, target, weights: Sequence[np.ndarray] = (), l1: float = 0.0,
                  l2: float = 0.0) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy on logits, batch mean, plus penalty: (value, dL/dlogits).

    ``target`` is integer labels or rows of probabilities (one-hot or soft).
    """
    l1, l2 = check_penalty(l1, l2)
    n = logits.shape[0]
    logp = log_softmax(logits)
    y = _dense_target(logits, target)
    value = -float(np.sum(y * logp)) / n
    grad = (np.exp(logp) - y) / n
    return value + penalty(weights, l1, l2), grad


__all__ = ["LOSSES", "penalty", "penalty_grad", "check_penalty", "one_hot", "mse", "cross_entropy"]
