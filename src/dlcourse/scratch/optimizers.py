"""The six optimizers of the course, written out by hand.

Every optimizer turns a gradient g into a change of the parameter p. Plain SGD steps against
the gradient; momentum keeps a running sum of past steps so that consistent directions speed
up and oscillations cancel; RMSprop divides by a running root-mean-square of the gradient so
that every parameter moves at a similar pace; Adam does both, with a correction for the
running averages starting at zero; NAdam adds Nesterov's look-ahead to Adam.

Each formula follows ``torch.optim`` line by line (same defaults, same order of operations),
so the tests compare the two to 1e-10. Every update acts element by element on one array,
which is why a list of parameters is handled one array at a time.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import validate, vocabulary


class Optimizer:
    """Updates a list of arrays in place from a matching list of gradients.

    ``state[i]`` holds the running averages of parameter i, created at its first step, so
    pass the parameters in the same order every time. ``t`` counts the steps taken.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = validate.positive_float("lr", lr)
        self.weight_decay = validate.non_negative_float("weight_decay", weight_decay)
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self.t = 0

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay:  # the gradient of weight_decay / 2 * p^2
                g = g + self.weight_decay * p
            self.update(p, g, self.state.setdefault(i, {}))

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Change `p` in place, given its gradient `g` and its own `state`."""
        raise NotImplementedError


class SGD(Optimizer):
    """``torch.optim.SGD``. Without momentum: p -= lr * g. With momentum m:
    buf = m * buf + (1 - dampening) * g (buf = g at the first step), then p -= lr * buf,
    or with Nesterov p -= lr * (g + m * buf)."""

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(lr, weight_decay)
        self.momentum = validate.non_negative_float("momentum", momentum)
        self.dampening = validate.non_negative_float("dampening", dampening)
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(f"momentum={momentum!r} is not valid; nesterov=True needs momentum > 0 and dampening=0")
        self.nesterov = bool(nesterov)

    def update(self, p, g, state):
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                state["momentum_buffer"] *= self.momentum
                state["momentum_buffer"] += (1 - self.dampening) * g
            buf = state["momentum_buffer"]
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: v = alpha * v + (1 - alpha) * g^2, then p -= lr * g / (sqrt(v) + eps);
    optionally centred (v minus the squared running mean of g) and with momentum, as in torch."""

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False):
        super().__init__(lr, weight_decay)
        self.alpha = validate.fraction("alpha", alpha)
        self.eps = validate.non_negative_float("eps", eps)
        self.momentum = validate.non_negative_float("momentum", momentum)
        self.centered = bool(centered)

    def update(self, p, g, state):
        if not state:
            state["square_avg"] = np.zeros_like(p)
        v = state["square_avg"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            mean = state.setdefault("grad_avg", np.zeros_like(p))
            mean += (1 - self.alpha) * (g - mean)
            avg = np.sqrt(v - mean * mean) + self.eps
        else:
            avg = np.sqrt(v) + self.eps
        if self.momentum:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p))
            buf *= self.momentum
            buf += g / avg
            p -= self.lr * buf
        else:
            p -= self.lr * g / avg


class Adam(Optimizer):
    """``torch.optim.Adam``: running means m of g and v of g^2, corrected for starting at zero:
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (validate.fraction("betas", b) for b in betas)
        self.eps = validate.non_negative_float("eps", eps)

    def moments(self, g, state):
        """The running means of the gradient (m) and of its square (v), updated in place."""
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(g), np.zeros_like(g)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - self.beta1) * (g - m)
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        return m, v

    def update(self, p, g, state):
        m, v = self.moments(g, state)
        correction1 = 1 - self.beta1 ** self.t
        correction2 = 1 - self.beta2 ** self.t
        p -= (self.lr / correction1) * m / (np.sqrt(v) / np.sqrt(correction2) + self.eps)


class NAdam(Adam):
    """``torch.optim.NAdam``: Adam whose step looks one momentum step ahead, with the warm-up
    schedule mu_t = b1 * (1 - 0.5 * 0.96^(t * momentum_decay))."""

    def __init__(self, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3):
        super().__init__(lr, betas, eps, weight_decay)
        self.momentum_decay = validate.non_negative_float("momentum_decay", momentum_decay)
        self.mu_product = 1.0

    def step(self, params, grads):
        # The schedule is shared by all parameters, so it advances once per step.
        t = self.t + 1
        self.mu = self.beta1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))
        self.mu_next = self.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        self.mu_product *= self.mu
        super().step(params, grads)

    def update(self, p, g, state):
        m, v = self.moments(g, state)
        denom = np.sqrt(v / (1 - self.beta2 ** self.t)) + self.eps
        p -= (self.lr * (1 - self.mu) / (1 - self.mu_product)) * g / denom
        p -= (self.lr * self.mu_next / (1 - self.mu_product * self.mu_next)) * m / denom


def _sgd(**kwargs) -> SGD:
    return SGD(**kwargs)


def _momentum(**kwargs) -> SGD:
    kwargs.setdefault("momentum", 0.9)
    return SGD(**kwargs)


def _nesterov(**kwargs) -> SGD:
    kwargs.setdefault("momentum", 0.9)
    return SGD(nesterov=True, **kwargs)


_BUILDERS = {"sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov,
             "rmsprop": RMSprop, "adam": Adam, "nadam": NAdam}

#: The vocabulary's optimizers that are written out here ("adamw" is not).
OPTIMIZERS = tuple(name for name in vocabulary.OPTIMIZERS if name in _BUILDERS)


def make_optimizer(name: str, lr: float | None = None, **kwargs) -> Optimizer:
    """An optimizer by name; ``lr=None`` takes torch's default for that optimizer.

    "momentum" and "nesterov" are SGD with momentum 0.9 unless told otherwise. Other keyword
    arguments go to the class: betas, eps, alpha, weight_decay, momentum_decay, ...
    """
    name = validate.choice("optimizer", name, OPTIMIZERS)
    if lr is not None:
        kwargs["lr"] = validate.positive_float("lr", lr)
    return _BUILDERS[name](**kwargs)


__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "NAdam", "OPTIMIZERS", "make_optimizer"]
