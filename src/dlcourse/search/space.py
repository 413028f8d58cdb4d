"""The search space as data, the seeded sampler, and configurations turned into run specs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import validate, vocabulary


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
