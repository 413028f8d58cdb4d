"""Model builders: MLPs and small CNNs, initialization schemes, parameter counts, and the one
eval-mode chunked forward pass (`forward_in_chunks`) that evaluation, predictions and analyses share.

Builders take plain names and numbers (what a notebook parameter or a YAML profile holds; the
lists of names are in `vocabulary`) and check them before building, so a typo fails with the
list of valid choices.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from . import validate, vocabulary
from .vocabulary import INITS, PLAIN_INIT_SCALE

#: The torch module of each activation name of `vocabulary.ACTIVATIONS` (a test keeps the keys equal).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}
if set(ACTIVATIONS) != set(vocabulary.ACTIVATIONS):
    raise ImportError("models.ACTIVATIONS and vocabulary.ACTIVATIONS name different activations")


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[validate.choice("activation", name, ACTIVATIONS)]()


def init_weights(model: nn.Module, scheme: str = "default") -> nn.Module:
    """Re-initialize every Linear and Conv weight with `scheme`; biases start at zero.

    `default` keeps PyTorch's own (Kaiming-uniform) initialization untouched.
    """
    scheme = validate.choice("init", scheme, INITS)
    if scheme == "default":
        return model
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            w = module.weight
            if scheme == "xavier_normal":
                nn.init.xavier_normal_(w)
            elif scheme == "xavier_uniform":
                nn.init.xavier_uniform_(w)
            elif scheme == "he":
                nn.init.kaiming_normal_(w, nonlinearity="relu")
            elif scheme == "uniform":
                nn.init.uniform_(w, -PLAIN_INIT_SCALE, PLAIN_INIT_SCALE)
            else:
                nn.init.normal_(w, 0.0, PLAIN_INIT_SCALE)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def _check_common(act: str, init: str, dropout: float) -> None:
    validate.choice("activation", act, ACTIVATIONS)
    validate.choice("init", init, INITS)
    validate.fraction("dropout", dropout)


def mlp(
    hidden: Sequence[int] = (100,),
    *,
    in_features: int = 784,
    out_features: int = 10,
    activation: str = "relu",
    batchnorm: bool = False,
    dropout: float = 0.0,
    init: str = "default",
) -> nn.Sequential:
    """A fully connected network: Flatten, then Linear [BatchNorm] activation [Dropout] per hidden layer.

    `hidden=[]` gives a linear model. Batch norm sits before the activation, as in Ioffe & Szegedy.
    """
    hidden = validate.int_list("hidden", hidden)
    validate.positive_int("in_features", in_features)
    validate.positive_int("out_features", out_features)
    _check_common(activation, init, dropout)
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(ACTIVATIONS[activation.lower()]())
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_features))
    return init_weights(nn.Sequential(*layers), init)


def cnn(
    channels: Sequence[int] = (32, 64),
    dense: Sequence[int] = (128,),
    *,
    kernel_size: int = 3,
    pool: bool = True,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    out_features: int = 10,
    activation: str = "relu",
    batchnorm: bool = False,
    dropout: float = 0.0,
    init: str = "default",
) -> nn.Sequential:
    """A small CNN: per entry of `channels` a conv (same padding) [BatchNorm] activation [2x2 max-pool],
    then Flatten and the dense layers of `dense`, then the output layer.
    """
    channels = validate.int_list("channels", channels, allow_empty=False)
    dense = validate.int_list("dense", dense)
    validate.positive_int("kernel_size", kernel_size)
    _check_common(activation, init, dropout)
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for ch in channels:
        layers.append(nn.Conv2d(c, ch, kernel_size, padding=kernel_size // 2))
        if batchnorm:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(ACTIVATIONS[activation.lower()]())
        if pool:
            if h < 2 or w < 2:
                raise ValueError(f"channels={list(channels)!r} is not valid: too many pooled conv layers for a {in_shape} input")
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c = ch
    layers.append(nn.Flatten())
    width = c * h * w
    for d in dense:
        layers.append(nn.Linear(width, d))
        layers.append(ACTIVATIONS[activation.lower()]())
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = d
    layers.append(nn.Linear(width, out_features))
    return init_weights(nn.Sequential(*layers), init)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) live; the CPU for a model with neither.

    Analyses take data wherever it was loaded and move each chunk to the model, so a model
    trained on the GPU can be evaluated on a split that was loaded on the CPU, and back."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def forward_in_chunks(model: nn.Module, x: torch.Tensor, batch_size: int = 10_000, **forward_kwargs) -> torch.Tensor:
    """`model(x)` in eval mode without gradients, `batch_size` rows at a time so a large set fits in
    memory, each chunk moved to the model's device; the model's train/eval mode is restored
    afterwards, even on error. Empty `x` gives an empty tensor without calling the model.
    Outputs are joined along the batch dimension: the first, or the second for a stack's (K, B, ...)
    outputs (`forward_kwargs` holds `shared=True` then)."""
    was_training = model.training
    device = model_device(model)
    model.eval()
    try:
        with torch.no_grad():
            out = [model(x[i:i + batch_size].to(device), **forward_kwargs) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out, dim=1 if forward_kwargs.get("shared") else 0) if out else x.new_empty(0)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def mlp_parameter_count(hidden: Sequence[int], in_features: int, out_features: int) -> int:
    """Weights and biases of a plain MLP, computed without building it."""
    sizes = [in_features, *hidden, out_features]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def matched_hidden(depth: int, target_params: int, in_features: int = 1, out_features: int = 1) -> tuple[int, ...]:
    """Balanced hidden widths for an MLP of `depth` linear layers with about `target_params` parameters.

    The shape rule: every hidden layer has width `w` or `w - 1`, the wider ones first (so the
    widths differ by at most one unit and never grow with depth); among those shapes, the one whose
    parameter count is closest to `target_params` (ties: the more uniform one). The exact count
    is not worth a lopsided net: a 4-4-4-4-4-4-77 stack has the right count but layers so thin
    that a few dead ReLUs cut the signal. For the approximation lab's ~571 parameters this gives
    190 (571 parameters) for 2 layers, 13-13-13-12 (571) for 5 and seven layers of 9 (568) for 8.
    """
    validate.positive_int("depth", depth)
    validate.positive_int("target_params", target_params)
    n_hidden = depth - 1
    if n_hidden == 0:
        return ()
    best: tuple | None = None  # ((distance to the target, layers off the common width), hidden)
    for width in itertools.count(1):
        narrowest = mlp_parameter_count([max(1, width - 1)] * n_hidden, in_features, out_features)
        if best is not None and narrowest - target_params > best[0][0]:
            break  # every wider shape is further from the target
        for wide in range(n_hidden, 0 if width > 1 else n_hidden - 1, -1):  # `wide` layers of `width`, the rest width - 1
            hidden = (width,) * wide + (width - 1,) * (n_hidden - wide)
            err = abs(mlp_parameter_count(hidden, in_features, out_features) - target_params)
            key = (err, min(wide, n_hidden - wide))
            if best is None or key < best[0]:
                best = (key, hidden)
    return best[1]


def matched_mlp(depth: int, target_params: int, *, in_features: int = 1, out_features: int = 1, **kwargs) -> nn.Sequential:
    """An MLP of `depth` linear layers with about `target_params` parameters, balanced widths (see `matched_hidden`)."""
    hidden = matched_hidden(depth, target_params, in_features, out_features)
    return mlp(hidden, in_features=in_features, out_features=out_features, **kwargs)
