"""What a finished search teaches: importance, per-level effects, disjoint parts, convergence."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import validate
from ..metrics import rank_correlation
from .space import MEMBER_KEYS, _params


def _ordered(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def importance(frame: pd.DataFrame, target: str = "val_acc", params: Sequence[str] | None = None) -> pd.DataFrame:
    """Per hyperparameter: `importance` (eta^2, the share of the target's variance explained by
    the hyperparameter's value alone, in [0, 1]) and `spearman` (rank correlation with the target
    for numeric hyperparameters, NaN for names such as optimizers); sorted by importance.

    Eta^2 is what a one-feature regression tree with one leaf per value would score; with few
    runs per value it is biased upwards (chance alone gives about (levels - 1) / (draws - 1), draws
    being the runs, or the shapes for the shape keys of a `per_shape` sample), so `chance` gives
    that baseline for comparison. For a shape key the formula is the level when the runs of a
    group score alike; `shuffled` measures the baseline on the search's own accuracies.

    A hyperparameter with a single value in the frame (never varied) explains nothing: its
    importance is exactly 0, not the rounding noise of its one group mean against the overall
    mean (about 1e-31), and its chance level is 0 too. `above_chance` compares the two.
    """
    params = _params(frame, params)
    y = frame[target].astype(float)
    n = len(y)
    total = float(((y - y.mean()) ** 2).sum())
    rows = []
    for p in params:
        groups = y.groupby(frame[p].astype(str) if not _ordered(frame[p]) else frame[p])
        between = float((groups.count() * (groups.mean() - y.mean()) ** 2).sum())
        levels = frame[p].nunique()
        eta2 = float("nan") if total <= 0 else 0.0 if levels < 2 else between / total
        # min_pairs=2: a two-run frame keeps its rho of +-1 in the table
        rho = rank_correlation(frame[p], y, min_pairs=2) if _ordered(frame[p]) else float("nan")
        # stack-aware samples draw the shape keys once per group: fewer independent draws
        draws = frame["shape"].nunique() if "shape" in frame.columns and p not in MEMBER_KEYS else n
        rows.append({"hyperparameter": p, "importance": eta2, "spearman": rho, "levels": levels,
                     "chance": min(1.0, (levels - 1) / (draws - 1)) if draws > 1 else float("nan")})
    out = pd.DataFrame(rows, columns=["hyperparameter", "importance", "spearman", "levels", "chance"])
    return out.sort_values("importance", ascending=False, ignore_index=True)


def above_chance(table: pd.DataFrame, tol: float = 1e-9) -> pd.Series:
    """Per hyperparameter of an `importance` table (a boolean Series indexed by its name): is
    its importance above its chance level by more than `tol`?

    A hyperparameter that took a single value (`levels` < 2) never is, whatever rounding left
    in its importance; nor is one whose importance or chance is NaN (a flat target, one draw).
    """
    for col in ("hyperparameter", "importance", "chance", "levels"):
        if col not in table.columns:
            raise ValueError(f"table is not valid: it has no {col!r} column; give an importance table")
    tol = validate.non_negative_float("tol", tol)
    margin = table["importance"].astype(float) - table["chance"].astype(float)
    out = (table["levels"] > 1) & (margin > tol)  # NaN > tol is False
    return pd.Series(out.to_numpy(dtype=bool), index=table["hyperparameter"].to_numpy(), name="above_chance")


def shuffled(frame: pd.DataFrame, seed: int = 0, params: Sequence[str] | None = None) -> pd.DataFrame:
    """A copy of a search whose hyperparameter values are dealt out again at random, the way they
    were drawn, while the metrics stay in place: no hyperparameter has anything to do with them.

    The `importance` of such copies is what noise alone gives (its null distribution). Keys
    outside MEMBER_KEYS, drawn once per `shape` group by a `per_shape` sample, move with their
    whole group (each group takes the values of another group); MEMBER_KEYS, drawn per run, move
    between single runs. Without a `shape` column every key moves between single runs. A
    per-run shuffle of the shape keys would count each group as `per_shape` independent draws
    and give too low a baseline.
    """
    params = _params(frame, params)
    validate.non_negative_int("seed", seed)
    rng = np.random.default_rng(seed)
    shared = [p for p in params if p not in MEMBER_KEYS]
    member = [p for p in params if p in MEMBER_KEYS]
    if "shape" in frame.columns:
        if frame["shape"].isna().any():
            raise ValueError("frame is not valid: its shape column has missing values")
        varying = [p for p in shared if (frame.groupby("shape")[p].nunique() > 1).any()]
        if varying:
            raise ValueError(f"frame is not valid: runs of one shape differ in {', '.join(varying)}; "
                             "a shape group shares every key outside MEMBER_KEYS")
        unit, _ = pd.factorize(frame["shape"])
    else:
        unit = np.arange(len(frame))
    # the first run of each group speaks for it; every run of group u takes the values of the
    # first run of the group the permutation assigns to u
    first = pd.Series(np.arange(len(frame))).groupby(unit).first().to_numpy()
    source = first[rng.permutation(len(first))][unit]
    rows = rng.permutation(len(frame))
    out = frame.copy()
    for p in shared:
        out[p] = frame[p].to_numpy()[source]
    for p in member:
        out[p] = frame[p].to_numpy()[rows]
    return out


def level_effects(frame: pd.DataFrame, target: str = "val_acc", params: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (hyperparameter, value): runs, mean and best target, and the Pearson
    correlation of the value's one-hot indicator with the target (positive: runs with this value
    score above the others)."""
    params = _params(frame, params)
    y = frame[target].astype(float)
    rows = []
    for p in params:
        for value, sub in frame.groupby(p, sort=True):
            hot = (frame[p] == value).astype(float)
            corr = float(hot.corr(y)) if 0 < hot.sum() < len(hot) and y.nunique() > 1 else float("nan")
            rows.append({"hyperparameter": p, "value": value, "label": f"{p}={value}", "runs": len(sub),
                         "mean": float(sub[target].mean()), "best": float(sub[target].max()), "correlation": corr})
    return pd.DataFrame(rows, columns=["hyperparameter", "value", "label", "runs", "mean", "best", "correlation"])


def level_means(frame: pd.DataFrame, param: str, target: str = "val_acc") -> pd.Series:
    """Mean target per value of one hyperparameter, best first."""
    _params(frame, [param])
    return frame.groupby(param)[target].mean().sort_values(ascending=False)


def parts(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.Series:
    """Split a search into `n` disjoint parts of about equal size, at random (seeded): a part
    number 0..n-1 per row, aligned with `frame`.

    A random search is one draw of configurations, so a claim about it ("adam did best") has no
    seeds to show its spread. Measured on each part separately, the claim gets `n` independent
    estimates: the draws of disjoint parts are independent. Rows of one `shape` group (a
    `per_shape` sample) stay together, since they share their shape hyperparameters.
    """
    validate.positive_int("n", n)
    validate.non_negative_int("seed", seed)
    units = frame["shape"] if "shape" in frame.columns else pd.Series(np.arange(len(frame)), index=frame.index)
    distinct = pd.unique(units)
    if len(distinct) < n:
        raise ValueError(f"n={n} is not valid; the search has only {len(distinct)} independent draws to split")
    order = np.random.default_rng(seed).permutation(len(distinct))
    part_of = {unit: int(i % n) for i, unit in zip(order, distinct)}
    return units.map(part_of).rename("part")


def share(frame: pd.DataFrame, param: str, value, mask) -> float:
    """Fraction of the rows selected by `mask` whose `param` equals `value` (NaN if none selected)."""
    _params(frame, [param])
    sub = frame.loc[mask, param]
    return float((sub == value).mean()) if len(sub) else float("nan")


def matches(config: Mapping, reference: Mapping) -> dict[str, bool]:
    """For each key of `reference`: does `config` hold the same value (numbers compared as floats)?"""
    out = {}
    for key, want in reference.items():
        have = config.get(key)
        if isinstance(want, (int, float)) and not isinstance(want, bool) and have is not None:
            out[key] = math.isclose(float(have), float(want))
        else:
            out[key] = have == want
    return out


def last_gain(history: pd.DataFrame, metric: str = "val_acc", key: str = "key") -> pd.Series:
    """Per run (`key`), how much `metric` changed over its last epoch: a run still climbing at the
    end (gain > 0) had not converged. NaN for runs with a single epoch. `history` is the long
    per-epoch table of `runs.histories`."""
    for col in (metric, key, "epoch"):
        if col not in history.columns:
            raise ValueError(f"history is not valid: it has no {col!r} column")
    ordered = history.sort_values([key, "epoch"], kind="stable")
    return ordered.groupby(key, sort=False)[metric].apply(lambda v: v.iloc[-1] - v.iloc[-2] if len(v) > 1 else np.nan)
