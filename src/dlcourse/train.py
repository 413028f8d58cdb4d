"""Training and evaluation: `fit` returns a History, `evaluate` gives loss and accuracy.

`forward_in_chunks` is the one eval-mode, chunked forward pass that `evaluate` and
`metrics.predict` share.

The loop is written for tensors already on the device: each step gathers one index slice,
runs forward and backward, and steps the optimizer. Metrics stay on the device as running
sums and are read once per epoch, so small batches do not pay a sync per step.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import optim as optim_mod
from . import validate
from .data import Dataset, Split, batch_indices
from .settings import resolve_device

LOSSES = ("ce", "mse")


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


def loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`ce`: cross-entropy on logits. `mse`: for class labels, squared error between the softmax
    and the one-hot target (summed over classes, averaged over samples); for real-valued
    targets, plain mean squared error (the function-approximation lab)."""
    name = validate.choice("loss", name, LOSSES)
    if name == "ce":
        return F.cross_entropy

    def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.is_floating_point():
            return F.mse_loss(output, target)
        probs = output.softmax(dim=1)
        onehot = F.one_hot(target, output.shape[1]).to(probs.dtype)
        return (probs - onehot).pow(2).sum(dim=1).mean()

    return mse


def as_split(data) -> Split:
    """A Split as given, or one built from an (x, y) pair; anything else is a ValueError."""
    if isinstance(data, Split):
        return data
    try:
        x, y = data
    except (TypeError, ValueError):
        raise ValueError(f"data={type(data).__name__} is not valid; pass a Split or an (x, y) pair of tensors") from None
    return Split(x, y)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) live; the CPU for a model with neither.

    Analyses take data wherever it was loaded and move each chunk to the model, so a model
    trained on the GPU can be evaluated on a split that was loaded on the CPU, and back."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def forward_in_chunks(model: nn.Module, x: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
    """`model(x)` in eval mode without gradients, `batch_size` rows at a time so a large set fits in
    memory, each chunk moved to the model's device; the model's train/eval mode is restored
    afterwards, even on error. Empty `x` gives an empty tensor without calling the model."""
    was_training = model.training
    device = model_device(model)
    model.eval()
    try:
        with torch.no_grad():
            out = [model(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else x.new_empty(0)


def evaluate(model: nn.Module, data, loss: str = "ce", batch_size: int = 10_000) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on `data` (a Split or (x, y)); accuracy is NaN for real targets."""
    split = as_split(data)
    fn = loss_fn(loss)
    out = forward_in_chunks(model, split.x, batch_size)
    total, correct, n = 0.0, 0, len(split)
    classify = not split.y.is_floating_point()
    # the loss summed chunk by chunk (chunk mean x chunk size): the arithmetic the logged histories used
    for start in range(0, n, batch_size):
        ob, yb = out[start:start + batch_size], split.y[start:start + batch_size].to(out.device)
        total += float(fn(ob, yb)) * len(yb)
        if classify:
            correct += int((ob.argmax(1) == yb).sum())
    return total / max(n, 1), (correct / max(n, 1) if classify else math.nan)


def _grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters()}


def check_fit_args(epochs, batch_size, optimizer, lr, momentum, weight_decay, loss, snapshot_every) -> None:
    """Every argument check of `fit`, callable on its own (specs validate before any work)."""
    validate.positive_int("epochs", epochs)
    validate.positive_int("batch_size", batch_size)
    optim_mod.check(optimizer, lr, momentum, weight_decay)
    validate.choice("loss", loss, LOSSES)
    validate.positive_int("snapshot_every", snapshot_every, allow_none=True)


def fit(
    model: nn.Module,
    data: Dataset | Split | tuple,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    loss: str = "ce",
    seed: int = 0,
    device="auto",
    eval_sets: Mapping[str, Split | tuple] | None = None,
    record_steps: bool = False,
    record_grad_norm: bool = False,
    snapshot_every: int | None = None,
    hooks: Sequence[Callable[[int, nn.Module, dict], None]] = (),
    progress: bool = True,
    desc: str | None = None,
) -> History:
    """Train `model` in place and return its History.

    `data`: a Dataset (trains on `train`, evaluates on `val` if present and `test` each epoch)
    or a Split / (x, y) pair (no evaluation unless `eval_sets` is given). Seeding makes the
    same call give a bit-identical History on the CPU. A NaN or infinite loss ends the run,
    marked `diverged`, without raising. `hooks` are called after each epoch with
    (epoch, model, row).
    """
    check_fit_args(epochs, batch_size, optimizer, lr, momentum, weight_decay, loss, snapshot_every)
    device = resolve_device(device)
    if isinstance(data, Dataset):
        train = data.train
        eval_sets = data.eval_sets() if eval_sets is None else eval_sets
    else:
        train = as_split(data)
    eval_sets = {k: as_split(v).to(device) for k, v in (eval_sets or {}).items()}
    x, y = train.x.to(device), train.y.to(device)
    n = x.shape[0]
    classify = not y.is_floating_point()

    torch.manual_seed(seed)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optim_mod.make(optimizer, params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    fn = loss_fn(loss)
    gen = torch.Generator().manual_seed(seed)
    record_steps = record_steps or record_grad_norm

    rows, step_losses, step_norms, snapshots = [], [], [], []
    diverged, step = False, 0
    if snapshot_every:
        snapshots.append((0, _snapshot(model)))
    bar = tqdm(range(1, epochs + 1), desc=desc or "epochs", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        batches = batch_indices(n, batch_size, gen, device)
        losses, predictions = [], []  # per-step tensors, reduced once per epoch (no per-step sync)
        for idx in batches:
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            out = model(xb)
            batch_loss = fn(out, yb)
            for p in params:  # zero_grad(set_to_none=True) without its bookkeeping
                p.grad = None
            batch_loss.backward()
            if record_grad_norm:
                step_norms.append(_grad_norm(params))
            opt.step()
            losses.append(batch_loss.detach())
            if classify:
                predictions.append(out.detach().argmax(1))
            step += 1
            if snapshot_every and step % snapshot_every == 0:
                snapshots.append((step, _snapshot(model)))
        epoch_losses = torch.stack(losses)
        sizes = torch.tensor([len(b) for b in batches], dtype=epoch_losses.dtype, device=device)
        train_loss = float((epoch_losses * sizes).sum()) / n
        train_acc = math.nan
        if classify:
            train_acc = int((torch.cat(predictions) == y[torch.cat(batches)]).sum()) / n
        if record_steps:
            step_losses.extend(epoch_losses.unbind())
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
        if not math.isfinite(train_loss):
            diverged = True
        else:
            for name, split in eval_sets.items():
                row[f"{name}_loss"], row[f"{name}_acc"] = evaluate(model, split, loss)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.endswith("loss")})
        for hook in hooks:
            hook(epoch, model, row)
        if diverged:
            break
    bar.close()

    steps = None
    if record_steps and step_losses:
        steps = pd.DataFrame({"step": range(1, len(step_losses) + 1), "loss": torch.stack(step_losses).cpu().numpy()})
        steps["epoch"] = (steps["step"] - 1) * batch_size // n + 1
        if record_grad_norm:
            steps["grad_norm"] = torch.stack(step_norms).cpu().numpy()
    return History(epochs=pd.DataFrame(rows), steps=steps, snapshots=snapshots, diverged=diverged)
