"""Optimizer names to torch.optim optimizers.

Notebooks and sweeps name optimizers as strings (the list is `vocabulary.OPTIMIZERS`); this maps
them onto torch.optim with the fastest public kernel the installed torch offers (fused, else
foreach). `params` may be tensors or param groups with their own lr, momentum and weight decay:
that is how a stack of models whose members differ in those settings trains with one optimizer.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch

from . import fast, validate
from .vocabulary import OPTIMIZERS


def check(name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> str:
    """Validate optimizer arguments without building anything."""
    name = validate.choice("optimizer", name, OPTIMIZERS)
    validate.positive_float("lr", lr)
    validate.fraction("momentum", momentum)
    validate.non_negative_float("weight_decay", weight_decay)
    if name == "nesterov" and momentum == 0:
        raise ValueError("momentum=0 is not valid for optimizer='nesterov'; Nesterov needs momentum > 0")
    return name


def _fast_kernel(cls) -> dict:
    params = inspect.signature(cls.__init__).parameters
    return {"fused": True} if "fused" in params else {"foreach": True}


def _torch_group(name: str, group: dict) -> dict:
    """A param group in torch's terms: `momentum` only where SGD uses it (RMSprop has its own)."""
    group = dict(group)
    momentum = group.pop("momentum")
    check(name, group["lr"], momentum, group["weight_decay"])
    if name in ("sgd", "momentum", "nesterov"):
        group.update(momentum=0.0 if name == "sgd" else momentum, nesterov=name == "nesterov")
    return group


def make(
    name: str,
    params: Iterable[torch.nn.Parameter] | Iterable[dict],
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Build optimizer `name` over `params` (tensors, or param groups: dicts with "params" and any of
    lr, momentum, weight_decay, which override the arguments for that group).

    `momentum` applies to `momentum` and `nesterov` only; plain `sgd`, `rmsprop` and the Adam
    family ignore it (torch's defaults).
    """
    name = check(name, lr, momentum, weight_decay)
    params = list(params)
    if not params or not isinstance(params[0], dict):
        params = [{"params": params}]
    defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
    groups = [_torch_group(name, {**defaults, **g}) for g in params]
    cls = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
           "rmsprop": torch.optim.RMSprop, "adam": fast.Adam, "nadam": torch.optim.NAdam,
           "adamw": torch.optim.AdamW}[name]
    kw = _fast_kernel(cls)
    first = next((p for g in groups for p in g["params"]), None)
    if kw.get("fused") and first is not None and first.device.type not in ("cpu", "cuda", "mps"):
        kw = {}
    return cls(groups, lr=lr, **kw)
