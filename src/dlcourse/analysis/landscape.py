"""Flatness, sensitivity and roughness: three ways of looking at where training ended up.

- `interpolation_curve`: loss and accuracy of theta(alpha) = (1 - alpha) theta_a + alpha theta_b
  for alpha on a grid over [-1, 2], on each given data set (train, test). alpha = 0 is model a,
  alpha = 1 is model b, exactly; the parts outside [0, 1] show how fast the loss rises beyond
  each end, which is how Keskar et al. (2017) compared the sharpness of small- and large-batch minima.
- `jacobian_norms` / `input_sensitivity`: the Frobenius norm of the Jacobian of the outputs with
  respect to the input image, per sample and averaged (Novak et al., 2018).
- `roughness`: the standard deviation of step-to-step changes of a recorded training loss.

Batch-norm buffers: the running mean and variance are interpolated with the weights
(`bn_stats="interpolate"`, variances clipped at zero when extrapolating), or re-estimated for every
alpha from a data set (`bn_stats="recompute"`). The step counter is copied from model a.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import plan_mode, validate
from ..data import Split
from ..metrics import rank_correlation  # re-exported: the labs call landscape.rank_correlation
from ..models import model_device
from ..train import LOSSES, as_split, evaluate

BN_STATS = ("interpolate", "recompute")
OUTPUTS = ("softmax", "logits")


def _head(split: Split, max_samples: int | None) -> Split:
    validate.positive_int("max_samples", max_samples, allow_none=True)
    return split if max_samples is None else Split(split.x[:max_samples], split.y[:max_samples])


def alpha_grid(alpha_range: Sequence[float] = (-1.0, 2.0), num: int = 31) -> np.ndarray:
    """`num` evenly spaced values from alpha_range[0] to alpha_range[1], with 0 and 1 always included.

    Raises ValueError naming `alpha_range` unless it is two finite numbers, low < high, and
    naming `num` unless it is an integer >= 2.
    """
    ok = (isinstance(alpha_range, Sequence) and not isinstance(alpha_range, (str, bytes)) and len(alpha_range) == 2
          and all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in alpha_range)
          and alpha_range[0] < alpha_range[1])
    if not ok:
        raise ValueError(f"alpha_range={alpha_range!r} is not valid; it must be two finite numbers [low, high] "
                         f"with low < high, e.g. [-1, 2]")
    validate.positive_int("num", num)
    if num < 2:
        raise ValueError(f"num={num!r} is not valid; the grid needs at least 2 points")
    low, high = float(alpha_range[0]), float(alpha_range[1])
    grid = np.linspace(low, high, num)
    ends = [a for a in (0.0, 1.0) if low <= a <= high]
    return np.unique(np.concatenate([grid, ends]).round(12))


def _check_same_architecture(model_a: nn.Module, model_b: nn.Module) -> None:
    sa, sb = model_a.state_dict(), model_b.state_dict()
    if sa.keys() != sb.keys():
        only_a = sorted(set(sa) - set(sb))[:3]
        only_b = sorted(set(sb) - set(sa))[:3]
        raise ValueError(f"model_b does not have the same architecture as model_a (only in a: {only_a}, "
                         f"only in b: {only_b}); interpolation needs two models of one architecture")
    for k in sa:
        if sa[k].shape != sb[k].shape:
            raise ValueError(f"model_b does not have the same architecture as model_a: {k} has shape "
                             f"{tuple(sb[k].shape)} in b but {tuple(sa[k].shape)} in a")


def interpolate_state(state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * a + alpha * b for every floating-point entry; integer buffers come from a.

    Written as that sum (not `a + alpha * (b - a)`) so that alpha = 0 and alpha = 1 give a and b
    bit for bit. Batch-norm running variances are clipped at 0 (extrapolation can make them negative).
    """
    out = {}
    for k, a in state_a.items():
        b = state_b[k]
        if a.is_floating_point():
            v = (1.0 - alpha) * a + alpha * b.to(a.device, a.dtype)
            if k.endswith("running_var"):
                v = v.clamp_min(0.0)
            out[k] = v
        else:
            out[k] = a.clone()
    return out


def _bn_modules(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, data, batch_size: int = 1000) -> nn.Module:
    """Re-estimate every batch-norm layer's running mean and variance on `data` (exact averages over
    all of it, in batches); other layers stay in eval mode. Returns the model in eval mode."""
    split = as_split(data)
    bns = _bn_modules(model)
    if not bns:
        return model.eval()
    saved = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    device = model_device(model)
    for start in range(0, len(split), batch_size):
        model(split.x[start:start + batch_size].to(device))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


def interpolation_curve(
    model_a: nn.Module,
    model_b: nn.Module,
    sets: Mapping[str, Split | tuple],
    alpha_range: Sequence[float] = (-1.0, 2.0),
    num: int = 31,
    loss: str = "ce",
    bn_stats: str = "interpolate",
    bn_data: Split | tuple | None = None,
    max_samples: int | None = None,
) -> pd.DataFrame:
    """Loss and accuracy of the interpolated model on each set, along alpha.

    `sets`: named data sets, e.g. {"train": ds.train, "test": ds.test}; `max_samples` evaluates only
    the first that many samples of each (faster). `bn_stats="recompute"` re-estimates batch-norm
    statistics for every alpha on `bn_data` (default: the "train" set). The models are not changed.

    Returns a long frame with one row per alpha and set: alpha, set, loss, acc.
    """
    alphas = alpha_grid(alpha_range, num)
    validate.choice("loss", loss, LOSSES)
    bn_stats = validate.choice("bn_stats", bn_stats, BN_STATS)
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError(f"sets={sets!r} is not valid; pass a dict of named data sets, e.g. {{'train': ..., 'test': ...}}")
    _check_same_architecture(model_a, model_b)
    splits = {name: _head(as_split(s), max_samples) for name, s in sets.items()}
    real = sum(len(s.y) for s in splits.values())
    splits = {name: _head(s, plan_mode.samples(len(s.y))) for name, s in splits.items()}  # --plan: a sample
    if bn_stats == "recompute":
        if bn_data is None:
            if "train" not in sets:
                raise ValueError("bn_data=None is not valid with bn_stats='recompute' unless sets has a 'train' entry")
            bn_data = sets["train"]
        bn_data = as_split(bn_data)
    state_a = {k: v.detach() for k, v in model_a.state_dict().items()}
    state_b = {k: v.detach() for k, v in model_b.state_dict().items()}
    probe = copy.deepcopy(model_a).eval()
    rows = []
    with plan_mode.timed("interpolation_curve", sum(len(s.y) for s in splits.values()), real):
        for alpha in alphas:
            probe.load_state_dict(interpolate_state(state_a, state_b, float(alpha)))
            if bn_stats == "recompute":
                recompute_bn_stats(probe, bn_data)
            for name, split in splits.items():
                l, acc = evaluate(probe, split, loss)
                rows.append({"alpha": float(alpha), "set": name, "loss": l, "acc": acc})
    return pd.DataFrame(rows)


def jacobian_norms(model: nn.Module, x: torch.Tensor, output: str = "softmax", batch_size: int = 1000) -> torch.Tensor:
    """Per-sample Frobenius norm of d output / d input, shape (N,).

    `output="softmax"` differentiates the class probabilities (Novak et al. 2018), `"logits"` the raw
    outputs. The model is evaluated in eval mode, where samples do not interact, so one backward pass
    per output unit over a whole batch gives every sample's Jacobian row at once.
    """
    output = validate.choice("output", output, OUTPUTS)
    validate.positive_int("batch_size", batch_size)
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x of shape {getattr(x, 'shape', None)} is not valid; pass a non-empty batch (N, ...)")
    was_training = model.training
    device = model_device(model)
    model.eval()
    norms = []
    try:
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].detach().to(device, copy=True).requires_grad_(True)
            with torch.enable_grad():
                out = model(xb)
                if out.ndim == 1:
                    out = out.unsqueeze(1)
                out = out.flatten(1)
                if output == "softmax":
                    out = out.softmax(dim=1)
                sq = torch.zeros(xb.shape[0], device=xb.device, dtype=xb.dtype)
                k_last = out.shape[1] - 1
                for k in range(out.shape[1]):
                    (g,) = torch.autograd.grad(out[:, k].sum(), xb, retain_graph=k < k_last)
                    sq += g.pow(2).flatten(1).sum(1)
            norms.append(sq.sqrt().detach())
    finally:
        model.train(was_training)
    return torch.cat(norms)


def input_sensitivity(model: nn.Module, data, output: str = "softmax", max_samples: int | None = None) -> float:
    """Mean over samples of the Frobenius norm of the input-output Jacobian (see `jacobian_norms`).

    `data`: a Split, an (x, y) pair or an input tensor; `max_samples` uses only the first that many.
    """
    x = data if isinstance(data, torch.Tensor) else as_split(data).x
    validate.positive_int("max_samples", max_samples, allow_none=True)
    if max_samples is not None:
        x = x[:max_samples]
    used = plan_mode.samples(len(x))  # --plan: a sample, timed and scaled
    with plan_mode.timed("input_sensitivity", used, len(x)):
        return float(jacobian_norms(model, x[:used], output).mean())


def roughness(losses, skip: int = 0) -> float:
    """Standard deviation of the step-to-step changes of a per-step loss series, after the first `skip` steps.

    A smooth, steadily falling curve scores low; a curve with spikes scores high. NaN if fewer than
    three steps remain.
    """
    validate.non_negative_int("skip", skip)
    values = np.asarray(pd.Series(losses, dtype=float).to_numpy()[skip:])
    if values.size < 3:
        return math.nan
    return float(np.diff(values).std(ddof=1))


# -- checks behind the claims of the generalization lab ------------------------------------------
def end_sharpness(curve: pd.DataFrame, set: str = "train", step: float = 0.5, metric: str = "loss") -> tuple[float, float]:
    """How fast `metric` rises when stepping `step` beyond each end of an interpolation curve:
    (value at -step minus value at 0, value at 1 + step minus value at 1), read off `curve`
    (linear in between grid points). Both steps cover the same distance in weight space, so
    the end with the larger rise sits in the sharper minimum along this line.
    """
    if set not in set_names(curve):
        raise ValueError(f"set={set!r} is not valid; the curve holds: {', '.join(set_names(curve))}")
    part = curve[curve["set"] == set].sort_values("alpha")
    a, v = part["alpha"].to_numpy(dtype=float), part[metric].to_numpy(dtype=float)
    if not (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0
            and a[0] <= -step and a[-1] >= 1 + step):
        raise ValueError(f"step={step!r} is not valid; it must be > 0 and the curve must reach alpha = -step and "
                         f"1 + step (it spans [{a[0]:g}, {a[-1]:g}])")
    at = lambda x: float(np.interp(x, a, v))  # noqa: E731
    return at(-step) - at(0.0), at(1.0 + step) - at(1.0)


def midpoint_change(curve: pd.DataFrame, set: str = "test", metric: str = "acc", alpha: float = 0.5) -> float:
    """`metric` at `alpha` (linear between grid points) minus the mean of its values at the two
    ends (alpha 0 and 1) of an interpolation curve: negative for an accuracy that dips between
    the networks, positive for a loss with a hill (a barrier) there."""
    if set not in set_names(curve):
        raise ValueError(f"set={set!r} is not valid; the curve holds: {', '.join(set_names(curve))}")
    part = curve[curve["set"] == set].sort_values("alpha")
    a, v = part["alpha"].to_numpy(dtype=float), part[metric].to_numpy(dtype=float)
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and a[0] <= alpha <= a[-1]):
        raise ValueError(f"alpha={alpha!r} is not valid; the curve spans [{a[0]:g}, {a[-1]:g}]")
    at = lambda x: float(np.interp(x, a, v))  # noqa: E731
    return at(alpha) - (at(0.0) + at(1.0)) / 2


def set_names(curve: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(curve["set"]))


def half_gains(x, y) -> tuple[float, float]:
    """Sort by x, then (rise of y from the smallest x to the median x, rise from the median x to the
    largest x). A curve that levels off has a much smaller second number than first."""
    frame = pd.DataFrame({"x": list(x), "y": list(y)}, dtype=float).sort_values("x", kind="stable")
    if len(frame) < 3:
        raise ValueError(f"x has {len(frame)} entries; at least 3 are needed to split them in halves")
    v = frame["y"].to_numpy()
    mid = len(v) // 2
    return float(v[mid] - v[0]), float(v[-1] - v[mid])


__all__ = ["end_sharpness", "midpoint_change", "rank_correlation", "half_gains", "alpha_grid", "interpolate_state", "recompute_bn_stats", "interpolation_curve", "jacobian_norms",
           "input_sensitivity", "roughness", "BN_STATS", "OUTPUTS"]
