"""From a finished search to recommendations: the best, distinct finalists, local steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import validate
from .space import SPACE, _params, check_space


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
