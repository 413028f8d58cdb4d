"""The course's names, each list defined once, each word with one meaning.

Every module that accepts one of these names (the torch models and optimizers, the NumPy MLP of
`dlcourse.scratch`, the search space of lab 8, the notebooks' parameters) imports its list from
here, so that "xavier_normal" means the same thing everywhere and a misspelled name is caught
by `validate.choice` with the same list of choices. This module imports nothing heavy (no torch),
so the NumPy code and the command line can use it.
"""

from __future__ import annotations

#: Hidden-unit nonlinearities. "identity" is no nonlinearity (a linear layer).
ACTIVATIONS = {
    "relu": "max(0, x)",
    "sigmoid": "1 / (1 + exp(-x))",
    "tanh": "hyperbolic tangent",
    "leaky_relu": "max(0.01 x, x)",
    "elu": "x if x > 0 else exp(x) - 1",
    "gelu": "x Phi(x), Phi the standard normal CDF",
    "silu": "x sigmoid(x)",
    "identity": "x (no nonlinearity)",
}

#: Weight initializations; biases always start at zero, except under "default".
INITS = {
    "default": "PyTorch's own (Kaiming-uniform weights and uniform biases)",
    "xavier_normal": "Glorot normal: N(0, 2 / (fan_in + fan_out))",
    "xavier_uniform": "Glorot uniform: U(-r, r), r = sqrt(6 / (fan_in + fan_out))",
    "he": "Kaiming normal for ReLU: N(0, 2 / fan_in)",
    "uniform": "U(-0.05, 0.05), a fixed scale whatever the width",
    "normal": "N(0, 0.05^2), a fixed scale whatever the width",
}
#: The fixed scale of the "uniform" and "normal" schemes (Keras' defaults): the thing Glorot fixes.
PLAIN_INIT_SCALE = 0.05

#: Optimizers, with torch.optim's default betas and eps; "momentum" is SGD with momentum,
#: "nesterov" SGD with Nesterov momentum.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam", "adamw")

#: Losses. "ce": cross-entropy on logits; "mse": squared error (softmax against one-hot for labels).
LOSSES = ("ce", "mse")

#: Image data sets (torchvision) and the 1-D target functions of the approximation lab.
DATASETS = ("mnist", "fashion-mnist")
FUNCTIONS = ("sinc", "sign")

#: The output type of a Plotly figure's JSON: the figures write it beside their HTML (JupyterLab
#: draws it), the book's Sphinx extension skips it (the book shows the HTML).
PLOTLY_MIME = "application/vnd.plotly.v1+json"

__all__ = ["ACTIVATIONS", "INITS", "PLAIN_INIT_SCALE", "OPTIMIZERS", "LOSSES", "DATASETS", "FUNCTIONS",
           "PLOTLY_MIME"]
