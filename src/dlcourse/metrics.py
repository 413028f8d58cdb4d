"""Classification metrics with NumPy and pandas: confusion matrix and per-class report.

What scikit-learn's `confusion_matrix` and `classification_report` give, without the
dependency, as DataFrames that a notebook shows or rounds directly:

- `confusion_matrix`: rows are the true class, columns the predicted class, counts (or row
  fractions with `normalize="true"`), both labelled with the class names.
- `classification_report`: precision, recall, F1 and support per class, then `accuracy`,
  `macro avg` and `weighted avg` rows laid out as scikit-learn prints them.
Labels are integer class indices 0..len(classes)-1; a class that is never predicted has
precision 0 (not NaN), and a class absent from `y_true` has recall 0 and support 0.

`rank_correlation` (Spearman's rho) lives here too, so that the search tables and the analysis
modules share one implementation and its guards without importing one another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

NORMALIZE = (None, "true", "pred", "all")


def _labels(name: str, values, k: int) -> np.ndarray:
    """Integer labels as a 1-D int64 array, checked against the number of classes."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} is not valid: expected a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
            raise ValueError(f"{name} is not valid: class indices must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= k):
        raise ValueError(f"{name} is not valid: labels must lie in 0..{k - 1} for {k} classes, "
                         f"got values from {arr.min()} to {arr.max()}")
    return arr


def _classes(classes, y_true, y_pred) -> list[str]:
    if classes is None:
        top = max([int(np.max(y)) for y in (np.asarray(y_true), np.asarray(y_pred)) if np.size(y)] or [0])
        return [str(i) for i in range(top + 1)]
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or len(classes) == 0:
        raise ValueError(f"classes={classes!r} is not valid; give a non-empty list of class names")
    return [str(c) for c in classes]


def confusion_matrix(y_true, y_pred, classes: Sequence[str] | None = None, normalize: str | None = None) -> pd.DataFrame:
    """Counts of (true class, predicted class) pairs as a DataFrame indexed by class name.

    `normalize="true"` divides each row by its total (per-class recall on the diagonal),
    `"pred"` each column (precision on the diagonal), `"all"` everything; empty rows or
    columns stay 0.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize={normalize!r} is not valid; choose one of: {', '.join(map(str, NORMALIZE))}")
    names = _classes(classes, y_true, y_pred)
    k = len(names)
    t, p = _labels("y_true", y_true, k), _labels("y_pred", y_pred, k)
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred are not valid: they have {len(t)} and {len(p)} entries")
    counts = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    values = counts.astype(float) if normalize else counts
    if normalize == "true":
        values = values / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    elif normalize == "pred":
        values = values / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    elif normalize == "all":
        values = values / max(counts.sum(), 1)
    frame = pd.DataFrame(values, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
    return frame


def classification_report(y_true, y_pred, classes: Sequence[str] | None = None, digits: int | None = None) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus accuracy, macro and weighted averages.

    Same definitions and layout as scikit-learn's report: the `accuracy` row holds the
    accuracy in the `f1-score` column (the other columns are NaN) and the total support.
    `digits` rounds the float columns.
    """
    cm = confusion_matrix(y_true, y_pred, classes).to_numpy()
    names = _classes(classes, y_true, y_pred)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    frame = pd.DataFrame({"precision": precision, "recall": recall, "f1-score": f1, "support": support},
                         index=pd.Index(names, name="class"))
    total = int(support.sum())
    weights = support / total if total else np.zeros_like(tp)
    accuracy = tp.sum() / total if total else 0.0
    frame.loc["accuracy"] = [np.nan, np.nan, accuracy, total]
    frame.loc["macro avg"] = [precision.mean(), recall.mean(), f1.mean(), total]
    frame.loc["weighted avg"] = [(precision * weights).sum(), (recall * weights).sum(), (f1 * weights).sum(), total]
    frame["support"] = frame["support"].astype(int)
    if digits is not None:
        frame[["precision", "recall", "f1-score"]] = frame[["precision", "recall", "f1-score"]].round(digits)
    return frame


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal entries."""
    t, p = (np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for v in (y_true, y_pred))
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred are not valid: shapes {t.shape} and {p.shape} differ")
    return float(np.mean(t == p)) if t.size else float("nan")


def predict(model, data, batch_size: int = 10_000) -> np.ndarray:
    """Arg-max class of a torch classifier on a `data.Split` or an input tensor, as a NumPy array.

    (The import is local so that the NumPy side of the course imports this module without torch.)"""
    from .models import forward_in_chunks

    x = data.x if hasattr(data, "x") else data
    if len(x) == 0:
        return np.empty(0, dtype=np.int64)
    return forward_in_chunks(model, x, batch_size).argmax(1).cpu().numpy()


def weight_norm(model) -> float:
    """L2 norm of all weight matrices together (biases excluded): what an L2 penalty shrinks.

    `model` is a `dlcourse.scratch.MLP` (its `weights`), an nn.Module (the parameters named
    `*.weight` with two or more dimensions) or a list of arrays.
    """
    if hasattr(model, "named_parameters"):
        arrays = [p.detach().cpu().double().numpy() for n, p in model.named_parameters()
                  if n.endswith("weight") and p.dim() >= 2]
    else:
        arrays = list(getattr(model, "weights", model))
    return float(np.sqrt(sum(float(np.vdot(w, w)) for w in (np.asarray(a, dtype=float) for a in arrays))))


def rank_correlation(x, y, min_pairs: int = 3) -> float:
    """Spearman's rank correlation of two equally long sequences: +1 when y rises with x, -1 when it
    falls. NaN when either is constant or there are fewer than `min_pairs` pairs, where a rank
    correlation says nothing. Pearson on pandas ranks, because pandas' own spearman needs scipy."""
    x, y = pd.Series(list(x), dtype=float), pd.Series(list(y), dtype=float)
    if len(x) != len(y):
        raise ValueError(f"x and y have {len(x)} and {len(y)} entries; they must pair up")
    if len(x) < min_pairs or x.nunique() < 2 or y.nunique() < 2:
        return math.nan
    return float(x.rank().corr(y.rank()))


def scores(predict, splits: Mapping[str, tuple]) -> dict[str, float]:
    """Accuracy of `predict` (inputs -> class indices) on each named (x, y) split, as
    {"<name>_acc": accuracy}; e.g. `scores(net.predict, {"train": (x, y), "test": (xt, yt)})`."""
    return {f"{name}_acc": accuracy(y, predict(x)) for name, (x, y) in splits.items()}


__all__ = ["confusion_matrix", "classification_report", "accuracy", "predict", "weight_norm", "rank_correlation",
           "scores"]
