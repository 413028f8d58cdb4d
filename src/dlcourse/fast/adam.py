"""Adam whose step calls torch's fused kernel directly (`torch._fused_adam_`, a private op).

Why: with tiny models and small batches (an MNIST MLP 784-100-10 at batch 10) the Python
bookkeeping of `Optimizer.step` costs about as much as the kernel itself. This step does only
what the fused path needs for plain Adam (no amsgrad, maximize, closure, grad scaling or
capturable) and falls back to torch's own step for anything else.

Gain: `cd benchmarks && python train_throughput.py` (ratio_b10, one epoch at batch 10): measured
2026-12-02 on 2 cores, median of 10 alternating fits at batch 10 on 20,000 images, 0.54 s with
this step against 0.66 s with torch's (min 0.37 against 0.42), about 15%; ratio_b10 must stay
>= 3.5 and was 3.55 with it.

Public fallback: torch.optim.Adam(fused=True); tests/test_models_optim.py checks parameters and
optimizer state bit for bit against it. If torch ever drops the op, `step` is torch's own.
"""

from __future__ import annotations

import torch


class Adam(torch.optim.Adam):
    """torch.optim.Adam; with fused=True its `step` calls the same fused kernel directly."""

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

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not all(self._lean(g) for g in self.param_groups):
            return super().step(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = self._states(params)
            steps = [st["step"] for st in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            self._kernel(params, [p.grad for p in params], [st["exp_avg"] for st in states],
                         [st["exp_avg_sq"] for st in states], [], steps, amsgrad=False, lr=group["lr"],
                         beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                         maximize=False)
        return None
