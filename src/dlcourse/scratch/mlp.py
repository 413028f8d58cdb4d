"""The multilayer perceptron: dense layers and activations chained, trained by backpropagation.

Read this after `layers`, `activations`, `losses` and `optimizers`: it only puts them together.

* ``forward`` runs the layers in order and keeps each layer's input;
* ``backward`` runs them in reverse: each layer turns dL/dz into the gradients of its weight
  and bias and into dL/da for the layer below, and the activation between two layers turns
  that dL/da into the dL/dz of the layer below;
* ``fit`` repeats forward, loss, backward and an optimizer step over shuffled mini-batches
  and records one row of history per epoch.

Everything is plain NumPy (``@`` for every matrix product); the tests check every gradient
against torch autograd and every optimizer against torch.optim.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from .. import validate
from .activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, get_activation, softmax
from .layers import INITS, dense_backward, dense_forward, init_weights
from .losses import LOSSES, check_penalty, cross_entropy, mse, penalty, penalty_grad
from .optimizers import make_optimizer

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]


class MLP:
    """Fully connected network, e.g. ``MLP([784, 500, 250, 100, 10])``.

    ``hidden`` is the activation of every hidden layer; ``output`` is "softmax"
    (class probabilities) or "identity" (regression, or raw scores). The parameters are plain
    arrays: ``weights[i]`` of shape (inputs, outputs) and ``biases[i]`` of shape (outputs,).
    float32 (the default) is fast; float64 is what the gradient checks use.
    """

    def __init__(self, sizes: Sequence[int], hidden: str = "sigmoid", output: str = "softmax",
                 init: str = "xavier_uniform", seed: int | None = 0, dtype=np.float32):
        self.sizes = list(validate.int_list("sizes", sizes, allow_empty=False))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes={sizes!r} is not valid; it needs at least the input and the output width, "
                             "e.g. [784, 500, 10]")
        self.hidden_name = validate.choice("hidden", hidden, HIDDEN_ACTIVATIONS)
        self.output_name = validate.choice("output", output, OUTPUT_ACTIVATIONS)
        self.init = validate.choice("init", init, INITS)
        if seed is not None:
            validate.non_negative_int("seed", seed)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype={dtype!r} is not valid; choose one of: float32, float64")
        self.seed = seed
        self.hidden = get_activation(self.hidden_name)
        self.output = get_activation(self.output_name)
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w, b = init_weights(fan_in, fan_out, self.init, rng, self.dtype)
            self.weights.append(w)
            self.biases.append(b)
        self.history_: pd.DataFrame | None = None
        self._inputs: list[np.ndarray] = []  # what the last forward pass keeps for backward
        self._logits: np.ndarray | None = None
        self._output: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"MLP({self.sizes}, hidden={self.hidden_name!r}, output={self.output_name!r}, "
                f"init={self.init!r}, seed={self.seed}, dtype={self.dtype.name})")

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def params(self) -> list[np.ndarray]:
        """``[W0, b0, W1, b1, ...]``: the order of the gradients an optimizer receives."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    # -- forward and backward --------------------------------------------------------------

    def _forward(self, a: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The logits (last layer's z) of a batch, and the input of every layer."""
        inputs = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(a)
            z = dense_forward(a, w, b)
            a = self.hidden.forward(z) if i < self.n_layers - 1 else z
        return a, inputs

    def forward(self, x) -> np.ndarray:
        """The network's output for a batch x (n, inputs); keeps what `backward` needs."""
        self._logits, self._inputs = self._forward(self._as_input(x))
        self._output = self.output.forward(self._logits)
        return self._output

    def backward(self, grad: np.ndarray, wrt: str = "output") -> list[tuple[np.ndarray, np.ndarray]]:
        """Gradients ``[(dW, db), ...]`` of every layer, given dL/d(output) of the last `forward`.

        ``wrt="logits"`` says that `grad` is already dL/dz of the last layer (as
        `losses.cross_entropy` returns it), so the output activation is skipped.
        """
        wrt = validate.choice("wrt", wrt, ("output", "logits"))
        if self._logits is None:
            raise RuntimeError("call forward() before backward()")
        delta = self.output.backward(self._output, grad) if wrt == "output" else grad
        grads = []
        for i in reversed(range(self.n_layers)):
            a = self._inputs[i]
            grad_w, grad_b, grad_a = dense_backward(a, self.weights[i], delta, input_grad=i > 0)
            grads.append((grad_w, grad_b))
            if i > 0:  # a is the previous layer's activation output: go through that activation
                delta = self.hidden.backward(a, grad_a)
        return grads[::-1]

    def _loss_and_delta(self, logits: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
        """Loss of a batch and dL/d(logits), where backpropagation starts."""
        if loss == "ce":  # softmax is folded into the loss (see losses.cross_entropy)
            return cross_entropy(logits, y)
        out = self.output.forward(logits)
        value, grad = mse(out, y)
        return value, self.output.backward(out, grad)

    def loss_and_grads(self, x, y, loss: str = "ce", l1: float = 0.0, l2: float = 0.0):
        """Forward, loss and backward on one batch: ``(loss, [(dW, db), ...])``, penalty included."""
        loss = validate.choice("loss", loss, LOSSES)
        l1, l2 = check_penalty(l1, l2)
        self.forward(x)
        value, delta = self._loss_and_delta(self._logits, self._as_target(y, len(self._logits)), loss)
        grads = self.backward(delta, wrt="logits")
        if l1 or l2:
            value += penalty(self.weights, l1, l2)
            grads = [(grad_w + penalty_grad(w, l1, l2), grad_b) for (grad_w, grad_b), w in zip(grads, self.weights)]
        return value, grads

    # -- training ----------------------------------------------------------------------

    def fit(self, x, y, epochs: int = 10, batch_size: int = 64, optimizer: str = "sgd", lr: float | None = None,
            loss: str = "ce", l1: float = 0.0, l2: float = 0.0, x_val=None, y_val=None,
            seed: int | None = None, progress: bool = False, **optimizer_kwargs):
        """Mini-batch training; returns (and keeps as ``history_``) a DataFrame, one row per epoch.

        Columns: epoch, train_loss and train_acc (means over the epoch's batches, each taken
        before its update), val_loss and val_acc (NaN without validation data), seconds (the
        epoch's training time, validation excluded). ``y`` is integer labels or an (n, outputs)
        target array (accuracy then compares arg-maxes). Each epoch visits the samples in a
        fresh random order drawn from ``seed`` (by default from the model's seed, so a run
        repeats exactly). Extra keyword arguments go to the optimizer (momentum, betas, ...).
        """
        validate.positive_int("epochs", epochs)
        validate.positive_int("batch_size", batch_size)
        loss = validate.choice("loss", loss, LOSSES)
        l1, l2 = check_penalty(l1, l2)
        if seed is not None:
            validate.non_negative_int("seed", seed)
        opt = make_optimizer(optimizer, lr, **optimizer_kwargs)
        x = self._as_input(x)
        n = len(x)
        if n == 0:
            raise ValueError("x=array with 0 rows is not valid; it needs at least one sample")
        y = self._as_target(y, n)
        if (x_val is None) != (y_val is None):
            raise ValueError("x_val/y_val=only one given is not valid; pass both or neither")
        if x_val is not None:
            x_val = self._as_input(x_val)
            y_val = self._as_target(y_val, len(x_val))

        labels = y if y.ndim == 1 else y.argmax(axis=1)
        rng = np.random.default_rng(seed if seed is not None else [0 if self.seed is None else self.seed, 1])
        rows = []
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            order = rng.permutation(n)
            total_loss, correct = 0.0, 0
            for lo in range(0, n, batch_size):
                batch = order[lo:lo + batch_size]
                value, grads = self.loss_and_grads(x[batch], y[batch], loss, l1, l2)
                total_loss += value * len(batch)
                correct += int(np.count_nonzero(self._logits.argmax(axis=1) == labels[batch]))
                opt.step(self.params(), [g for pair in grads for g in pair])
            seconds = time.perf_counter() - start
            if not np.isfinite(total_loss):
                raise FloatingPointError(f"training diverged at epoch {epoch} (loss={total_loss}); lower lr")
            row = {"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n,
                   "val_loss": np.nan, "val_acc": np.nan, "seconds": seconds}
            if x_val is not None:
                row["val_loss"], row["val_acc"] = self.evaluate(x_val, y_val, loss=loss, l1=l1, l2=l2)
            rows.append(row)
            if progress:
                print(f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
                      f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  {seconds:.2f}s", flush=True)
        self._inputs, self._logits, self._output = [], None, None
        self.history_ = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        return self.history_

    # -- inference ---------------------------------------------------------------------

    def _logits_in_chunks(self, x, chunk: int = 4096) -> np.ndarray:
        """Logits of a whole data set, a chunk at a time (bounded memory), nothing kept."""
        x = self._as_input(x)
        if len(x) == 0:
            return np.empty((0, self.sizes[-1]), self.dtype)
        return np.concatenate([self._forward(x[i:i + chunk])[0] for i in range(0, len(x), chunk)])

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities: the softmax of the logits (for either output activation)."""
        return softmax(self._logits_in_chunks(x))

    def predict(self, x) -> np.ndarray:
        """The most probable class of each row."""
        return self._logits_in_chunks(x).argmax(axis=1)

    def evaluate(self, x, y, loss: str = "ce", l1: float = 0.0, l2: float = 0.0) -> tuple[float, float]:
        """``(loss, accuracy)`` on a data set; for array targets accuracy compares arg-maxes."""
        loss = validate.choice("loss", loss, LOSSES)
        l1, l2 = check_penalty(l1, l2)
        logits = self._logits_in_chunks(x)
        y = self._as_target(y, len(logits))
        value, _ = self._loss_and_delta(logits, y, loss)
        if l1 or l2:
            value += penalty(self.weights, l1, l2)
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return value, float(np.mean(logits.argmax(axis=1) == labels))

    # -- input checks ------------------------------------------------------------------

    def _as_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x=array of shape {x.shape} is not valid; it must be 2-D with {self.sizes[0]} columns")
        return x.astype(self.dtype, copy=False)

    def _as_target(self, y, n: int) -> np.ndarray:
        """Integer labels in [0, outputs), or an (n, outputs) array of targets."""
        y = np.asarray(y)
        k = self.sizes[-1]
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            if len(y) != n or (n and (y.min() < 0 or y.max() >= k)):
                span = f" in [{y.min()}, {y.max()}]" if len(y) else ""
                raise ValueError(f"y={len(y)} labels{span} is not valid; it must be {n} integer labels in [0, {k})")
            return y
        if y.shape != (n, k):
            raise ValueError(f"y=array of shape {y.shape} is not valid; it must be {n} integer labels "
                             f"or an array of shape ({n}, {k})")
        return y.astype(self.dtype, copy=False)


__all__ = ["MLP", "HISTORY_COLUMNS"]
