"""Optimizer names to torch.optim optimizers.

Notebooks and sweeps name optimizers as strings; this maps them onto torch.optim with the
fastest kernel the installed torch offers (fused, else foreach).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch

from . import validate

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam", "adamw")


def check(name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> str:
    """Validate optimizer arguments without building anything."""
    name = validate.choice("optimizer", name, OPTIMIZERS)
    validate.positive_float("lr", lr)
    validate.fraction("momentum", momentum)
    validate.non_negative_float("weight_decay", weight_decay)
    return name


def _fast_kernel(cls) -> dict:
    params = inspect.signature(cls.__init__).parameters
    return {"fused": True} if "fused" in params else {"foreach": True}


def make(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Build optimizer `name` over `params`.

    `momentum` applies to `momentum` and `nesterov` only; plain `sgd`, `rmsprop` and the Adam
    family ignore it (torch's defaults).
    """
    name = check(name, lr, momentum, weight_decay)
    params = list(params)
    if name in ("sgd", "momentum", "nesterov"):
        cls, kw = torch.optim.SGD, {
            "momentum": 0.0 if name == "sgd" else momentum,
            "nesterov": name == "nesterov",
        }
        if name == "nesterov" and momentum == 0:
            raise ValueError("momentum=0 is not valid for optimizer='nesterov'; Nesterov needs momentum > 0")
    elif name == "rmsprop":
        cls, kw = torch.optim.RMSprop, {}
    else:
        cls, kw = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "adamw": torch.optim.AdamW}[name], {}
    kw.update(_fast_kernel(cls))
    if kw.get("fused") and params and params[0].device.type not in ("cpu", "cuda", "mps"):
        kw = {k: v for k, v in kw.items() if k != "fused"}
    return cls(params, lr=lr, weight_decay=weight_decay, **kw)
