"""Train K small MLPs of one shape as one stacked model: how sweeps go fast on a CPU.

A 784-100-10 MLP at batch 64 is too small to keep two cores busy: most of a step is Python,
autograd and kernel-launch overhead. Stacking K members turns each layer into one batched
matmul over (K, in, out) weights (`torch.baddbmm`), one backward, and one optimizer step over
the stacked tensors, so that overhead is paid once for K models.

Each member stays what `train.fit` would train:
- its own initial weights (the caller builds each member's nn model under its own seed and
  we copy them in), its own data order (`data.batch_indices` with its own seeded generator)
  and labels (random-label runs), its own lr, momentum and weight decay ((K, 1, 1) tensors);
- the loss is the sum over members of each member's mean loss, so each member's gradient is
  exactly its own;
- the optimizers are written out over the stack following torch.optim's single-tensor
  algorithms with torch's default hyper-parameters (sgd, momentum, nesterov, rmsprop, adam,
  adamw, nadam); a test checks each against torch.optim step by step.
Results equal sequential training up to float rounding (the order of sums differs).

Supported: MLPs of Flatten, Linear and activation layers. Batch norm and dropout are not (their
per-member statistics and RNG would differ from `fit`); `supports` says why and the caller
trains those one by one. History rows have `fit`'s columns; `seconds` is the stack's epoch time
divided by K (what one member cost).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import optim as optim_mod
from . import train as train_mod
from . import validate
from .data import Split, batch_indices
from .models import ACTIVATIONS
from .settings import resolve_device

#: Largest number of members trained as one stack (memory grows with it; speed saturates).
MAX_STACK = 64
_ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def supports(model: nn.Module) -> str | None:
    """None if `model` can be stacked, else the reason it cannot."""
    if not isinstance(model, nn.Sequential):
        return f"{type(model).__name__} is not an nn.Sequential MLP"
    linear = 0
    for m in model:
        if isinstance(m, nn.Linear):
            linear += 1
        elif isinstance(m, nn.Flatten) or isinstance(m, _ACTIVATION_TYPES):
            continue
        else:
            return f"layer {type(m).__name__} is not supported (only Flatten, Linear and activations)"
    return None if linear else "no Linear layer"


def _layers(model: nn.Module) -> list[tuple[str, nn.Linear, nn.Module | None]]:
    """(name, Linear, activation after it or None) for each Linear layer of an MLP."""
    mods = list(model.named_children())
    out = []
    for i, (name, m) in enumerate(mods):
        if isinstance(m, nn.Linear):
            act = mods[i + 1][1] if i + 1 < len(mods) and isinstance(mods[i + 1][1], _ACTIVATION_TYPES) else None
            out.append((name, m, act))
    return out


class StackedOptimizer:
    """One optimizer step over stacked (K, ...) parameters with per-member lr, momentum, decay.

    Per-member numbers are (K, 1, 1) tensors, or plain floats when every member shares them
    (the faster path). The algorithms follow torch.optim with its default betas and eps.
    """

    BETAS, EPS, RMS_ALPHA, NADAM_MOMENTUM_DECAY = (0.9, 0.999), 1e-8, 0.99, 4e-3

    def __init__(self, name: str, params: Sequence[torch.Tensor], lr, momentum, weight_decay):
        self.name = validate.choice("optimizer", name, optim_mod.OPTIMIZERS)
        self.params = list(params)
        k = self.params[0].shape[0]
        self.lr, self.momentum, self.wd = (self._per_member(v, k) for v in (lr, momentum, weight_decay))
        if self.name == "nesterov" and (self.momentum == 0 if isinstance(self.momentum, float) else bool((self.momentum == 0).any())):
            raise ValueError("momentum=0 is not valid for optimizer='nesterov'; Nesterov needs momentum > 0")
        self.step_count = 0
        self.mu_product = 1.0
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    def _per_member(self, values, k: int):
        values = [float(v) for v in (values if isinstance(values, Sequence) else [values] * k)]
        if len(values) != k:
            raise ValueError(f"got {len(values)} per-member values for {k} stacked members")
        if all(v == values[0] for v in values):
            return values[0]
        p = self.params[0]
        return torch.tensor(values, dtype=p.dtype, device=p.device).view(k, 1, 1)

    def _decay_into_grad(self, grad, p):
        wd = self.wd
        if isinstance(wd, float):
            return grad.add(p, alpha=wd) if wd else grad
        return grad.addcmul(p, wd)

    def _descend(self, p, num, den, coef: float = 1.0) -> None:
        """p -= lr * coef * num / den (den may be None), for scalar or per-member lr."""
        lr = self.lr
        if isinstance(lr, float):
            if den is None:
                p.add_(num, alpha=-lr * coef)
            else:
                p.addcdiv_(num, den, value=-lr * coef)
        elif den is None:
            p.addcmul_(num, lr, value=-coef)
        else:
            p.addcdiv_(num, den / lr, value=-coef)

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        name = self.name
        b1, b2 = self.BETAS
        if name == "nadam":
            decay = self.NADAM_MOMENTUM_DECAY
            mu = b1 * (1.0 - 0.5 * 0.96 ** (t * decay))
            mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
            self.mu_product *= mu
        for p, state in zip(self.params, self.state):
            grad = p.grad
            if grad is None:
                continue
            if name in ("sgd", "momentum", "nesterov"):
                grad = self._decay_into_grad(grad, p)
                if name != "sgd":
                    buf = state.get("momentum")
                    if buf is None:
                        buf = state["momentum"] = grad.clone()
                    else:
                        buf.mul_(self.momentum).add_(grad)
                    if name == "nesterov":
                        m = self.momentum
                        grad = grad.add(buf, alpha=m) if isinstance(m, float) else grad.addcmul(buf, m)
                    else:
                        grad = buf
                self._descend(p, grad, None)
            elif name == "rmsprop":
                grad = self._decay_into_grad(grad, p)
                sq = state.get("square_avg")
                if sq is None:
                    sq = state["square_avg"] = torch.zeros_like(p)
                sq.mul_(self.RMS_ALPHA).addcmul_(grad, grad, value=1 - self.RMS_ALPHA)
                self._descend(p, grad, sq.sqrt().add_(self.EPS))
            else:  # adam, adamw, nadam
                if name == "adamw":
                    wd = self.wd
                    if not (isinstance(wd, float) and wd == 0):
                        p.mul_(1 - self.lr * wd)
                else:
                    grad = self._decay_into_grad(grad, p)
                if "exp_avg" not in state:
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(grad, 1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                bc2 = 1 - b2 ** t
                if name == "nadam":
                    den = v.div(bc2).sqrt_().add_(self.EPS)
                    self._descend(p, grad, den, (1.0 - mu) / (1.0 - self.mu_product))
                    self._descend(p, m, den, mu_next / (1.0 - self.mu_product * mu_next))
                else:
                    den = v.sqrt().div_(math.sqrt(bc2)).add_(self.EPS)
                    self._descend(p, m, den, 1.0 / (1 - b1 ** t))


class PerMemberTorch:
    """torch.optim's fused kernel, one optimizer per member over views into the stacked tensors.

    For Adam and AdamW this is the fastest step we measured: one fused pass per member over
    its slices (the K members' slices are contiguous), instead of some eight elementwise passes
    over the whole stack. Each member's optimizer comes from `dlcourse.optim.make`, so it is the
    very optimizer a sequential run uses.
    """

    def __init__(self, name: str, params: Sequence[torch.Tensor], lrs, momentums, weight_decays):
        self.params = list(params)
        k = self.params[0].shape[0]
        self.views = [[nn.Parameter(p.detach()[i]) for p in self.params] for i in range(k)]
        self.opts = [optim_mod.make(name, views, lr=lr, momentum=m, weight_decay=wd)
                     for views, lr, m, wd in zip(self.views, lrs, momentums, weight_decays)]

    @torch.no_grad()
    def step(self) -> None:
        for i, views in enumerate(self.views):
            for view, p in zip(views, self.params):
                view.grad = p.grad[i]
        optim_mod.LeanAdam.step_all(self.opts)  # members with equal settings share one kernel call


#: Optimizers stepped by PerMemberTorch when torch has a fused kernel for them on the device.
FUSED_PER_MEMBER = ("adam", "adamw")


def make_optimizer(name: str, params: Sequence[torch.Tensor], lrs, momentums, weight_decays):
    """The fastest exact stepper for `name`: torch's fused kernel per member where there is one
    (Adam, AdamW), else the hand-written StackedOptimizer over the whole stack."""
    name = validate.choice("optimizer", name, optim_mod.OPTIMIZERS)
    if name in FUSED_PER_MEMBER and params[0].device.type in ("cpu", "cuda"):
        opt = PerMemberTorch(name, params, lrs, momentums, weight_decays)
        if all(o.defaults.get("fused") for o in opt.opts):
            return opt
    return StackedOptimizer(name, params, lrs, momentums, weight_decays)


def member_losses(loss: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each member's mean loss, shape (K,), for outputs (K, B, C) and targets (K, B[, 1]).

    Per member this is `train.loss_fn(loss)` (a test checks it): cross-entropy, or for class
    labels the squared error between softmax and one-hot, or plain MSE for real targets.
    """
    k, b, c = out.shape
    if loss == "ce":
        return F.cross_entropy(out.reshape(k * b, c), target.reshape(k * b), reduction="none").view(k, b).mean(1)
    if target.is_floating_point():
        return (out - target.view(k, b, -1)).pow(2).reshape(k, -1).mean(1)
    onehot = F.one_hot(target, c).to(out.dtype)
    return (out.softmax(-1) - onehot).pow(2).sum(-1).mean(1)


def _forward(layers, x: torch.Tensor) -> torch.Tensor:
    """x: (K, B, in) per-member inputs, or (B, in) shared by all members."""
    for w, b, act in layers:
        x = torch.baddbmm(b, x, w) if x.dim() == 3 else torch.matmul(x, w).add_(b)
        if act is not None:
            x = act(x)
    return x


@torch.inference_mode()
def _evaluate(layers, split: Split, loss: str, k: int, chunk_elems: int = 2_000_000) -> tuple[list[float], list[float]]:
    """Each member's mean loss and accuracy on a split shared by all members (as train.evaluate)."""
    x, y = split.x.flatten(1), split.y
    n = x.shape[0]
    width = max(w.shape[-1] for w, _, _ in layers)
    step = max(1, min(10_000, chunk_elems // (k * width)))
    total = torch.zeros(k, dtype=torch.float64, device=x.device)
    correct = torch.zeros(k, dtype=torch.long, device=x.device)
    classify = not y.is_floating_point()
    for start in range(0, n, step):
        xb, yb = x[start:start + step], y[start:start + step]
        out = _forward(layers, xb)
        yk = yb.expand(k, *yb.shape)
        total += member_losses(loss, out, yk).double() * len(xb)
        if classify:
            correct += (out.argmax(-1) == yk).sum(1)
    losses = (total / max(n, 1)).tolist()
    accs = (correct.double() / max(n, 1)).tolist() if classify else [math.nan] * k
    return losses, accs


def fit_stacked(
    models: Sequence[nn.Module],
    trains: Sequence[Split],
    *,
    epochs: int = 1,
    batch_size: int = 64,
    optimizer: str = "adam",
    lrs: Sequence[float] | float = 1e-3,
    momentums: Sequence[float] | float = 0.9,
    weight_decays: Sequence[float] | float = 0.0,
    loss: str = "ce",
    seeds: Sequence[int] = (),
    device="auto",
    eval_sets: Mapping[str, Split] | None = None,
    record_steps: bool = False,
    record_grad_norm: bool = False,
    snapshot_every: int | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> list[train_mod.History]:
    """Train `models` (same architecture) together; like K calls of `train.fit`, one History each.

    `trains`: each member's training split; they must share `x` (one tensor) and may differ in
    labels (random-label runs). Evaluation sets are shared. The models are updated in place.
    """
    k = len(models)
    if k == 0:
        return []
    if len(trains) != k or len(seeds) != k:
        raise ValueError(f"got {k} models, {len(trains)} training splits and {len(seeds)} seeds; they must match")
    per_member = {}
    for name, value in (("lrs", lrs), ("momentums", momentums), ("weight_decays", weight_decays)):
        values = list(value) if isinstance(value, Sequence) else [value] * k
        if len(values) != k:
            raise ValueError(f"{name} has {len(values)} entries for {k} models; they must match")
        per_member[name] = values
    for lr, mom, wd in zip(per_member["lrs"], per_member["momentums"], per_member["weight_decays"]):
        train_mod.check_fit_args(epochs, batch_size, optimizer, lr, mom, wd, loss, snapshot_every)
    loss = validate.choice("loss", loss, train_mod.LOSSES)
    for m in models:
        reason = supports(m)
        if reason:
            raise ValueError(f"model is not valid for stacked training: {reason}")
    shapes = {tuple((n, tuple(p.shape)) for n, p in m.named_parameters()) for m in models}
    if len(shapes) != 1:
        raise ValueError("models is not valid: stacked members must share one architecture")
    x0 = trains[0].x
    if any(t.x is not x0 and (t.x.shape != x0.shape or not torch.equal(t.x, x0)) for t in trains[1:]):
        raise ValueError("trains is not valid: stacked members must share the training inputs (labels may differ)")

    device = resolve_device(device)
    for m in models:
        m.to(device).train()
    x = x0.to(device).flatten(1)
    n = x.shape[0]
    shared_y = all(t.y is trains[0].y for t in trains)
    y = trains[0].y.to(device) if shared_y else torch.stack([t.y.to(device) for t in trains])
    classify = not y.is_floating_point()
    eval_sets = {name: Split(s.x.to(device), s.y.to(device)) for name, s in (eval_sets or {}).items()}

    # Stack each member's initial weights: W (K, in, out) = Linear.weight.T, b (K, 1, out).
    spec_layers = _layers(models[0])
    params, layers, names = [], [], []
    for li, (lname, _, act) in enumerate(spec_layers):
        mods = [_layers(m)[li][1] for m in models]
        w = torch.stack([m.weight.detach().t() for m in mods]).to(device).contiguous().requires_grad_()
        b = torch.stack([m.bias.detach().unsqueeze(0) for m in mods]).to(device).contiguous().requires_grad_()
        params += [w, b]
        layers.append((w, b, act))
        names += [f"{lname}.weight", f"{lname}.bias"]
    opt = make_optimizer(optimizer, params, per_member["lrs"], per_member["momentums"], per_member["weight_decays"])
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    record_steps = record_steps or record_grad_norm

    def member_state(i: int) -> dict[str, torch.Tensor]:
        return {nm: (p[i].t() if nm.endswith("weight") else p[i, 0]).detach().to("cpu", copy=True)
                for nm, p in zip(names, params)}

    rows: list[list[dict]] = [[] for _ in range(k)]
    snapshots: list[list] = [[] for _ in range(k)]
    final_state: list[dict | None] = [None] * k
    stop_step = [None] * k
    step_losses, step_norms = [], []
    if snapshot_every:
        for i in range(k):
            snapshots[i].append((0, member_state(i)))
    step = 0
    bar = tqdm(range(1, epochs + 1), desc=desc or f"stack of {k}", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        perms = torch.stack([torch.cat(batch_indices(n, batch_size, g)) for g in gens]).to(device)
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device, dtype=torch.long)
        for s in range(0, n, batch_size):
            idx = perms[:, s:s + batch_size]
            flat = idx.reshape(-1)  # index_select is far faster than x[idx] for a 2-D index
            xb = x.index_select(0, flat).view(k, -1, x.shape[1])
            yb = (y.index_select(0, flat).view(k, -1, *y.shape[1:]) if shared_y else y.gather(1, idx))
            out = _forward(layers, xb)
            losses = member_losses(loss, out, yb)
            for p in params:
                p.grad = None
            losses.sum().backward()
            if record_grad_norm:
                step_norms.append(torch.stack([p.grad.pow(2).flatten(1).sum(1) for p in params]).sum(0).sqrt())
            opt.step()
            detached = losses.detach()
            loss_sum += detached * idx.shape[1]
            if classify:
                correct += (out.detach().argmax(-1) == yb).sum(1)
            if record_steps:
                step_losses.append(detached)
            step += 1
            if snapshot_every and step % snapshot_every == 0:
                for i in range(k):
                    if stop_step[i] is None:
                        snapshots[i].append((step, member_state(i)))
        train_losses = (loss_sum / n).tolist()
        train_accs = (correct.double() / n).tolist() if classify else [math.nan] * k
        evals = {name: _evaluate(layers, split, loss, k) for name, split in eval_sets.items()}
        seconds = (time.perf_counter() - start) / k
        for i in range(k):
            if stop_step[i] is not None:
                continue
            row = {"epoch": epoch, "train_loss": train_losses[i], "train_acc": train_accs[i]}
            if math.isfinite(train_losses[i]):
                for name, (ls, accs) in evals.items():
                    row[f"{name}_loss"], row[f"{name}_acc"] = ls[i], accs[i]
            else:
                stop_step[i] = step
                final_state[i] = member_state(i)
            row["seconds"] = seconds
            rows[i].append(row)
        if all(s is not None for s in stop_step):
            break
    bar.close()

    histories = []
    for i, model in enumerate(models):
        state = final_state[i] or member_state(i)
        with torch.no_grad():
            for nm, p in model.named_parameters():
                p.copy_(state[nm])
        steps = None
        last = stop_step[i] if stop_step[i] is not None else step
        if record_steps and step_losses:
            steps = pd.DataFrame({"step": range(1, last + 1),
                                  "loss": torch.stack([s[i] for s in step_losses[:last]]).cpu().numpy()})
            steps["epoch"] = (steps["step"] - 1) * batch_size // n + 1
            if record_grad_norm:
                steps["grad_norm"] = torch.stack([s[i] for s in step_norms[:last]]).cpu().numpy()
        histories.append(train_mod.History(epochs=pd.DataFrame(rows[i]), steps=steps, snapshots=snapshots[i],
                                           diverged=stop_step[i] is not None))
    return histories
