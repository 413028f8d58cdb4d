"""A multilayer perceptron written by hand in NumPy: the network the course builds before it
touches a framework.

Every forward formula, gradient and optimizer update is spelled out, in plain NumPy, so that
the tests can hold each one against torch autograd and ``torch.optim`` (torch appears in the
tests only). Read the modules in this order:

1. `layers`: a dense layer, z = a @ W + b, its gradients, and where its weights start
   (initializations: uniform, normal, xavier_uniform, xavier_normal, he);
2. `activations`: relu, sigmoid, tanh, identity and softmax, with their derivatives;
3. `losses`: cross-entropy ("ce") and mean squared error ("mse"), and the L1/L2 penalties;
4. `optimizers`: sgd, momentum, nesterov, rmsprop, adam and nadam;
5. `mlp`: the network that chains them, with ``fit``, ``predict`` and ``evaluate``.

Names (of inits, activations, losses, optimizers) come from `dlcourse.vocabulary`, and a bad
argument raises the ValueError of `dlcourse.validate`.

    >>> from dlcourse.scratch import MLP
    >>> net = MLP([784, 500, 10], hidden="relu", seed=0)
    >>> history = net.fit(x_train, y_train, epochs=5, optimizer="adam", lr=1e-3)  # doctest: +SKIP
"""

from .activations import (ACTIVATIONS, HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation, Identity, ReLU,
                          Sigmoid, Softmax, Tanh, get_activation, log_softmax, softmax)
from .layers import INITS, PLAIN_INIT_SCALE, dense_backward, dense_forward, init_weights
from .losses import LOSSES, cross_entropy, mse, one_hot, penalty, penalty_grad
from .mlp import HISTORY_COLUMNS, MLP
from .optimizers import OPTIMIZERS, SGD, Adam, NAdam, Optimizer, RMSprop, make_optimizer

__all__ = [
    "INITS", "PLAIN_INIT_SCALE", "init_weights",
    "dense_forward", "dense_backward",
    "Activation", "ReLU", "Sigmoid", "Tanh", "Identity", "Softmax", "softmax", "log_softmax",
    "ACTIVATIONS", "HIDDEN_ACTIVATIONS", "OUTPUT_ACTIVATIONS", "get_activation",
    "LOSSES", "cross_entropy", "mse", "one_hot", "penalty", "penalty_grad",
    "Optimizer", "SGD", "RMSprop", "Adam", "NAdam", "OPTIMIZERS", "make_optimizer",
    "MLP", "HISTORY_COLUMNS",
]
