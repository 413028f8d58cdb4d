"""Small helpers that every lab notebook shares: grids of specs, tidy frames of results, checks.

A lab builds its runs from one *base* spec (a plain dict of `RunSpec` fields) and the values it
varies, trains them through `dlcourse.runs`, and then needs the same three things:

- `grid` / `vary`: the list of spec dicts to build `RunSpec`s from (cartesian product, or one
  field at a time against the base);
- `history_frame` / `final_frame`: one long-form DataFrame of per-epoch rows, or one row per run
  of final numbers, each with the varied spec fields as columns, a readable `label`, the
  parameter count and (for MLPs) `depth` and `width` — what `dlcourse.plots` expects;
- small, named measurements that turn those frames into the effects behind claim verdicts
  (`per_seed`, `val_rise`, `first_reach`, `warm_epochs`), so notebooks hold calls, not logic. The verdicts themselves come from `dlcourse.analysis.evidence.decide`; display
  tables from `dlcourse.report`.

Runs are passed as `Result`s that carry their spec (`result.spec`) or as `(spec, result)` pairs;
a spec may be a `RunSpec` or a dict. A result needs `.history` (a per-epoch DataFrame with an
`epoch` column) and, for `final_frame`, may offer `.seconds` (total wall time).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import models
from .report import METRICS

_CLASSES = {"mnist": 10, "fashion-mnist": 10}


# ---------------------------------------------------------------- building specs

def grid(base: Mapping, **axes: Sequence) -> list[dict]:
    """Every combination of `axes` applied to a copy of `base`, the first axis varying slowest.

    >>> [d["hidden"] for d in grid({"lr": 0.1}, hidden=[[50], [50, 50]])]
    [[50], [50, 50]]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"{name}={values!r} is not valid; give a non-empty list of values to vary")
    names = list(axes)
    return [{**base, **dict(zip(names, combo))} for combo in itertools.product(*(axes[n] for n in names))]


def vary(base: Mapping, field: str, values: Sequence, *, param: str | None = None, **fixed) -> list[dict]:
    """One spec dict per value of `field`, the rest taken from `base` (plus `fixed` overrides).

    `values` may be a list, or a mapping value -> dict of extra overrides for that value only
    (e.g. a learning rate per optimizer: `{"sgd": {"lr": 0.1}, "adam": {}}`). `param` is the
    notebook parameter that holds `values`, named in the error when they are not a list.
    """
    if isinstance(values, Mapping):
        items = list(values.items())
    else:
        grid({}, **{param or field: values})  # the same check of the list
        items = [(v, {}) for v in values]
    out = []
    for value, extra in items:
        if not isinstance(extra, Mapping):
            raise ValueError(f"{field}: the overrides for {value!r} must be a mapping of spec fields, got {extra!r}")
        out.append({**base, **fixed, field: value, **extra})
    return out


def hidden_layers(depths: Sequence[int], widths: Sequence[int]) -> list[list[int]]:
    """`hidden` lists of uniform MLPs: every depth (number of hidden layers) times every width."""
    for name, values in (("depths", depths), ("widths", widths)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"{name}={values!r} is not valid; it must be a non-empty list of positive integers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}={list(values)!r} is not valid: {v!r} is not a positive integer")
    return [[w] * d for d in depths for w in widths]


def function_fits(functions: Sequence[str], depths: Sequence[int], seeds: Sequence[int], *, epochs: int,
                  target_params: int = 571, points: int = 1000, batch_size: int = 1000, lr: float = 0.01,
                  momentum: float = 0.9, init: str = "he", device: str = "auto") -> list[dict]:
    """Lab 5's function fits as spec dicts: every function x depth x seed, an MLP of `depth` layers
    with about `target_params` weights (`models.matched_hidden`), momentum SGD on the MSE, gradient
    norms recorded. One builder, so that the lab, its memory test and `benchmarks/kernel_allocator.py`
    train the very same fits."""
    base = dict(train_size=points, model="mlp", optimizer="momentum", lr=lr, momentum=momentum, loss="mse",
                batch_size=batch_size, epochs=epochs, init=init, record_grad_norm=True, device=device)
    grid({}, functions=functions, depths=depths, seeds=seeds)  # each list checked under its own name
    fits = grid(base, dataset=functions, depth=depths, seed=seeds)
    for fit in fits:
        fit["hidden"] = list(models.matched_hidden(fit.pop("depth"), target_params))
    return fits


# ---------------------------------------------------------------- frames of results

def spec_dict(spec) -> dict:
    """A spec as a plain dict, whether it is a dict, a RunSpec (dataclass) or has `to_dict()`."""
    if isinstance(spec, Mapping):
        return dict(spec)
    if hasattr(spec, "to_dict"):
        return dict(spec.to_dict())
    if dataclasses.is_dataclass(spec):
        return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    return dict(vars(spec))


def parameter_count(spec) -> int | None:
    """Trainable parameters of the model a spec describes (None when it cannot be told)."""
    s = spec_dict(spec)
    model = s.get("model", "mlp")
    if s.get("dataset") not in _CLASSES:
        return None
    hidden = list(s.get("hidden") or [])
    if model == "mlp":
        n = models.mlp_parameter_count(hidden, 784, _CLASSES[s["dataset"]])
        return n + (2 * sum(hidden) if s.get("batchnorm") else 0)
    if model == "cnn":
        kwargs = {k: s[k] for k in ("channels", "dense", "pool", "batchnorm") if s.get(k) is not None}
        return models.count_parameters(models.cnn(**kwargs))
    return None


def multiply_adds(spec) -> int | None:
    """Multiply-adds of one image's forward pass through the model a spec describes: in × out per
    linear layer, and per convolution k·k·c_in for every value of its output map (None when it
    cannot be told). A parameter count does not say this: a convolution reuses its few weights at
    every position. Counted on the built model (forward hooks on one blank image), so it follows
    the architecture as `models` builds it; biases, activations and pooling are left out."""
    s = spec_dict(spec)
    model = s.get("model", "mlp")
    if s.get("dataset") not in _CLASSES or model not in ("mlp", "cnn"):
        return None
    if model == "mlp":
        net = models.mlp(list(s.get("hidden") or []), out_features=_CLASSES[s["dataset"]])
    else:
        net = models.cnn(**{k: s[k] for k in ("channels", "dense", "pool") if s.get(k) is not None})
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 1, 28, 28))
    finally:
        for h in hooks:
            h.remove()
    return total


def format_value(field: str, value) -> str:
    """How a spec value reads in a legend: `hidden=[100, 100]` -> `2×100`, floats compactly."""
    if field == "hidden" and isinstance(value, (list, tuple)):
        if not value:
            return "linear"
        if len(set(value)) == 1:
            return f"{len(value)}×{value[0]}"
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def make_label(spec, keys: Sequence[str]) -> str:
    """A readable name of a run from the spec fields in `keys` (just the value when there is one key)."""
    s = spec_dict(spec)
    if len(keys) == 1:
        return format_value(keys[0], s.get(keys[0]))
    return ", ".join(f"{k}={format_value(k, s.get(k))}" for k in keys)


def _pairs(runs) -> list[tuple[dict, object]]:
    pairs = []
    for item in runs:
        if isinstance(item, tuple) and len(item) == 2:
            spec, result = item
        else:
            spec, result = getattr(item, "spec", None), item
            if spec is None:
                raise ValueError("a result without a .spec was given; pass (spec, result) pairs instead")
        pairs.append((spec_dict(spec), result))
    if not pairs:
        raise ValueError("no runs were given")
    return pairs


def _describe(spec: dict, keys: Sequence[str], label: str | None, extra: Sequence[str] = ()) -> dict:
    row = {k: (format_value(k, spec.get(k)) if isinstance(spec.get(k), (list, tuple)) else spec.get(k))
           for k in dict.fromkeys([*keys, *extra])}
    row["label"] = label if label is not None else make_label(spec, keys)
    hidden = spec.get("hidden")
    if spec.get("model", "mlp") == "mlp" and isinstance(hidden, (list, tuple)):
        row.setdefault("depth", len(hidden))
        row.setdefault("width", hidden[0] if hidden and len(set(hidden)) == 1 else math.nan)
    row["params"] = parameter_count(spec)
    if "seed" in spec:
        row.setdefault("seed", spec["seed"])
    return row


def warm_epochs(history: pd.DataFrame) -> pd.DataFrame:
    """The epochs after the first (all of them for a one-epoch run): what wall-time figures
    and timing claims use, since epoch 1 also pays for warm-up (allocation, caches, threads)."""
    return history[history["epoch"] > history["epoch"].min()] if len(history) > 1 else history


def history_frame(runs: Iterable, keys: Sequence[str], labels: Sequence[str] | None = None,
                  extra: Sequence[str] = ()) -> pd.DataFrame:
    """Every run's per-epoch History in one long-form frame.

    Columns: the spec fields in `keys` (lists shown as labels, e.g. `2×100`), `label`, `depth`
    and `width` for MLPs, `params`, then the History columns, and `elapsed`: wall time since
    the start of the run at the end of each epoch, in seconds (for curves against time).
    `extra` names more spec fields to add as columns without putting them in the label.
    """
    pairs = _pairs(runs)
    if labels is not None and len(labels) != len(pairs):
        raise ValueError(f"labels has {len(labels)} entries for {len(pairs)} runs")
    parts = []
    for i, (spec, result) in enumerate(pairs):
        hist = pd.DataFrame(result.history).copy()
        for col, value in _describe(spec, keys, labels[i] if labels else None, extra).items():
            hist[col] = value
        if "seconds" in hist:
            hist["elapsed"] = hist["seconds"].cumsum()
        parts.append(hist)
    frame = pd.concat(parts, ignore_index=True)
    front = [c for c in dict.fromkeys([*keys, *extra, "label", "depth", "width", "params"]) if c in frame.columns]
    return frame[front + [c for c in frame.columns if c not in front]]


def final_frame(runs: Iterable, keys: Sequence[str], labels: Sequence[str] | None = None,
                extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per run: described by `keys` (as in `history_frame`), its final-epoch numbers,
    `epochs` trained, total `seconds` of training, `epoch_seconds` (the median wall time of
    epochs 2..n: the first epoch also pays for warm-up, which would make a small network look
    slow, and a median is less swayed than the total by a burst of load), and
    `best_val_loss` / `best_epoch` when there is a validation set."""
    pairs = _pairs(runs)
    if labels is not None and len(labels) != len(pairs):
        raise ValueError(f"labels has {len(labels)} entries for {len(pairs)} runs")
    rows = []
    for i, (spec, result) in enumerate(pairs):
        hist = pd.DataFrame(result.history)
        row = _describe(spec, keys, labels[i] if labels else None, extra)
        last = hist.iloc[-1] if len(hist) else pd.Series(dtype=float)
        row["epochs"] = int(last["epoch"]) if "epoch" in last else 0
        for m in METRICS:
            if m in hist:
                row[m] = float(last[m])
        total = getattr(result, "seconds", None)
        row["seconds"] = float(total) if total is not None else float(hist["seconds"].sum())
        if "seconds" in hist and len(hist):
            row["epoch_seconds"] = float(warm_epochs(hist)["seconds"].median())
        if "val_loss" in hist and hist["val_loss"].notna().any():
            best = hist["val_loss"].idxmin()
            row["best_val_loss"] = float(hist.loc[best, "val_loss"])
            row["best_epoch"] = int(hist.loc[best, "epoch"])
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- measurements behind claim effects

def first_reach(history: pd.DataFrame, metric: str, target: float, by: str | Sequence[str] = "label",
                x: str = "elapsed", below: bool = True) -> pd.Series:
    """Per run: the first value of `x` (e.g. seconds elapsed, or epoch) at which `metric` reached
    `target` (at or below it when `below`, else at or above); NaN if it never did. `by` names
    the run (a column, or columns such as ["label", "seed"]: then the index has those levels)."""
    out = {}
    for name, part in history.groupby(by, sort=False):
        part = part.sort_values("epoch")
        hit = part[metric] <= target if below else part[metric] >= target
        out[name] = float(part.loc[hit, x].iloc[0]) if hit.any() else math.nan
    reach = pd.Series(out, name=f"{x} to {metric} {'<=' if below else '>='} {target:g}", dtype=float)
    reach.index.names = [by] if isinstance(by, str) else list(by)
    return reach


def per_seed(finals: pd.DataFrame, value: str, by: str = "label") -> pd.DataFrame:
    """`value` as a table of seeds (rows) by settings (columns, in order of appearance): the
    shape in which a paired difference per seed is one subtraction of two columns."""
    missing = [c for c in (value, by, "seed") if c not in finals.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame; it has {list(finals.columns)}")
    if finals.duplicated([by, "seed"]).any():
        raise ValueError(f"by={by!r} is not valid; several rows share a {by} and a seed")
    table = finals.pivot(index="seed", columns=by, values=value)
    return table[list(dict.fromkeys(finals[by]))]


def val_rise(history: pd.DataFrame, metric: str = "val_loss", by: str | Sequence[str] = "label") -> pd.Series:
    """Per run: how far `metric` ended above its own minimum, relative to that minimum (0 when
    the last epoch is the best): a validation loss that turned upward is overfitting. `by` names
    the run (a column, or columns such as ["label", "seed"]: then the index has those levels)."""
    out = {}
    for name, part in history.groupby(by, sort=False):
        v = part.sort_values("epoch")[metric].to_numpy(dtype=float)
        out[name] = float(v[-1] / np.nanmin(v) - 1)
    rise = pd.Series(out, name=f"{metric} rise")
    rise.index.names = [by] if isinstance(by, str) else list(by)
    return rise
