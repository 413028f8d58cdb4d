"""Optimizer names to torch.optim optimizers.

Notebooks and sweeps name optimizers as strings; this maps them onto torch.optim with the
fastest kernel the installed torch offers (fused, else foreach).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence

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


class LeanAdam(torch.optim.Adam):
    """torch.optim.Adam with fused=True whose `step` calls the same fused kernel directly.

    With tiny models and small batches (batch 10 of an MNIST MLP) the Python bookkeeping of
    `Optimizer.step` costs as much as the kernel itself. This step does only what the fused
    path needs for plain Adam (no amsgrad, maximize, closure, grad scaling or capturable) and
    falls back to torch's own step for anything else; states and results are identical
    (tests/test_models_optim.py compares them bit for bit).
    """

    _kernel = getattr(torch, "_fused_adam_", None)

    def _lean(self, group) -> bool:
        return (self._kernel is not None and group.get("fused") and not group["amsgrad"] and not group["maximize"]
                and not group["capturable"] and not group["differentiable"] and not torch.is_tensor(group["lr"]))

    def _states(self, params: list[torch.Tensor]) -> list[dict]:
        states = [self.state[p] for p in params]
        for p, st in zip(params, states):
            if not st:  # the same initial state as torch.optim.Adam._init_group
                st["step"] = torch.tensor(0.0, dtype=torch.float32, device=p.device)
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return states

    @classmethod
    def _fused(cls, params: list[torch.Tensor], states: list[dict], lr, betas, eps, weight_decay) -> None:
        steps = [st["step"] for st in states]
        torch._foreach_add_(steps, 1)
        cls._kernel(params, [p.grad for p in params], [st["exp_avg"] for st in states],
                    [st["exp_avg_sq"] for st in states], [], steps, amsgrad=False, lr=lr,
                    beta1=betas[0], beta2=betas[1], weight_decay=weight_decay, eps=eps, maximize=False)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not all(self._lean(g) for g in self.param_groups):
            return super().step(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._fused(params, self._states(params), group["lr"], group["betas"], group["eps"],
                            group["weight_decay"])
        return None

    @staticmethod
    @torch.no_grad()
    def step_all(optimizers: Sequence[torch.optim.Optimizer]) -> None:
        """Step several optimizers; LeanAdams that share lr, betas, eps and weight decay go through
        one fused kernel call together (the stacked trainer's members: one call per distinct
        setting instead of one per member). The kernel works tensor by tensor, so the result is
        bit-identical to stepping each optimizer alone."""
        if not all(isinstance(o, LeanAdam) and all(o._lean(g) for g in o.param_groups) for o in optimizers):
            for o in optimizers:
                o.step()
            return
        batches: dict[tuple, tuple[list, list]] = {}
        for o in optimizers:
            for group in o.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                key = (group["lr"], tuple(group["betas"]), group["eps"], group["weight_decay"])
                batch = batches.setdefault(key, ([], []))
                batch[0].extend(params)
                batch[1].extend(o._states(params))
        for (lr, betas, eps, wd), (params, states) in batches.items():
            if params:
                LeanAdam._fused(params, states, lr, betas, eps, wd)


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
        cls, kw = {"adam": LeanAdam, "nadam": torch.optim.NAdam, "adamw": torch.optim.AdamW}[name], {}
    kw.update(_fast_kernel(cls))
    if kw.get("fused") and params and params[0].device.type not in ("cpu", "cuda", "mps"):
        kw = {k: v for k, v in kw.items() if k != "fused"}
    return cls(params, lr=lr, weight_decay=weight_decay, **kw)
