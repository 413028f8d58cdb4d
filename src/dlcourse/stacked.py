"""K models of one architecture as one module: how many small models train at the price of few.

A 784-100-10 MLP at batch 64 is too small to keep two cores busy: most of a step is Python,
autograd and kernel-launch overhead. A `Stack` holds the weights of K members side by side and
runs each layer once for all of them, on public torch APIs only:

- Linear: weights (K, out, in) as nn.Linear keeps them, one `torch.baddbmm` for all members (each
  on its own batch), computing W @ x with activations feature-major, (K, features, B): then the
  weight gradient is g @ x^T in the layout MKL multiplies fastest (about 10% less CPU time per
  MLP step than (K, in, out) weights with x @ W, measured with 1 thread on this machine);
- Conv2d: weights (K, out, in, kh, kw), one `conv2d(..., groups=K)` over (B, K*C, H, W) in
  channels-last memory (15-25% less CPU per member than the standard layout, 1 thread here);
- BatchNorm1d/2d: one `F.batch_norm` over K*C channels, so each member keeps its own batch
  statistics, affine parameters and running averages;
- activations, dropout and max-pooling act elementwise or per channel, so they run unchanged.
(Issue 10 measured, on 2 cores, 8 members, batch 64: 1.70x per model-step for the MLP and 1.07x
for a lab-6 CNN, against 1.10x and 0.86x for a `torch.func.vmap(functional_call)` stack. The MLP
gains because its small matmuls become big ones that use both cores; a CNN step is bound by
compute and memory, so there stacking only has to not cost. `benchmarks/sweep_throughput.py`
measures both.)

Each member stays what `train.fit` would train: its own initial weights (copied in from an
ordinary nn model built under its own seed), its own data order and labels (the trainer's job),
and the very torch.optim optimizer a single run uses. Every optimizer of the course acts
elementwise, so stepping the stacked tensors moves each member as if it were alone; members that
differ in lr, momentum or weight decay get their own param group over their slice of the stack
(`param_groups`). `member_state_dict(i)` writes member i back out as an ordinary nn model's state.

Layouts inside `forward`: dense activations are (K, F, B) (feature-major, see Linear above);
image activations are (B, K*C, H, W) (member k owns channels k*C..(k+1)*C). Inputs are
(K, B, *in), one batch per member, or with `shared=True` one batch (B, *in) that every member
sees (evaluation on a common test set). Outputs are (K, B, out).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .models import ACTIVATIONS

#: Largest number of members trained as one stack (memory grows with it; speed saturates).
MAX_STACK = 64
#: Layers that act elementwise or per channel: they run on the stacked activations unchanged.
_PASS_THROUGH = (*ACTIVATIONS.values(), nn.Dropout, nn.MaxPool2d)
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_STACKABLE = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Flatten, *_PASS_THROUGH)


def supports(model: nn.Module) -> str | None:
    """None if `model` can be stacked, else the reason it cannot."""
    if not isinstance(model, nn.Sequential):
        return f"{type(model).__name__} is not an nn.Sequential"
    for m in model:
        if not isinstance(m, _STACKABLE):
            return f"layer {type(m).__name__} is not supported"
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros"
                                         or isinstance(m.padding, str)):
            return "only plain Conv2d layers (groups=1, no dilation, numeric zero padding) stack"
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return "only Flatten(start_dim=1) stacks"
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is None:
            return f"{type(m).__name__} without a bias does not stack"
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and not (m.affine and m.track_running_stats):
            return "only batch norm with affine parameters and running statistics stacks"
    return None


def _architecture(model: nn.Module) -> tuple:
    """What members must share: each layer's kind and settings (its repr) and tensor shapes."""
    return tuple((repr(m), tuple((n, tuple(p.shape)) for n, p in m.state_dict().items())) for m in model)


def _stacked(tensors: list[torch.Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).contiguous())


class _Linear(nn.Module):
    def __init__(self, mods: list[nn.Linear]):
        super().__init__()
        self.weight = _stacked([m.weight for m in mods])                # (K, out, in)
        self.bias = _stacked([m.bias.unsqueeze(1) for m in mods])       # (K, out, 1)

    def forward(self, x, shared):
        if not shared:  # x: (K, in, B)
            return torch.baddbmm(self.bias, self.weight, x), False
        k, fan_out, fan_in = self.weight.shape  # one (B, in) @ (in, K*out) product for all members
        out = x @ self.weight.reshape(k * fan_out, fan_in).t()
        return out.view(-1, k, fan_out).permute(1, 2, 0) + self.bias, False

    def member_state(self, i):
        return {"weight": self.weight[i], "bias": self.bias[i, :, 0]}


class _Conv2d(nn.Module):
    def __init__(self, mods: list[nn.Conv2d]):
        super().__init__()
        self.stride, self.padding = mods[0].stride, mods[0].padding
        self.weight = _stacked([m.weight for m in mods])                # (K, out, in, kh, kw)
        self.bias = _stacked([m.bias for m in mods])                    # (K, out)

    def forward(self, x, shared):
        k = self.weight.shape[0]
        w, b = self.weight.flatten(0, 1), self.bias.flatten()
        if shared:  # one input for all: an ordinary conv with K*out filters
            return F.conv2d(x, w, b, self.stride, self.padding), False
        if x.dim() == 5:  # (K, B, C, H, W) per-member images -> (B, K*C, H, W)
            x = x.transpose(0, 1).flatten(1, 2)
        # channels-last: the grouped kernel reads each pixel's K*C channels together
        x = x.contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, w, b, self.stride, self.padding, groups=k), False

    def member_state(self, i):
        return {"weight": self.weight[i], "bias": self.bias[i]}


class _BatchNorm(nn.Module):
    def __init__(self, mods: list[nn.BatchNorm1d | nn.BatchNorm2d]):
        super().__init__()
        first = mods[0]
        self.momentum, self.eps = first.momentum, first.eps
        self.weight = _stacked([m.weight for m in mods])                # (K, C)
        self.bias = _stacked([m.bias for m in mods])
        self.register_buffer("running_mean", torch.stack([m.running_mean for m in mods]).clone())
        self.register_buffer("running_var", torch.stack([m.running_var for m in mods]).clone())
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.clone())

    def forward(self, x, shared):
        if shared:
            raise ValueError("a stacked BatchNorm needs per-member inputs; put a Linear or Conv2d before it")
        if self.training:
            self.num_batches_tracked.add_(1)
        k, c = self.weight.shape
        dense = x.dim() == 3  # (K, C, B) -> (B, K*C); images are (B, K*C, H, W) already
        # images in the standard layout: batch statistics summed in the order a member's own are
        flat = x.permute(2, 0, 1).reshape(-1, k * c) if dense else x.contiguous()
        out = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1), self.weight.flatten(),
                           self.bias.flatten(), self.training, self.momentum, self.eps)
        return (out.view(-1, k, c).permute(1, 2, 0) if dense else out), False

    def member_state(self, i):
        return {"weight": self.weight[i], "bias": self.bias[i], "running_mean": self.running_mean[i],
                "running_var": self.running_var[i], "num_batches_tracked": self.num_batches_tracked}


class _Flatten(nn.Module):
    """nn.Flatten for the stacked layouts: (B, *in) shared, (K, features, B) per-member inputs (Stack
    flattens those), or (B, K*C, H, W) per-member images after a stacked conv; to (K, features, B)
    or, shared, (B, features)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x, shared):
        if shared:
            return x.flatten(1), True
        if x.dim() == 4:  # (B, K*C, H, W): a view, which the next baddbmm reads as it is
            return x.reshape(x.shape[0], self.k, -1).permute(1, 2, 0), False
        return x, False


class _PassThrough(nn.Module):
    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x, shared):
        return self.module(x), shared


class Stack(nn.Module):
    """K ordinary nn.Sequential models of one architecture, trained as one (see the module doc).

    `Stack(members)` copies the members' weights and buffers in; `member_state_dict(i)` gives member
    i's state in the members' own names (an ordinary model loads it); `write_back` loads them all.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("members=[] is not valid; a stack needs at least one model")
        for m in members:
            reason = supports(m)
            if reason:
                raise ValueError(f"model is not valid for stacked training: {reason}")
        if len({_architecture(m) for m in members}) != 1:
            raise ValueError("members is not valid: stacked members must share one architecture")
        self.k = len(members)
        self.names = [name for name, _ in members[0].named_children()]
        layers = []
        for i, name in enumerate(self.names):
            mods = [m[i] for m in members]
            first = mods[0]
            if isinstance(first, nn.Linear):
                layers.append(_Linear(mods))
            elif isinstance(first, nn.Conv2d):
                layers.append(_Conv2d(mods))
            elif isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)):
                layers.append(_BatchNorm(mods))
            elif isinstance(first, nn.Flatten):
                layers.append(_Flatten(self.k))
            else:
                layers.append(_PassThrough(first))
        self.layers = nn.ModuleList(layers)
        self._dense_input = not any(isinstance(layer, _Conv2d) for layer in layers)
        self._grad_hooks: list = []

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """(K, B, out) for inputs (K, B, *in), or for one shared batch (B, *in) with `shared=True`."""
        if not shared and self._dense_input:  # (K, B, *in) -> feature-major (K, features, B)
            x = x.flatten(2).transpose(1, 2)
        for layer in self.layers:
            x, shared = layer(x, shared)
        if shared:  # a model without parameters: every member gives the same output
            return x.expand(self.k, *x.shape)
        # contiguous (K, B, out): the loss reads it as a view and argmax runs unstrided
        return x.transpose(1, 2).contiguous() if x.dim() == 3 else x

    def member_state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's state (parameters and buffers) under its own model's names, as CPU copies."""
        out = {}
        for name, layer in zip(self.names, self.layers):
            if hasattr(layer, "member_state"):
                for key, t in layer.member_state(i).items():
                    out[f"{name}.{key}"] = t.detach().to("cpu", copy=True)
        return out

    def member_parameters(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's parameters (no buffers) as CPU copies, named as in its own model (snapshots)."""
        return {k: v for k, v in self.member_state_dict(i).items() if not k.endswith(_BUFFERS)}

    @torch.no_grad()
    def set_member(self, i: int, state: dict[str, torch.Tensor]) -> None:
        """Copy `state` (member i's, in its own names, as `member_state_dict(i)` gives) into the stack."""
        for name, layer in zip(self.names, self.layers):
            if hasattr(layer, "member_state"):
                for key, t in layer.member_state(i).items():
                    if key != "num_batches_tracked":  # one counter for the whole stack
                        t.copy_(state[f"{name}.{key}"])

    def write_back(self, members: Sequence[nn.Module]) -> None:
        """Load each member's trained state into the ordinary models it was built from."""
        if len(members) != self.k:
            raise ValueError(f"got {len(members)} models for a stack of {self.k}")
        for i, m in enumerate(members):
            device = next(self.parameters()).device
            m.load_state_dict({k: v.to(device) for k, v in self.member_state_dict(i).items()})

    def param_groups(self, settings: Sequence[dict]) -> list[dict]:
        """torch.optim param groups for members with per-member `settings` (dicts of lr, momentum, ...).

        Runs of adjacent members with equal settings share one group over their slice of every
        stacked tensor (all members alike: the stacked tensors themselves). A slice is a leaf that
        shares the stack's storage; its gradient is set to the matching slice after each backward.
        Put members with equal settings next to each other to get few groups.
        """
        if len(settings) != self.k:
            raise ValueError(f"got {len(settings)} settings for a stack of {self.k} members")
        runs: list[tuple[int, int]] = []
        for i in range(self.k):
            if runs and settings[i] == settings[runs[-1][0]]:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        for handle in self._grad_hooks:  # the groups of an earlier call stop receiving gradients
            handle.remove()
        self._grad_hooks = []
        params = [p for p in self.parameters() if p.requires_grad]
        if len(runs) == 1:
            return [{"params": params, **settings[0]}]
        groups, slices = [], []
        for a, b in runs:
            views = [nn.Parameter(p.detach()[a:b]) for p in params]
            slices.append((a, b, views))
            groups.append({"params": views, **settings[a]})
        for j, p in enumerate(params):
            self._grad_hooks.append(p.register_post_accumulate_grad_hook(functools.partial(_share_grad, j, slices)))
        return groups

    def member_grad_norms(self) -> torch.Tensor:
        """(K,) L2 norm of each member's gradient."""
        grads = [p.grad.flatten(1) for p in self.parameters() if p.grad is not None]
        return torch.cat(grads, dim=1).norm(dim=1)


def _share_grad(j: int, slices: list, p: torch.Tensor) -> None:
    """After backward: each param group's slice of stacked tensor j gets its slice of the gradient."""
    for a, b, views in slices:
        views[j].grad = p.grad[a:b]


__all__ = ["Stack", "supports", "MAX_STACK"]
