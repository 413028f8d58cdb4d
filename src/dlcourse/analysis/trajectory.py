"""The optimization path: weight trajectories in 2-D, gradient norm against loss, fitted curves.

`trajectory_pca` takes the weight snapshots of several runs (`Result.snapshots`: a list of
(step, {parameter name: tensor})), flattens the whole model or only some layers into one vector
per snapshot, fits ONE principal-component analysis across every run's snapshots, and returns
a long-form frame (run, step, pc1, pc2, ...) with the explained variance of each component.
Fitting one PCA for all runs puts them in the same coordinates, so their paths can be compared.

How: the snapshot matrix X (points x parameters) is never built. Its centred Gram matrix
X Xᵀ (points x points) is summed one parameter tensor at a time (float32 products, float64
sums), and its eigen-decomposition gives the PC coordinates (U·S) and the variances (S²); memory
stays at the size of the snapshots themselves, even for the 318k-weight MNIST MLP.

`compare` says how alike two projections of the same snapshots are (e.g. whole model against
first layer): the correlation of their pairwise distances and the Procrustes disparity after
the best rotation, reflection and scaling.

`comovement` measures whether the gradient norm moves with the loss (per-step frame of a run
with `record_grad_norm`) and `predict_curve`
evaluates a trained 1-D model on a dense grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..metrics import rank_correlation
from ..train import forward_in_chunks

Snapshots = Sequence[tuple[int, Mapping[str, torch.Tensor]]]


# ---------------------------------------------------------------- layer selection

def layer_of(param_name: str) -> str:
    """The module a parameter belongs to: `3.weight` -> `3`, `features.0.bias` -> `features.0`."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def _natural(name: str) -> tuple:
    """Sort key that puts `2.weight` before `10.weight` (module indices compared as numbers)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split("."))


def layers(snapshots: Snapshots) -> list[str]:
    """The layers (modules with parameters) of a run's snapshots, in model order.

    Stored snapshots come back in any order, so the order is that of the module indices
    (`1`, `3`, `5` for the course's Sequential models), not of the dict.
    """
    names = _names(snapshots)
    return sorted(dict.fromkeys(layer_of(n) for n in names), key=_natural)


def first_layer(snapshots: Snapshots) -> str:
    """The name of the first layer with parameters (`1` for the course's Flatten-first MLPs)."""
    return layers(snapshots)[0]


def _names(snapshots: Snapshots) -> list[str]:
    if isinstance(snapshots, (str, bytes)) or not isinstance(snapshots, Sequence) or not snapshots:
        raise ValueError("no snapshots were given; train with snapshot_every=<steps> to record them")
    step, params = snapshots[0]
    if not isinstance(params, Mapping) or not params:
        raise ValueError(f"snapshot at step {step!r} holds no parameters; expected {{name: tensor}}")
    return list(params)


def parameters_of(names: Sequence[str], layer_names: str | Sequence[str] | None) -> list[str]:
    """The parameter names that belong to `layer_names` (all of them when None).

    A layer name matches a parameter by its module (`1` selects `1.weight` and `1.bias`) or by
    the full parameter name (`1.weight` alone). An unknown name raises a ValueError that names
    it and lists the layers there are.
    """
    if layer_names is None:
        return sorted(names, key=_natural)
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    if not isinstance(layer_names, Sequence) or not layer_names:
        raise ValueError(f"layers={layer_names!r} is not valid; give a layer name, a list of them, or None for all")
    chosen: list[str] = []
    for want in layer_names:
        if not isinstance(want, str):
            raise ValueError(f"layers={list(layer_names)!r} is not valid: {want!r} is not a layer name (a string)")
        hit = [n for n in names if n == want or layer_of(n) == want]
        if not hit:
            known = list(dict.fromkeys(layer_of(n) for n in names))
            raise ValueError(
                f"layer {want!r} is not in the model; its layers are: {', '.join(known)} "
                f"(parameters: {', '.join(names)})"
            )
        chosen += [n for n in hit if n not in chosen]
    return sorted(chosen, key=_natural)  # model order


# ---------------------------------------------------------------- trajectory PCA

@dataclass
class Trajectory:
    """Runs' weight snapshots projected onto shared principal components.

    `frame`: run, step, order (0, 1, ... within a run), pc1..pcK. `explained`: the share of
    the total variance each component carries (sums to <= 1). `parameters`: the names that
    were flattened; `size`: how many numbers each point has.
    """

    frame: pd.DataFrame
    explained: np.ndarray
    parameters: list[str]
    size: int
    variance: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    gram: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))

    def distances(self) -> np.ndarray:
        """Pairwise distances between the snapshots in the full (selected) weight space,
        upper triangle in row order: what every component together would show."""
        g = self.gram
        d2 = np.clip(np.diag(g)[:, None] + np.diag(g)[None, :] - 2 * g, 0.0, None)
        return np.sqrt(d2[np.triu_indices(len(g), 1)])

    @property
    def coords(self) -> np.ndarray:
        return self.frame[[c for c in self.frame.columns if c.startswith("pc")]].to_numpy()


def _runs(runs) -> list[tuple[object, Snapshots]]:
    if isinstance(runs, Mapping):
        items = list(runs.items())
    elif isinstance(runs, Sequence) and not isinstance(runs, (str, bytes)):
        items = list(enumerate(runs))
    else:
        raise ValueError(f"runs={type(runs).__name__} is not valid; give {{run label: snapshots}} or a list of snapshots")
    if not items:
        raise ValueError("no runs were given")
    out = []
    for label, snaps in items:
        snaps = getattr(snaps, "snapshots", snaps)  # a Result or History is fine too
        _names(snaps)
        out.append((label, list(snaps)))
    return out


def trajectory_pca(runs, layers: str | Sequence[str] | None = None, n_components: int = 2,
                   relative: bool = False) -> Trajectory:
    """One PCA of the snapshots of all `runs` ({label: snapshots} or [snapshots, ...]).

    `layers`: None for the whole model, or layer names (see `parameters_of`). Each point is one
    snapshot flattened over the selected parameters; the PCA is centred on the mean of all
    points of all runs. `relative=True` first subtracts each run's own first snapshot, so
    every path starts at the origin and the PCA sees where the runs went, not where they
    started (independent random inits are far apart and otherwise dominate the picture). Signs are fixed so that the first point of the first run has PC
    coordinates <= 0 (the plot then reads the same from run to run of the notebook).
    """
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components={n_components!r} is not valid; it must be a positive integer")
    items = _runs(runs)
    names = parameters_of(_names(items[0][1]), layers)
    keys, labels_, steps, orders, starts = [], [], [], [], []
    for label, snaps in items:
        for i, (step, params) in enumerate(snaps):
            missing = [n for n in names if n not in params]
            if missing:
                raise ValueError(f"run {label!r}, step {step}: the snapshot lacks {missing}; all runs must share one model")
            labels_.append(label)
            steps.append(int(step))
            orders.append(i)
            keys.append(params)
            starts.append(len(keys) - 1 - i)
    n = len(keys)
    if n < 2:
        raise ValueError(f"PCA needs at least 2 snapshots in all; got {n}")
    gram = np.zeros((n, n))
    size = 0
    for name in names:
        block = torch.stack([p[name].detach().reshape(-1).to("cpu", torch.float32) for p in keys])
        shape = {tuple(p[name].shape) for p in keys}
        if len(shape) != 1:
            raise ValueError(f"parameter {name!r} has different shapes across snapshots: {sorted(shape)}")
        if relative:
            block = block - block[starts]
        block = block - block.mean(0, keepdim=True)
        gram += (block @ block.T).double().numpy()  # float32 products: 2x faster, ample for a picture
        size += block.shape[1]
    eigval, eigvec = np.linalg.eigh(gram)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
    total = eigval.sum()
    k = min(n_components, n)
    coords = eigvec[:, :k] * np.sqrt(eigval[:k])
    signs = np.where(coords[0] > 0, -1.0, 1.0)
    coords = coords * signs
    frame = pd.DataFrame({"run": labels_, "step": steps, "order": orders})
    for j in range(k):
        frame[f"pc{j + 1}"] = coords[:, j]
    explained = eigval[:k] / total if total > 0 else np.zeros(k)
    return Trajectory(frame=frame, explained=explained, parameters=names, size=size, variance=eigval[:k], gram=gram)


def _pairwise(points: np.ndarray) -> np.ndarray:
    diff = points[:, None, :] - points[None, :, :]
    d = np.sqrt((diff ** 2).sum(-1))
    return d[np.triu_indices(len(points), 1)]


def procrustes_disparity(a: np.ndarray, b: np.ndarray) -> float:
    """1 - R² of the best fit of `b` onto `a` by translation, rotation/reflection and scaling.

    0: the same picture (up to those moves); 1: nothing in common. Symmetric in a and b.
    """
    a = np.asarray(a, dtype=float) - np.mean(a, axis=0)
    b = np.asarray(b, dtype=float) - np.mean(b, axis=0)
    if a.shape != b.shape:
        raise ValueError(f"the two configurations differ in shape: {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    a, b = a / na, b / nb
    s = np.linalg.svd(a.T @ b, compute_uv=False)
    return float(max(0.0, 1.0 - s.sum() ** 2))


def compare(a: Trajectory, b: Trajectory) -> dict:
    """How alike two projections of the same snapshots (same runs and steps, in order) are.

    Of the 2-D pictures: `distance_corr`, the Pearson correlation of the pairwise distances
    between points (1: same distances up to scale); `procrustes`, the disparity left after the
    best rotation, reflection and scaling (0: identical pictures); `pc1_corr`, |correlation|
    of the first coordinates (the sign of a PC is arbitrary). Of the full weight spaces:
    `full_distance_corr`, the same correlation for distances over all selected weights. When
    the leading variances are nearly equal, PC1 and PC2 are an arbitrary pick within a larger
    subspace, and the pictures can differ although the full geometry agrees.
    """
    key = ["run", "step"]
    if not a.frame[key].reset_index(drop=True).equals(b.frame[key].reset_index(drop=True)):
        raise ValueError("the two trajectories do not hold the same runs and steps in the same order")
    pa, pb = a.coords[:, :2], b.coords[:, :2]
    da, db = _pairwise(pa), _pairwise(pb)
    corr = float(np.corrcoef(da, db)[0, 1]) if da.std() > 0 and db.std() > 0 else float("nan")
    pc1 = float(abs(np.corrcoef(pa[:, 0], pb[:, 0])[0, 1])) if pa[:, 0].std() > 0 and pb[:, 0].std() > 0 else float("nan")
    fa, fb = a.distances(), b.distances()
    full = float(np.corrcoef(fa, fb)[0, 1]) if len(fa) > 1 and fa.std() > 0 and fb.std() > 0 else float("nan")
    return {"distance_corr": corr, "procrustes": procrustes_disparity(pa, pb), "pc1_corr": pc1,
            "full_distance_corr": full}


# ---------------------------------------------------------------- gradient norm and loss

def comovement(steps: pd.DataFrame, window: int = 1) -> dict:
    """Does the gradient norm move with the loss? From a per-step frame (loss, grad_norm).

    `level_corr`: Spearman rank correlation of loss and gradient norm over the run (both fall
    together: high). `change_corr`: Pearson correlation of their step-to-step changes in log
    scale, after a centred rolling mean over `window` steps (they wiggle together: high).
    `same_direction`: the share of steps where both went up or both went down.
    """
    for col in ("loss", "grad_norm"):
        if col not in steps.columns:
            raise ValueError(f"the steps frame has no {col!r} column; train with record_grad_norm=True")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window={window!r} is not valid; it must be a positive integer")
    frame = steps[["loss", "grad_norm"]].astype(float)
    frame = frame[(frame > 0).all(axis=1) & np.isfinite(frame).all(axis=1)]
    if len(frame) < 3:
        return {"level_corr": float("nan"), "change_corr": float("nan"), "same_direction": float("nan")}
    level = rank_correlation(frame["loss"], frame["grad_norm"])
    logs = np.log(frame)
    if window > 1:
        logs = logs.rolling(window, center=True, min_periods=1).mean()
    diff = logs.diff().dropna()
    change = float(diff["loss"].corr(diff["grad_norm"])) if len(diff) > 2 else float("nan")
    moving = (diff["loss"] != 0) & (diff["grad_norm"] != 0)
    same = float((np.sign(diff.loc[moving, "loss"]) == np.sign(diff.loc[moving, "grad_norm"])).mean()) if moving.any() else float("nan")
    return {"level_corr": level, "change_corr": change, "same_direction": same}


# ---------------------------------------------------------------- fitted functions

@torch.inference_mode()
def predict_curve(model: torch.nn.Module, function: str, n: int = 1000, low: float = -1.0, high: float = 1.0) -> pd.DataFrame:
    """A trained 1-D model against its target on a dense grid: columns x, target, prediction, error."""
    from ..data import function_data

    grid = function_data(function, n, low, high, device="cpu")
    pred = forward_in_chunks(model, grid.x).to("cpu").reshape(-1)
    x, y = grid.x.reshape(-1).numpy(), grid.y.reshape(-1).numpy()
    return pd.DataFrame({"x": x, "target": y, "prediction": pred.numpy(), "error": pred.numpy() - y})

