"""Training and evaluation: `fit` trains one model, or a stack of K models, and returns History;
`evaluate` gives loss and accuracy.

The loop is written for tensors already on the device: each step gathers one index slice,
runs forward and backward, and steps the optimizer. Metrics stay on the device as running
sums and are read once per epoch, so small batches do not pay a sync per step.

A `stacked.Stack` goes through the same loop: its batches carry a leading member axis (K, B)
(each member its own seeded data order), its loss is one mean per member (summed for one
backward: each member's gradient is its own), and every record (epoch rows, steps, snapshots,
divergence) is kept per member. So there is one loop to read and to keep right.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import optim as optim_mod
from . import validate
from .data import Dataset, Split, batch_indices
from .models import forward_in_chunks
from .settings import resolve_device
from .stacked import Stack
from .vocabulary import LOSSES


@dataclass
class History:
    """What a training run produced.

    `epochs`: one row per epoch (epoch, train_loss, train_acc, <set>_loss, <set>_acc for each
    evaluation set, seconds). `steps`: per-step loss (and gradient norm when recorded), or None.
    `snapshots`: (step, {parameter name: CPU copy}) every `snapshot_every` steps, step 0 included.
    `diverged`: the loss became NaN or infinite and training stopped early.
    """

    epochs: pd.DataFrame
    steps: pd.DataFrame | None = None
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    diverged: bool = False

    @property
    def final(self) -> dict:
        """The last epoch's row as a dict (empty if no epoch finished)."""
        return {} if self.epochs.empty else self.epochs.iloc[-1].to_dict()


def loss_fn(name: str, members: bool = False) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`ce`: cross-entropy on logits. `mse`: for class labels, squared error between the softmax
    and the one-hot target (summed over classes, averaged over samples); for real-valued
    targets, plain mean squared error (the function-approximation lab).

    `members=True`: the same loss for a stack's outputs (K, B, C) and targets (K, B[, 1]), one
    mean per member, shape (K,)."""
    name = validate.choice("loss", name, LOSSES)
    if members:
        return functools.partial(_member_loss, name)
    if name == "ce":
        return F.cross_entropy

    def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.is_floating_point():
            return F.mse_loss(output, target)
        probs = output.softmax(dim=1)
        onehot = F.one_hot(target, output.shape[1]).to(probs.dtype)
        return (probs - onehot).pow(2).sum(dim=1).mean()

    return mse


def _member_loss(name: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    k, b, c = out.shape
    if name == "ce":
        return F.cross_entropy(out.reshape(k * b, c), target.reshape(k * b), reduction="none").view(k, b).mean(1)
    if target.is_floating_point():
        return (out - target.view(k, b, -1)).pow(2).reshape(k, -1).mean(1)
    onehot = F.one_hot(target, c).to(out.dtype)
    return (out.softmax(-1) - onehot).pow(2).sum(-1).mean(1)


def as_split(data) -> Split:
    """A Split as given, or one built from an (x, y) pair; anything else is a ValueError."""
    if isinstance(data, Split):
        return data
    try:
        x, y = data
    except (TypeError, ValueError):
        raise ValueError(f"data={type(data).__name__} is not valid; pass a Split or an (x, y) pair of tensors") from None
    return Split(x, y)


def evaluate(model: nn.Module, data, loss: str = "ce", batch_size: int = 10_000):
    """Mean loss and accuracy of `model` on `data` (a Split or (x, y)); accuracy is NaN for real targets.

    For a `stacked.Stack`: two lists, one value per member (every member sees the same data)."""
    split = as_split(data)
    stack = isinstance(model, Stack)
    fn = loss_fn(loss, members=stack)
    if stack:  # K members' activations per row: keep a chunk's memory what one model's would be
        batch_size = max(1, batch_size // model.k)
    out = forward_in_chunks(model, split.x, batch_size, **({"shared": True} if stack else {}))
    n = len(split)
    classify = not split.y.is_floating_point()
    total, correct = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.long)
    # the loss summed chunk by chunk (chunk mean x chunk size): the arithmetic the logged histories used
    for start in range(0, n, batch_size):
        ob, yb = out.narrow(-2, start, min(batch_size, n - start)), split.y[start:start + batch_size].to(out.device)
        if stack:
            yb = yb.expand(model.k, *yb.shape)
        total = total + fn(ob, yb).detach().double().cpu() * len(split.y[start:start + batch_size])
        if classify:
            correct = correct + (ob.argmax(-1) == yb).sum(-1).cpu()
    losses = (total / max(n, 1)).tolist()
    accs = (correct.double() / max(n, 1)).tolist() if classify else (
        [math.nan] * model.k if stack else math.nan)
    return losses, accs


def _grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters()}


def check_fit_args(epochs, batch_size, optimizer, lr, momentum, weight_decay, loss, snapshot_every) -> None:
    """Every argument check of `fit`, callable on its own (specs validate before any work)."""
    validate.positive_int("epochs", epochs)
    validate.positive_int("batch_size", batch_size)
    optim_mod.check(optimizer, lr, momentum, weight_decay)
    validate.choice("loss", loss, LOSSES)
    validate.positive_int("snapshot_every", snapshot_every, allow_none=True)

#: Multiply-adds per step (batch size x parameters) below which training runs on one thread.
#: Waking torch's second intra-op thread for every small kernel costs more than it saves: an MLP
#: 784-100-10 at batch 10 (0.8 million) trains faster on one thread, and on a busy machine many
#: times faster (benchmarks/train_throughput.py, ratio_b10). Batch 64 (5 million) keeps them all.
SMALL_STEP = 2_000_000


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op threads set to `threads` for a while (None: left as they are), restored after."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def step_threads(device: torch.device, params: Sequence[torch.Tensor], batch_size: int):
    """Run the block on one CPU thread if a step is small (see SMALL_STEP); restore the count after.

    A dense step costs about batch x parameters multiply-adds. A convolution reuses each weight at
    every position, so a model with one (a parameter of 4 or more dimensions) is never small."""
    dense = all(p.dim() < 4 for p in params)
    small = device.type == "cpu" and dense and batch_size * sum(p.numel() for p in params) < SMALL_STEP
    return torch_threads(1 if small else None)


def _per_member(name: str, value, k: int, stack: bool) -> list:
    """One value per member: a list for a stack (or one value for all), a plain value otherwise."""
    if isinstance(value, (list, tuple)):
        if not stack:
            raise ValueError(f"{name}={value!r} is not valid; lists of values are for a stacked.Stack")
        if len(value) != k:
            raise ValueError(f"{name} has {len(value)} entries for {k} stacked members; they must match")
        return list(value)
    return [value] * k


def _training_data(data, eval_sets, k: int, stack: bool) -> tuple[Split, bool, dict]:
    """(train split, whether its labels are per member (K, N), evaluation sets)."""
    if isinstance(data, Dataset):
        return data.train, False, (data.eval_sets() if eval_sets is None else eval_sets)
    if stack and isinstance(data, list) and data and all(isinstance(d, Split) for d in data):
        if len(data) != k:
            raise ValueError(f"data has {len(data)} splits for {k} stacked members; they must match")
        x = data[0].x
        if any(d.x is not x and (d.x.shape != x.shape or not torch.equal(d.x, x)) for d in data[1:]):
            raise ValueError("data is not valid: stacked members must share the training inputs (labels may differ)")
        if all(d.y is data[0].y for d in data):
            return data[0], False, eval_sets or {}
        return Split(x, torch.stack([d.y for d in data])), True, eval_sets or {}
    return as_split(data), False, eval_sets or {}


def _take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows `idx` of `t`: idx (B,) for one model, or (K, B) one batch per member -> (K, B, ...)."""
    if idx.dim() == 1:
        return t.index_select(0, idx)
    return t.index_select(0, idx.reshape(-1)).view(*idx.shape, *t.shape[1:])  # far faster than t[idx]


def fit(
    model: nn.Module,
    data: Dataset | Split | tuple | list,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float | Sequence[float] = 1e-3,
    momentum: float | Sequence[float] = 0.9,
    weight_decay: float | Sequence[float] = 0.0,
    loss: str = "ce",
    seed: int | Sequence[int] = 0,
    device="auto",
    eval_sets: Mapping[str, Split | tuple] | None = None,
    record_steps: bool = False,
    record_grad_norm: bool = False,
    snapshot_every: int | None = None,
    hooks: Sequence[Callable[[int, nn.Module, dict], None]] = (),
    progress: bool = True,
    desc: str | None = None,
) -> History | list[History]:
    """Train `model` in place and return its History.

    `data`: a Dataset (trains on `train`, evaluates on `val` if present and `test` each epoch)
    or a Split / (x, y) pair (no evaluation unless `eval_sets` is given). Seeding makes the
    same call give a bit-identical History on the CPU. A NaN or infinite loss ends the run,
    marked `diverged`, without raising. `hooks` are called after each epoch with
    (epoch, model, row).

    `model` may be a `stacked.Stack` of K members: then `lr`, `momentum`, `weight_decay` and `seed`
    may be lists (one value per member), `data` may be a list of K Splits that share their inputs
    (each member's own labels), and the result is a list of K Histories, member i's the one `fit`
    gives that member alone: equal up to float rounding, or in distribution where dropout draws
    differ. A diverging member stops alone (its weights stay those of the epoch it diverged in).
    `seconds` is then the stack's time divided by K. `hooks` are for one model only.
    """
    stack = isinstance(model, Stack)
    k = model.k if stack else 1
    lrs, moms, wds, seeds = (_per_member(name, v, k, stack) for name, v in
                             (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay), ("seed", seed)))
    for lr_i, mom_i, wd_i in zip(lrs, moms, wds):
        check_fit_args(epochs, batch_size, optimizer, lr_i, mom_i, wd_i, loss, snapshot_every)
    if stack and hooks:
        raise ValueError("hooks are not valid for a stacked.Stack; they see one model")
    device = resolve_device(device)
    train, member_labels, eval_sets = _training_data(data, eval_sets, k, stack)
    eval_sets = {name: as_split(v).to(device) for name, v in eval_sets.items()}
    x, y = train.x.to(device), train.y.to(device)
    n = x.shape[0]
    classify = not y.is_floating_point()

    torch.manual_seed(seeds[0])
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if stack:  # members with other settings get their own param group over their slice of the stack
        settings = [{"lr": a, "momentum": b, "weight_decay": c} for a, b, c in zip(lrs, moms, wds)]
        opt = optim_mod.make(optimizer, model.param_groups(settings))
    else:
        opt = optim_mod.make(optimizer, params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    fn = loss_fn(loss, members=stack)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    record_steps = record_steps or record_grad_norm

    def snapshot() -> list[dict[str, torch.Tensor]]:
        return [model.member_parameters(i) for i in range(k)] if stack else [_snapshot(model)]

    rows: list[list[dict]] = [[] for _ in range(k)]
    snapshots: list[list] = [[] for _ in range(k)]
    stopped: list[int | None] = [None] * k  # the step at which a member diverged
    frozen: dict[int, dict] = {}  # a diverged member's state at that point
    # Per-step records become Python floats once per epoch: thousands of tiny tensors kept for a
    # whole fit, between the step's large temporaries, fragment the C heap (lab 5's full profile,
    # 20,000 one-step epochs, grew to ~18 GB that way; as floats it stays flat).
    step_losses, step_norms, step = [], [], 0
    if snapshot_every:
        for i, snap in enumerate(snapshot()):
            snapshots[i].append((0, snap))
    # small steps run on one thread (see step_threads); the thread count is restored afterwards
    with step_threads(device, params, batch_size):
        bar = tqdm(range(1, epochs + 1), desc=desc or ("epochs" if not stack else f"stack of {k}"), unit="epoch",
                   disable=not progress, leave=False)
        for epoch in bar:
            start = time.perf_counter()
            if stack:  # one seeded permutation per member, cut into (K, B) slices
                batches = torch.stack([torch.cat(batch_indices(n, batch_size, g)) for g in gens]).to(device)
                batches = batches.split(batch_size, dim=1)
            else:
                batches = batch_indices(n, batch_size, gens[0], device)
            losses, predictions, norms = [], [], []  # per-step tensors, reduced once per epoch (no per-step sync)
            for idx in batches:
                xb = _take(x, idx)
                yb = y.gather(1, idx) if member_labels else _take(y, idx)
                out = model(xb)
                batch_loss = fn(out, yb)  # one number, or one per member
                for p in params:  # zero_grad(set_to_none=True) without its bookkeeping
                    p.grad = None
                (batch_loss.sum() if stack else batch_loss).backward()
                if record_grad_norm:
                    norms.append(model.member_grad_norms() if stack else _grad_norm(params))
                opt.step()
                losses.append(batch_loss.detach())
                if classify:
                    predictions.append(out.detach().argmax(-1))
                step += 1
                if snapshot_every and step % snapshot_every == 0:
                    for i, snap in enumerate(snapshot()):
                        if stopped[i] is None:
                            snapshots[i].append((step, snap))
            epoch_losses = torch.stack(losses)  # (steps,) or (steps, K)
            sizes = torch.tensor([b.shape[-1] for b in batches], dtype=epoch_losses.dtype, device=device)
            sums = (epoch_losses * sizes.view(-1, *[1] * (epoch_losses.dim() - 1))).sum(0)
            train_losses = [v / n for v in sums.reshape(-1).tolist()]
            train_accs = [math.nan] * k
            if classify:
                order = torch.cat(batches, dim=-1)
                labels = y.gather(1, order) if member_labels else y[order]
                train_accs = [c / n for c in (torch.cat(predictions, dim=-1) == labels).sum(-1).reshape(-1).tolist()]
            if record_steps:
                step_losses.extend(epoch_losses.tolist())
            if norms:
                step_norms.extend(torch.stack(norms).tolist())
            evals = {name: evaluate(model, split, loss) for name, split in eval_sets.items()}
            seconds = (time.perf_counter() - start) / k
            for i in range(k):
                if stopped[i] is not None:
                    continue
                row = {"epoch": epoch, "train_loss": train_losses[i], "train_acc": train_accs[i]}
                if not math.isfinite(train_losses[i]):
                    stopped[i] = step
                    if stack:
                        frozen[i] = model.member_state_dict(i)
                else:
                    for name, (ls, accs) in evals.items():
                        row[f"{name}_loss"], row[f"{name}_acc"] = (ls[i], accs[i]) if stack else (ls, accs)
                row["seconds"] = seconds
                rows[i].append(row)
            if not stack:
                bar.set_postfix({key: f"{v:.4f}" for key, v in rows[0][-1].items() if key.endswith("loss")})
                for hook in hooks:
                    hook(epoch, model, rows[0][-1])
            if all(s is not None for s in stopped):
                break
        bar.close()
    for i, state in frozen.items():
        model.set_member(i, state)

    histories = []
    for i in range(k):
        steps = None
        last = stopped[i] if stopped[i] is not None else step
        if record_steps and step_losses:
            per_step = np.asarray(step_losses[:last], dtype=np.float32)
            steps = pd.DataFrame({"step": range(1, last + 1), "loss": per_step[:, i] if stack else per_step})
            steps["epoch"] = (steps["step"] - 1) * batch_size // n + 1
            if record_grad_norm:
                per_step = np.asarray(step_norms[:last], dtype=np.float32)
                steps["grad_norm"] = per_step[:, i] if stack else per_step
        histories.append(History(epochs=pd.DataFrame(rows[i]), steps=steps, snapshots=snapshots[i],
                                 diverged=stopped[i] is not None))
    return histories if stack else histories[0]
