"""Random hyperparameter search: the space as data, a seeded sampler, and what to learn from it.

The space is the one of the Fashion-MNIST sweep report (lab 8): epochs, depth, width, weight
decay, learning rate, optimizer, batch size, initialization and activation, each with a few
values. A configuration is one row of a DataFrame with one column per hyperparameter; its values
are the course's own names (`dlcourse.vocabulary`: "normal", "xavier_normal"), the report's words
("random", "xavier") only display labels (`REPORT_WORDS`). `config_to_spec` turns a row into the
fields of a `dlcourse.runs.RunSpec`.

Stacking. `runs.sweep(backend="stacked")` trains MLPs as one stacked model when they differ only
in seed, lr, momentum, weight decay and init (`runs.stack_group`). In a plain random search
over this space almost no two configurations share the rest, so nothing stacks. `sample(...,
per_shape=m)` draws the other ("shape") hyperparameters once per group of `m` configurations
and gives each member its own distinct (lr, weight decay, init): every hyperparameter is still
drawn uniformly, configurations stay distinct, and the sweep trains in stacks of `m`.
`per_shape=1` is the plain random search.

Analysis, with pandas and NumPy only (no scikit-learn):
- `importance`: for each hyperparameter, the share of the variance of validation accuracy that
  its value alone explains (eta squared: the R^2 of predicting each run by the mean of its
  group), and the Spearman correlation with accuracy for hyperparameters whose values are
  ordered (numbers), NaN for unordered names;
- `level_effects`: for each value of each hyperparameter, its runs' mean accuracy and the
  correlation of "has this value" (one-hot) with accuracy (what W&B's parameter-importance
  panel shows as correlation);
- `best`, `recommend`: the top configuration, and a few good ones that differ in optimizer or
  activation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from . import validate, vocabulary
from .metrics import rank_correlation

#: The report's search space, in its order, in the course's names. `layers` hidden layers of
#: `width` units each; "normal" is the report's "random" (every weight N(0, 0.05^2), whatever the
#: layer's size), "xavier_normal" its "xavier".
SPACE: dict[str, tuple] = {
    "epochs": (5, 10),
    "layers": (3, 4, 5),
    "width": (32, 64, 128),
    "weight_decay": (0.0, 5e-4, 0.5),
    "lr": (1e-3, 1e-4),
    "optimizer": ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam"),
    "batch_size": (16, 32, 64),
    "init": ("normal", "xavier_normal"),
    "activation": ("sigmoid", "tanh", "relu"),
}
#: The report's words for our names, for labels only (nothing accepts them as input).
REPORT_WORDS = {"normal": "random", "xavier_normal": "xavier"}
#: Which vocabulary list each named hyperparameter's values come from (checked by `check_space`).
_VOCABULARY = {"optimizer": vocabulary.OPTIMIZERS, "init": vocabulary.INITS, "activation": vocabulary.ACTIVATIONS}
#: Hyperparameters that stacked members may differ in (see `runs.stack_group`).
MEMBER_KEYS = ("lr", "weight_decay", "init")
#: Metrics copied from a sweep's frame by `attach`.
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds", "diverged")


def check_space(space: Mapping[str, Sequence]) -> dict[str, tuple]:
    """The space as {name: tuple of distinct values}; a ValueError names a bad entry."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space={space!r} is not valid; it must map hyperparameter names to lists of values")
    out = {}
    for name, values in space.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"space[{name!r}]={values!r} is not valid; it must be a non-empty list of values")
        if len(set(values)) != len(values):
            raise ValueError(f"space[{name!r}]={list(values)!r} is not valid; its values must be distinct")
        for value in values if name in _VOCABULARY else ():
            validate.choice(name, value, _VOCABULARY[name])
        out[name] = tuple(values)
    return out


def space_size(space: Mapping[str, Sequence] = SPACE) -> int:
    """Number of distinct configurations of the space."""
    return math.prod(len(v) for v in check_space(space).values())


def sample(n: int, seed: int = 0, space: Mapping[str, Sequence] = SPACE, per_shape: int = 1) -> pd.DataFrame:
    """`n` distinct configurations drawn uniformly at random (seeded), one row each.

    `per_shape=m` draws the hyperparameters outside MEMBER_KEYS once per group of `m` rows and
    gives the members distinct MEMBER_KEYS values, so that each group trains as one stack; the
    groups' shapes are distinct too. Columns follow the order of `space`; a `shape` column
    numbers the groups.
    """
    space = check_space(space)
    validate.positive_int("n", n)
    validate.positive_int("per_shape", per_shape)
    validate.non_negative_int("seed", seed)
    total = space_size(space)
    if n > total:
        raise ValueError(f"n={n} is not valid; the space holds only {total} distinct configurations")
    rng = np.random.default_rng(seed)
    # a plain random search (per_shape=1) draws all keys together
    member_keys = [k for k in space if k in MEMBER_KEYS and per_shape > 1]
    shape_keys = [k for k in space if k not in member_keys]
    n_member = math.prod(len(space[k]) for k in member_keys)
    n_shape = math.prod(len(space[k]) for k in shape_keys)
    if per_shape > n_member:
        raise ValueError(f"per_shape={per_shape} is not valid; at most {n_member} configurations can share a "
                         f"shape (the distinct values of {', '.join(member_keys) or 'no member keys'})")
    groups = -(-n // per_shape)
    if groups > n_shape:
        raise ValueError(f"n={n} with per_shape={per_shape} is not valid; the space holds only {n_shape} "
                         f"distinct shapes; raise per_shape")

    def draw(keys: list[str], k: int) -> list[dict]:
        # k distinct combinations as mixed-radix indices into the product of the keys' values
        sizes = [len(space[key]) for key in keys]
        count = math.prod(sizes)
        picks = rng.choice(count, size=k, replace=False)
        rows = []
        for code in picks:
            row, code = {}, int(code)
            for key, size in zip(reversed(keys), reversed(sizes)):
                code, i = divmod(code, size)
                row[key] = space[key][i]
            rows.append(row)
        return rows

    rows = []
    for g, shape in enumerate(draw(shape_keys, groups)):
        for member in draw(member_keys, min(per_shape, n - g * per_shape)):
            rows.append({**shape, **member, "shape": g})
    frame = pd.DataFrame(rows, columns=[*space, "shape"])
    return frame


def config_to_spec(config: Mapping, *, dataset: str = "fashion-mnist", train_size: int | None = None,
              val_size: int = 0, test_size: int | None = None, seed: int = 0, device: str = "auto",
              loss: str = "ce", epochs: int | None = None, eval_test: bool = True) -> dict:
    """The RunSpec fields of one configuration (a row of `sample`, or a dict with its keys).

    `epochs` overrides the configuration's own epochs (a smoke profile's cap).
    """
    missing = [k for k in SPACE if k not in config]
    if missing:
        raise ValueError(f"config is not valid: it lacks {', '.join(missing)}; give every key of search.SPACE")
    return {
        "dataset": dataset, "train_size": train_size, "val_size": val_size, "test_size": test_size, "model": "mlp",
        "hidden": [int(config["width"])] * int(config["layers"]), "activation": str(config["activation"]),
        "init": validate.choice("init", config["init"], vocabulary.INITS), "optimizer": str(config["optimizer"]), "lr": float(config["lr"]),
        "weight_decay": float(config["weight_decay"]), "batch_size": int(config["batch_size"]),
        "epochs": int(epochs if epochs is not None else config["epochs"]), "loss": loss, "seed": int(seed),
        "eval_test": bool(eval_test), "device": device,
    }


def configs_to_specs(configs: pd.DataFrame, **base) -> list[dict]:
    """`config_to_spec` of every row (the same `base` fields for all)."""
    return [config_to_spec(row, **base) for row in configs.to_dict("records")]


def attach(configs: pd.DataFrame, sweep: pd.DataFrame, num_classes: int = 10) -> pd.DataFrame:
    """The configurations with their runs' final metrics (rows in the same order as the specs).

    A run that diverged has no validation accuracy; it counts as chance (1 / num_classes), the
    accuracy of a network that learned nothing, so it weighs in the analysis as a poor run.
    """
    if len(configs) != len(sweep):
        raise ValueError(f"configs and sweep are not valid: {len(configs)} configurations but {len(sweep)} runs")
    out = configs.reset_index(drop=True).copy()
    for name in METRICS:
        if name in sweep.columns:
            out[name] = sweep[name].to_numpy()
    if "diverged" not in out:
        out["diverged"] = False
    out["diverged"] = out["diverged"].fillna(False).astype(bool)
    for name in ("val_acc", "test_acc", "train_acc"):
        if name in out:
            out.loc[out[name].isna(), "diverged"] = True
            out[name] = out[name].fillna(1.0 / num_classes)
    return out


def _params(frame: pd.DataFrame, params) -> list[str]:
    params = [p for p in SPACE if p in frame.columns] if params is None else list(params)
    for p in params:
        if p not in frame.columns:
            raise ValueError(f"params is not valid: {p!r} is not a column; columns are {', '.join(frame.columns)}")
    return params


def _ordered(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def importance(frame: pd.DataFrame, target: str = "val_acc", params: Sequence[str] | None = None) -> pd.DataFrame:
    """Per hyperparameter: `importance` (eta^2, the share of the target's variance explained by
    the hyperparameter's value alone, in [0, 1]) and `spearman` (rank correlation with the target
    for numeric hyperparameters, NaN for names such as optimizers); sorted by importance.

    Eta^2 is what a one-feature regression tree with one leaf per value would score; with few
    runs per value it is biased upwards (chance alone gives about (levels - 1) / (draws - 1), draws
    being the runs, or the shapes for the shape keys of a `per_shape` sample), so `chance` gives
    that baseline for comparison.
    """
    params = _params(frame, params)
    y = frame[target].astype(float)
    n = len(y)
    total = float(((y - y.mean()) ** 2).sum())
    rows = []
    for p in params:
        groups = y.groupby(frame[p].astype(str) if not _ordered(frame[p]) else frame[p])
        between = float((groups.count() * (groups.mean() - y.mean()) ** 2).sum())
        eta2 = between / total if total > 0 else float("nan")
        # min_pairs=2: a two-run frame keeps its rho of +-1 in the table
        rho = rank_correlation(frame[p], y, min_pairs=2) if _ordered(frame[p]) else float("nan")
        levels = frame[p].nunique()
        # stack-aware samples draw the shape keys once per group: fewer independent draws
        draws = frame["shape"].nunique() if "shape" in frame.columns and p not in MEMBER_KEYS else n
        rows.append({"hyperparameter": p, "importance": eta2, "spearman": rho, "levels": levels,
                     "chance": min(1.0, (levels - 1) / (draws - 1)) if draws > 1 else float("nan")})
    out = pd.DataFrame(rows, columns=["hyperparameter", "importance", "spearman", "levels", "chance"])
    return out.sort_values("importance", ascending=False, ignore_index=True)


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


def best(frame: pd.DataFrame, target: str = "val_acc", k: int = 1) -> pd.DataFrame:
    """The `k` rows with the highest target (ties: lower validation loss first, then order)."""
    validate.positive_int("k", k)
    keys, asc = [target], [False]
    if "val_loss" in frame.columns and target != "val_loss":
        keys.append("val_loss")
        asc.append(True)
    return frame.sort_values(keys, ascending=asc, kind="stable").head(k)


def recommend(frame: pd.DataFrame, k: int = 3, target: str = "val_acc",
              distinct: Sequence[str] = ("optimizer", "activation")) -> pd.DataFrame:
    """`k` strong configurations that differ from each other: walking down the ranking by
    target, take a run only if its combination of `distinct` hyperparameters is new.

    That turns "the top three" (often three near-copies) into three different recipes worth
    trying first on a new data set.
    """
    validate.positive_int("k", k)
    distinct = _params(frame, distinct)
    ranked = best(frame, target, k=len(frame))
    seen, picks = set(), []
    for idx, row in ranked.iterrows():
        combo = tuple(row[d] for d in distinct)
        if combo in seen:
            continue
        seen.add(combo)
        picks.append(idx)
        if len(picks) == k:
            break
    return ranked.loc[picks]


def neighbours(frame: pd.DataFrame, k: int = 2, target: str = "val_acc", space: Mapping[str, Sequence] = SPACE,
               distinct: Sequence[str] = ("optimizer", "activation", "lr")) -> pd.DataFrame:
    """The local step after a random search: every configuration that differs in exactly one
    hyperparameter from one of the `k` best distinct recipes of `frame` (see `recommend`), and
    that `frame` has not run yet, one row each, with a `base` column (the recipe's row label).

    A random search of a few dozen draws lands near good settings but rarely on the best one:
    the best draw often has one knob off (a narrow layer, a small batch). Trying each single
    change of the best recipes is a coordinate step from where the search got to; taking more
    than one recipe keeps the step from only polishing one family. Rows that several bases
    share are kept once (the first base).
    """
    space = check_space(space)
    validate.positive_int("k", k)
    keys = _params(frame, list(space))

    def ident(row) -> tuple:
        return tuple(_same(row[key]) for key in keys)

    seen = {ident(row) for row in frame[keys].to_dict("records")}
    rows = []
    for label, base in recommend(frame, k=k, target=target, distinct=distinct).iterrows():
        for key in keys:
            for value in space[key]:
                if _same(value) == _same(base[key]):
                    continue
                row = {name: base[name] for name in keys}
                row[key] = value
                if ident(row) not in seen:
                    seen.add(ident(row))
                    rows.append({**row, "base": label, "changed": key})
    return pd.DataFrame(rows, columns=[*keys, "base", "changed"])


def local_steps(results: pd.DataFrame, train, rounds: int = 2, k: int = 2, target: str = "val_acc",
                space: Mapping[str, Sequence] = SPACE) -> pd.DataFrame:
    """Coordinate steps after a random search: `rounds` times, train the `neighbours` of the `k`
    best distinct recipes found so far and add them to the pool. Stops early when a round has
    nothing new to try.

    `train(frame)` trains the configurations of `frame` and returns them with their metrics
    (e.g. `attach(frame, runs.sweep(...))`). Returns only the new runs, with a `round` column
    (1, 2, ...) and the `base` and `changed` columns of `neighbours`; empty when `rounds=0`.
    `base` is a row position in `pd.concat([results, returned], ignore_index=True)`. Two rounds reach settings two changes away from a draw (a wider layer *and* another
    activation), which one round cannot.
    """
    validate.non_negative_int("rounds", rounds)
    validate.positive_int("k", k)
    pool, new = results.reset_index(drop=True), []
    for r in range(1, rounds + 1):
        candidates = neighbours(pool, k=k, target=target, space=space)
        if candidates.empty:
            break
        trained = train(candidates.drop(columns=["base", "changed"]))
        if len(trained) != len(candidates):
            raise ValueError(f"train is not valid: it returned {len(trained)} rows for {len(candidates)} configurations")
        step = trained.reset_index(drop=True).assign(round=r, base=candidates["base"].to_numpy(),
                                                     changed=candidates["changed"].to_numpy())
        new.append(step)
        pool = pd.concat([pool, step], ignore_index=True)
    if not new:
        return pd.DataFrame(columns=[*results.columns, "round", "base", "changed"])
    return pd.concat(new, ignore_index=True)


def _same(value):
    """A hashable form under which 5e-4 == np.float64(5e-4) and 10 == np.int64(10)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return value


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


__all__ = ["SPACE", "REPORT_WORDS", "MEMBER_KEYS", "check_space", "space_size", "sample", "config_to_spec", "configs_to_specs",
           "attach", "importance", "level_effects", "level_means", "best", "recommend", "neighbours", "local_steps", "parts",
           "share", "matches", "last_gain"]
