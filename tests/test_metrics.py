"""dlcourse.metrics: confusion matrix, classification report and rank correlation, checked by hand-computed numbers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from dlcourse import metrics

Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
Y_PRED = [0, 0, 1, 1, 2, 2, 2, 2, 0, 2]
CLASSES = ["cat", "dog", "bird"]


def test_confusion_matrix_counts_and_labels():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES)
    assert list(cm.index) == CLASSES and list(cm.columns) == CLASSES
    assert cm.index.name == "true" and cm.columns.name == "predicted"
    np.testing.assert_array_equal(cm.to_numpy(), [[2, 1, 0], [0, 1, 1], [1, 0, 4]])
    assert cm.to_numpy().sum() == len(Y_TRUE)


def test_confusion_matrix_normalized_rows_and_columns():
    rows = metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES, normalize="true").to_numpy()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(rows), [2 / 3, 1 / 2, 4 / 5])
    cols = metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES, normalize="pred").to_numpy()
    np.testing.assert_allclose(np.diag(cols), [2 / 3, 1 / 2, 4 / 5])  # precision: 2/3, 1/2, 4/5
    allm = metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES, normalize="all").to_numpy()
    assert allm.sum() == pytest.approx(1.0)


def test_empty_class_rows_stay_zero_when_normalized():
    cm = metrics.confusion_matrix([0, 0, 1], [0, 1, 1], ["a", "b", "c"], normalize="true").to_numpy()
    np.testing.assert_array_equal(cm[2], [0, 0, 0])


def test_classification_report_matches_hand_computation():
    rep = metrics.classification_report(Y_TRUE, Y_PRED, CLASSES)
    # precision = TP / predicted, recall = TP / support
    p = np.array([2 / 3, 1 / 2, 4 / 5])
    r = np.array([2 / 3, 1 / 2, 4 / 5])
    f = 2 * p * r / (p + r)
    np.testing.assert_allclose(rep.loc[CLASSES, "precision"], p)
    np.testing.assert_allclose(rep.loc[CLASSES, "recall"], r)
    np.testing.assert_allclose(rep.loc[CLASSES, "f1-score"], f)
    assert list(rep.loc[CLASSES, "support"]) == [3, 2, 5]
    assert rep.loc["accuracy", "f1-score"] == pytest.approx(0.7)
    assert np.isnan(rep.loc["accuracy", "precision"])
    assert rep.loc["macro avg", "recall"] == pytest.approx(r.mean())
    assert rep.loc["weighted avg", "recall"] == pytest.approx(0.7)  # weighted recall equals accuracy
    assert rep.loc["weighted avg", "f1-score"] == pytest.approx((f * [3, 2, 5]).sum() / 10)
    assert list(rep.index[-3:]) == ["accuracy", "macro avg", "weighted avg"]
    assert rep["support"].dtype.kind == "i"


def test_never_predicted_class_has_zero_precision_not_nan():
    rep = metrics.classification_report([0, 1, 2, 2], [0, 1, 1, 1], ["a", "b", "c"])
    assert rep.loc["c", "precision"] == 0.0 and rep.loc["c", "recall"] == 0.0 and rep.loc["c", "f1-score"] == 0.0
    assert rep.loc["b", "precision"] == pytest.approx(1 / 3)
    assert not rep.drop(index="accuracy").isna().any().any()


def test_report_rounding_and_default_class_names():
    rep = metrics.classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), digits=2)
    assert list(rep.index[:2]) == ["0", "1"]
    assert rep.loc["0", "precision"] == 0.5 and rep.loc["1", "recall"] == 0.5


def test_accepts_torch_tensors_and_perfect_predictions():
    y = torch.tensor([0, 1, 2, 1])
    rep = metrics.classification_report(y, y.clone(), CLASSES)
    assert (rep.loc[CLASSES, ["precision", "recall", "f1-score"]] == 1.0).all().all()
    assert metrics.accuracy(y, torch.tensor([0, 1, 2, 0])) == 0.75


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        ([0, 1], [0], "2 and 1 entries"),
        ([0, 3], [0, 1], r"0\.\.2"),
        ([0, -1], [0, 1], r"0\.\.2"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([0.5, 1.0], [0, 1], "integers"),
    ],
)
def test_bad_labels_fail_clearly(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        metrics.confusion_matrix(y_true, y_pred, CLASSES)


def test_bad_normalize_and_classes():
    with pytest.raises(ValueError, match="normalize='rows'"):
        metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES, normalize="rows")
    with pytest.raises(ValueError, match="classes='abc'"):
        metrics.classification_report(Y_TRUE, Y_PRED, "abc")


def test_predict_with_a_torch_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3, 4))
        model[1].bias.zero_()
    x = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 0]])
    model.train()
    np.testing.assert_array_equal(metrics.predict(model, x, batch_size=2), [0, 1, 2])
    assert model.training  # mode restored


def test_predict_of_an_empty_input_and_of_a_split_in_chunks():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    empty = metrics.predict(model, torch.empty(0, 4))
    assert empty.dtype == np.int64 and empty.shape == (0,)
    x = torch.randn(7, 4)
    split = SimpleNamespace(x=x)  # a data.Split is read through its .x
    with torch.no_grad():
        expected = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(metrics.predict(model, split, batch_size=3), expected)


def test_rank_correlation_is_spearman_by_hand():
    # no ties: rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)); d = [-1, 1, -1, 1, 0] -> 1 - 6 * 4 / 120
    assert metrics.rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties take the mean rank: x ranks [1, 2.5, 2.5, 4], y ranks [1, 3, 2, 4];
    # centred: [-1.5, 0, 0, 1.5] and [-1.5, 0.5, -0.5, 1.5] -> 4.5 / sqrt(4.5 * 5)
    assert metrics.rank_correlation([1, 2, 2, 3], [10, 30, 20, 40]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    # ranks only: any increasing transform of either side leaves rho unchanged
    x, y = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0], [2.0, 7.0, 1.0, 8.0, 2.5, 0.5]
    assert metrics.rank_correlation(np.exp(x), np.array(y) ** 3) == pytest.approx(metrics.rank_correlation(x, y))
    assert metrics.rank_correlation(pd.Series(x, index=[5, 4, 3, 2, 1, 0]), y) == metrics.rank_correlation(x, y)


def test_rank_correlation_guards():
    assert math.isnan(metrics.rank_correlation([1, 2], [2, 1]))  # fewer than three pairs
    assert metrics.rank_correlation([1, 2], [2, 1], min_pairs=2) == pytest.approx(-1.0)
    assert math.isnan(metrics.rank_correlation([1, 2, 3], [5, 5, 5]))  # constant side
    assert math.isnan(metrics.rank_correlation([4, 4, 4, 4], [1, 2, 3, 4]))
    assert math.isnan(metrics.rank_correlation([], []))
    # a missing value drops its pair; the rest still rank
    assert metrics.rank_correlation([1, 2, np.nan, 3, 4], [1, 2, 9, 3, 4]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="pair up"):
        metrics.rank_correlation([1, 2, 3], [1, 2])


def test_weight_norm_of_arrays_scratch_mlp_and_module():
    assert metrics.weight_norm([np.full((2, 2), 1.0), np.array([[3.0]])]) == pytest.approx(np.sqrt(4 + 9))
    from dlcourse import scratch

    net = scratch.MLP([4, 3, 2], seed=0)
    want = np.sqrt(sum((w.astype(float) ** 2).sum() for w in net.weights))
    assert metrics.weight_norm(net) == pytest.approx(want, rel=1e-6)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    with torch.no_grad():
        module[0].weight.fill_(1.0)
        module[0].bias.fill_(100.0)  # biases and 1-D batch-norm weights are not counted
    assert metrics.weight_norm(module) == pytest.approx(np.sqrt(12))


def test_scores_per_split():
    splits = {"train": (np.array([0, 1, 1, 0]), np.array([0, 1, 1, 1])), "test": (np.array([1, 1]), np.array([1, 0]))}
    assert metrics.scores(lambda x: x, splits) == {"train_acc": 0.75, "test_acc": 0.5}
