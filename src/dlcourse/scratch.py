"""A multilayer perceptron written by hand in NumPy.

This is the network the course builds before it touches a framework: every
forward formula, gradient and optimizer update is spelled out here, so that the
tests can hold each one against torch autograd and ``torch.optim``.

Conventions (chosen to match PyTorch, so the comparison is exact):

* A layer computes ``z = a @ W + b`` with ``W`` shaped ``(in, out)``. Rows are
  samples, so the work is a few large matmuls per batch and no transposes are
  copied.
* ``mse`` is the mean over all elements (``torch.nn.functional.mse_loss``);
  ``cross_entropy`` takes logits and averages over the batch
  (``torch.nn.functional.cross_entropy``).
* Penalties act on weights only, not biases, and are not divided by the batch
  size: ``l1 * sum|W| + l2 / 2 * sum W**2``, whose gradient ``l2 * W`` is
  exactly what ``weight_decay=l2`` adds in ``torch.optim``.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

import numpy as np

from . import _blas

__all__ = [
    "Activation", "ReLU", "Sigmoid", "Tanh", "Linear", "Softmax",
    "ACTIVATIONS", "get_activation",
    "softmax", "log_softmax", "penalty", "penalty_grad", "mse", "cross_entropy", "LOSSES",
    "INITS", "init_weights",
    "Optimizer", "SGD", "RMSprop", "Adam", "NAdam", "OPTIMIZERS", "make_optimizer",
    "MLP",
]


def _bad(param: str, value, choices) -> ValueError:
    """One message format for every rejected argument, so callers can rely on it."""
    return ValueError(f"invalid {param}={value!r}; valid choices: {choices}")


def _check_choice(param: str, value, choices: Iterable[str]) -> str:
    choices = list(choices)
    if not isinstance(value, str) or value.lower() not in choices:
        raise _bad(param, value, ", ".join(choices))
    return value.lower()


def _check_positive(param: str, value, integer: bool = False, allow_zero: bool = False):
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "an integer" if integer else "a number"
        raise _bad(param, value, f"{what} {'>= 0' if allow_zero else '> 0'}")
    return value


# --------------------------------------------------------------------------- activations


class Activation:
    """Element-wise nonlinearity.

    ``forward(z, out=)`` may work in place (``out=z``) to save memory traffic.
    ``gradient(z)`` is the derivative da/dz at ``z`` (what you would write on
    paper). ``backward(a, grad)`` maps dL/da to dL/dz using the *output* ``a``,
    which is all that backprop keeps, so the pre-activation need not be cached.
    """

    name = "activation"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, z):
        return self.forward(z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    name = "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def gradient(self, z):
        return (z > 0).astype(z.dtype)

    def backward(self, a, grad, out=None):
        return np.multiply(grad, a > 0, out=out)


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z, out=None):
        # 0.5 * (1 + tanh(z / 2)) never overflows and is faster than 1 / (1 + exp(-z)).
        out = np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out

    def gradient(self, z):
        s = self.forward(z)
        return s * (1 - s)

    def backward(self, a, grad, out=None):
        d = 1 - a
        d *= a
        return np.multiply(grad, d, out=out)


class Tanh(Activation):
    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def gradient(self, z):
        return 1 - np.tanh(z) ** 2

    def backward(self, a, grad, out=None):
        d = np.multiply(a, a)
        np.subtract(1, d, out=d)
        return np.multiply(grad, d, out=out)


class Linear(Activation):
    name = "linear"

    def forward(self, z, out=None):
        if out is None:
            return z.copy()
        if out is not z:
            np.copyto(out, z)
        return out

    def gradient(self, z):
        return np.ones_like(z)

    def backward(self, a, grad, out=None):
        return Linear.forward(self, grad, out=out)


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax; subtracting the row max keeps exp from overflowing."""
    out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax via log-sum-exp, exact where log(softmax) would underflow."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Softmax(Activation):
    """Softmax over the last axis.

    It is not element-wise, so ``gradient`` returns the full Jacobian per row
    and ``backward`` is the Jacobian-vector product ``a * (g - <g, a>)`` (the
    Jacobian is symmetric). With cross-entropy the model skips both and uses the
    combined gradient ``p - y`` on the logits.
    """

    name = "softmax"

    def forward(self, z, out=None):
        return softmax(z, out=out)

    def gradient(self, z):
        p = softmax(z)
        return np.einsum("ni,ij->nij", p, np.eye(p.shape[-1], dtype=p.dtype)) - p[:, :, None] * p[:, None, :]

    def backward(self, a, grad, out=None):
        dot = np.einsum("ij,ij->i", grad, a)[:, None]
        out = np.subtract(grad, dot, out=out)
        out *= a
        return out


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "linear": Linear, "softmax": Softmax}
HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "linear")


def get_activation(name: str) -> Activation:
    """Activation instance by name (``relu``, ``sigmoid``, ``tanh``, ``linear``, ``softmax``)."""
    return ACTIVATIONS[_check_choice("activation", name, ACTIVATIONS)]()


# --------------------------------------------------------------------------- losses


def penalty(weights: Sequence[np.ndarray], l1: float = 0.0, l2: float = 0.0) -> float:
    """``l1 * sum|W| + l2 / 2 * sum W**2`` over all weight matrices."""
    value = 0.0
    for w in weights:
        if l1:
            value += l1 * float(np.abs(w).sum())
        if l2:
            value += 0.5 * l2 * float(np.vdot(w, w))
    return value


def penalty_grad(w: np.ndarray, l1: float = 0.0, l2: float = 0.0) -> np.ndarray:
    """Gradient of :func:`penalty` w.r.t. one weight matrix (sign(0) = 0, like torch)."""
    g = np.zeros_like(w)
    if l1:
        g += l1 * np.sign(w)
    if l2:
        g += l2 * w
    return g


def _check_penalty(l1, l2):
    _check_positive("l1", l1, allow_zero=True)
    _check_positive("l2", l2, allow_zero=True)


def _targets_like(pred: np.ndarray, target) -> np.ndarray:
    """Integer labels become one-hot rows (by indexing); anything else must match ``pred``."""
    target = np.asarray(target)
    if target.ndim == 1 and pred.ndim == 2 and np.issubdtype(target.dtype, np.integer):
        onehot = np.zeros_like(pred)
        onehot[np.arange(len(target)), target] = 1
        return onehot
    if target.shape != pred.shape:
        raise _bad("target", f"array of shape {target.shape}", f"shape {pred.shape} or integer labels of length {len(pred)}")
    return target.astype(pred.dtype, copy=False)


def mse(pred: np.ndarray, target, weights: Sequence[np.ndarray] = (), l1: float = 0.0,
        l2: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements plus penalty; returns (value, dL/dpred).

    Weight gradients of the penalty come from :func:`penalty_grad`.
    """
    _check_penalty(l1, l2)
    diff = pred - _targets_like(pred, target)
    value = float(np.vdot(diff, diff)) / diff.size + penalty(weights, l1, l2)
    diff *= 2.0 / diff.size
    return value, diff


def cross_entropy(logits: np.ndarray, target, weights: Sequence[np.ndarray] = (), l1: float = 0.0,
                  l2: float = 0.0) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy on *logits*, batch mean, plus penalty; returns (value, dL/dlogits).

    ``target`` is integer labels or rows of probabilities. Taking logits lets the
    gradient collapse to ``(softmax(z) - y) / n``, which is both cheaper and
    stable where ``log(p)`` would be ``-inf``.
    """
    _check_penalty(l1, l2)
    n = logits.shape[0]
    target = np.asarray(target)
    logp = log_softmax(logits)
    grad = np.exp(logp)
    if target.ndim == 1 and np.issubdtype(target.dtype, np.integer):
        rows = np.arange(n)
        value = -float(logp[rows, target].sum()) / n
        grad[rows, target] -= 1
    else:
        target = _targets_like(logits, target)
        value = -float(np.vdot(target, logp)) / n
        grad -= target
    grad /= n
    return value + penalty(weights, l1, l2), grad


LOSSES = {"mse": mse, "cross_entropy": cross_entropy}


# --------------------------------------------------------------------------- initialisation

#: Scale of the naive schemes: "small random numbers", the thing Glorot fixes.
NAIVE_SCALE = 0.05
INITS = ("uniform", "normal", "glorot", "xavier")


def init_weights(fan_in: int, fan_out: int, scheme: str = "glorot", rng: np.random.Generator | None = None,
                 dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Weight ``(fan_in, fan_out)`` and zero bias for one layer.

    * ``uniform``: U(-0.05, 0.05); ``normal``: N(0, 0.05**2) -- fixed scale,
      independent of width, kept to show why it fails in deep nets.
    * ``glorot``/``xavier``: Glorot *uniform*, U(-r, r) with
      r = sqrt(6 / (fan_in + fan_out)), same as ``torch.nn.init.xavier_uniform_``;
      it keeps activation variance roughly constant across layers.
    """
    scheme = _check_choice("init", scheme, INITS)
    _check_positive("fan_in", fan_in, integer=True)
    _check_positive("fan_out", fan_out, integer=True)
    rng = np.random.default_rng() if rng is None else rng
    shape = (fan_in, fan_out)
    if scheme == "uniform":
        w = rng.uniform(-NAIVE_SCALE, NAIVE_SCALE, shape)
    elif scheme == "normal":
        w = rng.normal(0.0, NAIVE_SCALE, shape)
    else:
        r = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-r, r, shape)
    return w.astype(dtype), np.zeros(fan_out, dtype=dtype)


# --------------------------------------------------------------------------- optimizers


class Optimizer:
    """Updates a list of arrays in place from a matching list of gradients.

    State (momentum buffers, step count) is created lazily on the first
    ``step`` and indexed by position, so always pass the parameters in the
    same order. Formulas follow ``torch.optim`` line by line.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = float(_check_positive("lr", lr))
        self.weight_decay = float(_check_positive("weight_decay", weight_decay, allow_zero=True))
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self.t = 0

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            self._update(i, p, g)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def _buf(self, i: int, name: str, like: np.ndarray) -> np.ndarray:
        st = self.state.setdefault(i, {})
        if name not in st:
            st[name] = np.zeros_like(like)
        return st[name]


class SGD(Optimizer):
    """``torch.optim.SGD``: buf = m*buf + (1-dampening)*g (buf = g at step 1);
    nesterov uses g + m*buf; then p -= lr * direction."""

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(lr, weight_decay)
        self.momentum = float(_check_positive("momentum", momentum, allow_zero=True))
        self.dampening = float(dampening)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise _bad("momentum", momentum, "> 0 with dampening=0 for nesterov=True")
        self.nesterov = bool(nesterov)

    def _update(self, i, p, g):
        if self.momentum:
            st = self.state.setdefault(i, {})
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        # scratch buffer: one multiply into it, one subtract; no temporaries.
        tmp = np.multiply(g, self.lr, out=self._buf(i, "scratch", p))
        p -= tmp


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: v = alpha*v + (1-alpha)*g^2; p -= lr*g/(sqrt(v)+eps)
    (optionally centered and with momentum, as in torch)."""

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False):
        super().__init__(lr, weight_decay)
        self.alpha, self.eps = float(alpha), float(eps)
        self.momentum, self.centered = float(momentum), bool(centered)

    def _update(self, i, p, g):
        v = self._buf(i, "square_avg", p)
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            ga = self._buf(i, "grad_avg", p)
            ga += (1 - self.alpha) * (g - ga)
            avg = np.sqrt(v - ga * ga) + self.eps
        else:
            avg = np.sqrt(v) + self.eps
        if self.momentum > 0:
            buf = self._buf(i, "momentum_buffer", p)
            buf *= self.momentum
            buf += g / avg
            p -= self.lr * buf
        else:
            p -= self.lr * g / avg


class Adam(Optimizer):
    """``torch.optim.Adam``: bias-corrected moments,
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)

    def _update(self, i, p, g):
        m, v = self._buf(i, "exp_avg", p), self._buf(i, "exp_avg_sq", p)
        m += (1 - self.beta1) * (g - m)
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        bc1 = 1 - self.beta1 ** self.t
        bc2 = 1 - self.beta2 ** self.t
        denom = np.sqrt(v) / np.sqrt(bc2) + self.eps
        p -= (self.lr / bc1) * m / denom


class NAdam(Optimizer):
    """``torch.optim.NAdam``: Adam with Nesterov momentum and the warm-up schedule
    mu_t = b1 * (1 - 0.5 * 0.96^(t * momentum_decay))."""

    def __init__(self, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps, self.momentum_decay = float(eps), float(momentum_decay)
        self.mu_product = 1.0

    def step(self, params, grads):
        t = self.t + 1
        self.mu = self.beta1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))
        self.mu_next = self.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        self.mu_product *= self.mu
        super().step(params, grads)

    def _update(self, i, p, g):
        m, v = self._buf(i, "exp_avg", p), self._buf(i, "exp_avg_sq", p)
        m += (1 - self.beta1) * (g - m)
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        denom = np.sqrt(v / (1 - self.beta2 ** self.t)) + self.eps
        p -= (self.lr * (1 - self.mu) / (1 - self.mu_product)) * g / denom
        p -= (self.lr * self.mu_next / (1 - self.mu_product * self.mu_next)) * m / denom


OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam")


def make_optimizer(name: str, lr: float | None = None, **kwargs) -> Optimizer:
    """Optimizer by name; ``lr=None`` takes torch's default for that optimizer.

    ``momentum`` and ``nesterov`` are SGD with momentum 0.9 by default (plain /
    Nesterov); other keyword arguments go to the class (betas, eps, alpha,
    weight_decay, momentum_decay, ...).
    """
    name = _check_choice("optimizer", name, OPTIMIZERS)
    if lr is not None:
        _check_positive("lr", lr)
        kwargs["lr"] = lr
    if name == "sgd":
        return SGD(**kwargs)
    if name in ("momentum", "nesterov"):
        kwargs.setdefault("momentum", 0.9)
        return SGD(nesterov=name == "nesterov", **kwargs)
    return {"rmsprop": RMSprop, "adam": Adam, "nadam": NAdam}[name](**kwargs)


# --------------------------------------------------------------------------- the network


def _matmul_into(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float = 1.0, beta: float = 0.0,
                 trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``c = alpha * op(a) @ op(b) + beta * c`` in place: the training loop's matmul.

    ``beta=1`` lets the SGD update ride inside the gradient's matmul (``W -= a.T @ delta``);
    a separate ``W -= dW`` reads and writes every weight once more, which for the 784x500
    layer costs about half as much as the matmul itself. NumPy's matmul has no beta, so this
    calls NumPy's own BLAS gemm (``dlcourse._blas``) and falls back to NumPy where that is
    not available or the arrays are not C-ordered.
    """
    gemm = _blas.gemm(c.dtype)
    if (gemm is not None and c.flags.c_contiguous and c.flags.writeable and a.flags.c_contiguous
            and b.flags.c_contiguous and a.dtype == b.dtype == c.dtype and c.size and a.size and b.size):
        return gemm(c, a, b, alpha, beta, trans_a, trans_b)
    product = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if beta == 0.0:
        np.multiply(product, alpha, out=c)
    else:
        c *= beta
        c += alpha * product
    return c


class MLP:
    """Fully connected network, e.g. ``MLP([784, 500, 250, 100, 10])``.

    ``hidden`` is the activation of every hidden layer, ``output`` is
    ``softmax`` (classification) or ``linear`` (regression, or logits).
    Parameters live in ``weights[i]`` (in, out) and ``biases[i]`` (out,).
    Use float64 for gradient checks, float32 (default) for speed.
    """

    def __init__(self, sizes: Sequence[int], hidden: str = "sigmoid", output: str = "softmax",
                 init: str = "glorot", seed: int | None = 0, dtype=np.float32):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
            raise _bad("sizes", sizes, "a sequence of >= 2 positive integers, e.g. [784, 500, 10]")
        for s in sizes:
            if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s <= 0:
                raise _bad("sizes", list(sizes), "a sequence of >= 2 positive integers, e.g. [784, 500, 10]")
        self.hidden_name = _check_choice("hidden", hidden, HIDDEN_ACTIVATIONS)
        self.output_name = _check_choice("output", output, OUTPUT_ACTIVATIONS)
        self.init = _check_choice("init", init, INITS)
        try:
            dt = np.dtype(dtype)
        except TypeError:
            dt = None
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise _bad("dtype", dtype, "float32, float64")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise _bad("seed", seed, "None or an integer >= 0")
        self.sizes = [int(s) for s in sizes]
        self.dtype = dt
        self.seed = seed
        self.hidden = get_activation(self.hidden_name)
        self.output = get_activation(self.output_name)
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w, b = init_weights(fan_in, fan_out, self.init, rng, dt)
            self.weights.append(w)
            self.biases.append(b)
        self.history_ = None
        self._cache: list[np.ndarray] = []
        self._logits: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"MLP({self.sizes}, hidden={self.hidden_name!r}, output={self.output_name!r}, "
                f"init={self.init!r}, seed={self.seed}, dtype={self.dtype.name})")

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def params(self) -> list[np.ndarray]:
        """``[W0, b0, W1, b1, ...]``, the order optimizers and ``backward`` use."""
        return [p for wb in zip(self.weights, self.biases) for p in wb]

    # -- forward / backward -------------------------------------------------------------

    def _as_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise _bad("x", f"array of shape {x.shape}", f"2-D array with {self.sizes[0]} columns")
        return x.astype(self.dtype, copy=False)

    def _forward(self, x: np.ndarray, ws: dict | None = None) -> np.ndarray:
        """Forward pass caching each layer's output; ``ws`` holds preallocated buffers."""
        cache = [x]
        a = x
        last = self.n_layers - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if ws is None:
                z = a @ w + b
            else:  # bias first, then gemm accumulates onto it (beta=1)
                z = ws["z"][i][: len(x)]
                z[...] = b
                _matmul_into(z, a, w, beta=1.0)
            if i < last:
                a = self.hidden.forward(z, out=z)
            elif self.output_name == "softmax":
                self._logits = z
                a = softmax(z, out=None if ws is None else ws["p"][: len(x)])
            else:
                self._logits = a = z
            cache.append(a)
        self._cache = cache
        return a

    def forward(self, x) -> np.ndarray:
        """Network output for ``x`` (n, in); caches activations for :meth:`backward`."""
        return self._forward(self._as_input(x))

    def backward(self, grad: np.ndarray, wrt: str = "output", ws: dict | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Gradients ``[(dW, db), ...]`` from dL/d(output) of the last :meth:`forward`.

        ``wrt="logits"`` means ``grad`` is already dL/dz of the last layer (as
        cross-entropy gives it). The input gradient of the first layer is never
        needed, so it is not computed.
        """
        wrt = _check_choice("wrt", wrt, ("output", "logits"))
        if not self._cache:
            raise RuntimeError("call forward() before backward()")
        return self._backprop(self._delta_out(grad, wrt), ws)

    def _delta_out(self, grad: np.ndarray, wrt: str) -> np.ndarray:
        """dL/dz of the last layer from dL/d(output) or dL/d(logits)."""
        if wrt == "output" and self.output_name == "softmax":
            return self.output.backward(self._cache[-1], grad)
        return grad

    def _backprop(self, delta: np.ndarray, ws: dict | None = None, sgd_step: bool = False):
        """Walk the layers backwards from the last layer's dL/dz.

        ``sgd_step=False`` returns ``[(dW, db), ...]``. ``sgd_step=True`` expects
        ``delta = lr * dL/dz`` and updates each layer in place instead, right
        after its input gradient has been taken from the old weights; the weight
        update then rides inside the gradient's own matmul (see ``_matmul_into``).
        """
        cache = self._cache
        n = cache[0].shape[0]
        out = []
        for i in range(self.n_layers - 1, -1, -1):
            if i > 0 and ws is None:  # the input gradient of the first layer is never needed
                g = delta @ self.weights[i].T
            elif i > 0:
                g = _matmul_into(ws["g"][i - 1][:n], delta, self.weights[i], trans_b=True)
            db = np.sum(delta, axis=0, out=None if ws is None else ws["db"][i])
            if sgd_step:  # W -= a.T @ (lr * dL/dz), inside the matmul
                _matmul_into(self.weights[i], cache[i], delta, alpha=-1.0, beta=1.0, trans_a=True)
                self.biases[i] -= db
            elif ws is None:
                out.append((cache[i].T @ delta, db))
            else:
                out.append((_matmul_into(ws["dw"][i], cache[i], delta, trans_a=True), db))
            if i > 0:
                delta = self.hidden.backward(cache[i], g, out=g)
        return out[::-1]

    def _loss_grad(self, out, y, loss, l1, l2):
        """Loss value and the gradient to start backprop from (plus which tensor it is)."""
        weights = self.weights if (l1 or l2) else ()
        if loss == "cross_entropy":
            if self.output_name == "softmax":
                # p - y straight from the cached probabilities; no second softmax.
                n = out.shape[0]
                y = np.asarray(y)
                if y.ndim == 1:
                    rows = np.arange(n)
                    p_true = out[rows, y]
                    value = -float(np.log(np.maximum(p_true, np.finfo(out.dtype).tiny)).sum()) / n
                    grad = out.copy()
                    grad[rows, y] -= 1
                else:
                    y = _targets_like(out, y)
                    value = -float(np.vdot(y, log_softmax(self._logits))) / n
                    grad = out - y
                grad /= n
                return value + penalty(weights, l1, l2), grad, "logits"
            value, grad = cross_entropy(out, y, weights, l1, l2)
            return value, grad, "logits"
        value, grad = mse(out, y, weights, l1, l2)
        return value, grad, "output"

    def loss_and_grads(self, x, y, loss: str = "cross_entropy", l1: float = 0.0, l2: float = 0.0):
        """Forward + loss + backward on one batch: ``(value, [(dW, db), ...])``, penalty included."""
        loss = _check_choice("loss", loss, LOSSES)
        _check_penalty(l1, l2)
        out = self.forward(x)
        value, grad, wrt = self._loss_grad(out, self._as_target(y, len(out), loss), loss, l1, l2)
        grads = self.backward(grad, wrt=wrt)
        if l1 or l2:
            grads = [(dw + penalty_grad(w, l1, l2), db) for (dw, db), w in zip(grads, self.weights)]
        return value, grads

    # -- training ----------------------------------------------------------------------

    def _as_target(self, y, n: int, loss: str) -> np.ndarray:
        y = np.asarray(y)
        k = self.sizes[-1]
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            if len(y) != n or (n and (y.min() < 0 or y.max() >= k)):
                raise _bad("y", f"labels of length {len(y)} in [{y.min() if n else ''}, {y.max() if n else ''}]",
                           f"{n} integer labels in [0, {k})")
            return y
        if y.shape != (n, k):
            raise _bad("y", f"array of shape {y.shape}", f"{n} integer labels or a ({n}, {k}) array")
        return y.astype(self.dtype, copy=False)

    def _workspace(self, n: int) -> dict:
        s, dt = self.sizes, self.dtype
        return {
            "x": np.empty((n, s[0]), dt),
            "z": [np.empty((n, k), dt) for k in s[1:]],
            "p": np.empty((n, s[-1]), dt),
            "g": [np.empty((n, k), dt) for k in s[1:-1]],
            "dw": [np.empty_like(w) for w in self.weights],
            "db": [np.empty_like(b) for b in self.biases],
        }

    def fit(self, x, y, epochs: int = 10, batch_size: int = 64, optimizer: str = "sgd", lr: float | None = None,
            loss: str = "cross_entropy", l1: float = 0.0, l2: float = 0.0, x_val=None, y_val=None,
            seed: int | None = None, progress: bool = False, **optimizer_kwargs):
        """Mini-batch training; returns a DataFrame with one row per epoch.

        Columns: epoch, train_loss, train_acc (running means over the epoch's
        batches, before each update), val_loss, val_acc (NaN without
        validation data), seconds (training time of the epoch, validation
        excluded). ``y`` is integer labels or an (n, out) target array (then
        accuracy compares arg-maxes). Batches are contiguous slices of a fresh
        seeded permutation each epoch; ``seed=None`` derives it from the model
        seed, so a run is reproducible by default. Extra keyword arguments go
        to the optimizer (momentum, betas, eps, weight_decay, ...).
        """
        import pandas as pd

        _check_positive("epochs", epochs, integer=True)
        _check_positive("batch_size", batch_size, integer=True)
        optimizer = _check_choice("optimizer", optimizer, OPTIMIZERS)
        if lr is not None:
            _check_positive("lr", lr)
        loss = _check_choice("loss", loss, LOSSES)
        _check_penalty(l1, l2)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise _bad("seed", seed, "None or an integer >= 0")
        x = self._as_input(x)
        n = len(x)
        if n == 0:
            raise _bad("x", "array with 0 rows", "at least one sample")
        y = self._as_target(y, n, loss)
        if (x_val is None) != (y_val is None):
            raise _bad("x_val/y_val", "only one given", "both or neither")
        if x_val is not None:
            x_val = self._as_input(x_val)
            y_val = self._as_target(y_val, len(x_val), loss)
        opt = make_optimizer(optimizer, lr, **optimizer_kwargs)

        x = np.ascontiguousarray(x)
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        rng = np.random.default_rng(seed if seed is not None else [0 if self.seed is None else self.seed, 1])
        bs = min(int(batch_size), n)
        ws = self._workspace(bs)
        params = self.params()
        # Plain SGD: backprop is linear in the upstream gradient, so feeding lr * dL/dz
        # yields lr * gradients, and each layer can be updated as soon as it is passed.
        fused_sgd = isinstance(opt, SGD) and not (opt.momentum or opt.weight_decay or l1 or l2)
        rows = []
        for epoch in range(1, int(epochs) + 1):
            start = time.perf_counter()
            perm = rng.permutation(n)
            total_loss, correct = 0.0, 0
            for lo in range(0, n, bs):
                idx = perm[lo:lo + bs]
                m = len(idx)
                xb = np.take(x, idx, axis=0, out=ws["x"][:m], mode="clip")  # idx is a permutation slice
                yb = y[idx]
                out = self._forward(xb, ws)
                value, grad, wrt = self._loss_grad(out, yb, loss, l1, l2)
                total_loss += value * m
                correct += int(np.count_nonzero(out.argmax(axis=1) == labels[idx]))
                delta = self._delta_out(grad, wrt)
                if fused_sgd:
                    delta *= opt.lr
                    self._backprop(delta, ws, sgd_step=True)
                    opt.t += 1
                    continue
                grads = self._backprop(delta, ws)
                if l1 or l2:
                    for (dw, _), w in zip(grads, self.weights):
                        dw += penalty_grad(w, l1, l2)
                opt.step(params, [g for pair in grads for g in pair])
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
        self._cache = []
        self.history_ = pd.DataFrame(rows, columns=["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"])
        return self.history_

    # -- inference ---------------------------------------------------------------------

    def _outputs(self, x, batch_size: int = 4096) -> np.ndarray:
        """Forward in chunks (bounded memory), nothing cached."""
        x = self._as_input(x)
        chunks = [self._forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        self._cache = []
        if not chunks:
            return np.empty((0, self.sizes[-1]), self.dtype)
        return np.concatenate(chunks)

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities; a linear output is read as logits and softmaxed."""
        out = self._outputs(x)
        return out if self.output_name == "softmax" else softmax(out)

    def predict(self, x) -> np.ndarray:
        """Arg-max class per row."""
        return self._outputs(x).argmax(axis=1)

    def evaluate(self, x, y, loss: str = "cross_entropy", l1: float = 0.0, l2: float = 0.0) -> tuple[float, float]:
        """``(loss, accuracy)`` on a data set; accuracy compares arg-maxes for array targets."""
        loss = _check_choice("loss", loss, LOSSES)
        _check_penalty(l1, l2)
        out = self._outputs(x)
        y = self._as_target(y, len(out), loss)
        weights = self.weights if (l1 or l2) else ()
        if loss == "cross_entropy":
            logits = np.log(np.maximum(out, np.finfo(out.dtype).tiny)) if self.output_name == "softmax" else out
            value, _ = cross_entropy(logits, y, weights, l1, l2)
        else:
            value, _ = mse(out, y, weights, l1, l2)
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return value, float(np.mean(out.argmax(axis=1) == labels))
