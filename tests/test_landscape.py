"""dlcourse.analysis.landscape: interpolation between models, input sensitivity, loss roughness."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dlcourse import data, metrics, models, train
from dlcourse.analysis import landscape


@pytest.fixture
def toy(toy_root):
    return data.load("mnist", toy_root, device="cpu", download=False)


def _trained(toy, seed, batchnorm=False, epochs=1, batch_size=32, lr=3e-3):
    torch.manual_seed(seed)
    model = models.mlp([24], batchnorm=batchnorm)
    train.fit(model, toy, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    return model


@pytest.mark.parametrize("batchnorm", [False, True])
def test_ends_of_the_line_reproduce_each_model_exactly(toy, batchnorm):
    a, b = _trained(toy, 0, batchnorm), _trained(toy, 1, batchnorm, batch_size=128)
    curve = landscape.interpolation_curve(a, b, {"train": toy.train, "test": toy.test}, num=7)
    assert set(curve["set"]) == {"train", "test"} and list(curve.columns) == ["alpha", "set", "loss", "acc"]
    assert curve["alpha"].min() == -1.0 and curve["alpha"].max() == 2.0
    for alpha, model in ((0.0, a), (1.0, b)):
        for name, split in (("train", toy.train), ("test", toy.test)):
            row = curve[(curve["alpha"] == alpha) & (curve["set"] == name)].iloc[0]
            loss, acc = train.evaluate(model, split)
            assert row["loss"] == loss and row["acc"] == acc
    assert curve["loss"].nunique() > 2  # the line really moves between and beyond the two models


def test_loss_of_a_linear_model_is_convex_along_the_line(toy):
    # logits are linear in the weights, so cross-entropy along the line is convex in alpha
    torch.manual_seed(0)
    a, b = models.mlp([]), models.mlp([])
    train.fit(a, toy.train, epochs=1, batch_size=64, lr=3e-3, progress=False)
    curve = landscape.interpolation_curve(a, b, {"test": toy.test}, alpha_range=(-1, 2), num=13)
    loss = curve["loss"].to_numpy()
    assert np.all(loss[1:-1] <= (loss[:-2] + loss[2:]) / 2 + 1e-6)
    assert loss[curve["alpha"].to_numpy() == 0.0][0] < loss[curve["alpha"].to_numpy() == 1.0][0]  # a is trained, b not


def test_models_are_left_untouched(toy):
    a, b = _trained(toy, 0, True), _trained(toy, 1, True)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    a.train()
    landscape.interpolation_curve(a, b, {"train": toy.train}, num=4, bn_stats="recompute")
    assert a.training
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())


def test_interpolated_state_is_linear_and_clips_variances():
    a = {"w": torch.tensor([0.0, 2.0]), "bn.running_var": torch.tensor([1.0, 4.0]),
         "bn.num_batches_tracked": torch.tensor(7)}
    b = {"w": torch.tensor([4.0, 2.0]), "bn.running_var": torch.tensor([3.0, 1.0]),
         "bn.num_batches_tracked": torch.tensor(9)}
    mid = landscape.interpolate_state(a, b, 0.25)
    assert torch.equal(mid["w"], torch.tensor([1.0, 2.0]))
    assert torch.equal(mid["bn.running_var"], torch.tensor([1.5, 3.25]))
    assert int(mid["bn.num_batches_tracked"]) == 7
    far = landscape.interpolate_state(a, b, 2.0)
    assert torch.equal(far["bn.running_var"], torch.tensor([5.0, 0.0]))  # -2 clipped to 0


def test_recomputed_bn_statistics_equal_the_data_moments():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    x = torch.randn(250, 3) * 3 + 1
    y = torch.zeros(250, dtype=torch.long)
    h = model[0](x).detach()
    bn = model[1]
    landscape.recompute_bn_stats(model, (x, y), batch_size=250)  # one batch: the exact moments
    assert not model.training
    torch.testing.assert_close(bn.running_mean, h.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, h.var(0), rtol=1e-5, atol=1e-5)
    landscape.recompute_bn_stats(model, (x, y), batch_size=50)  # equal averages over five batches
    torch.testing.assert_close(bn.running_mean, h.mean(0), rtol=1e-5, atol=1e-5)
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 5


@pytest.mark.parametrize("bad", [(2.0, -1.0), (1.0, 1.0), (0.0,), (0.0, float("nan")), "0,1", (0, 1, 2)])
def test_bad_alpha_range_names_the_parameter(bad):
    a = models.mlp([4], in_features=3, out_features=2)
    with pytest.raises(ValueError, match="alpha_range"):
        landscape.interpolation_curve(a, a, {"x": (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))},
                                      alpha_range=bad)


def test_other_bad_arguments_are_named():
    a = models.mlp([4], in_features=3, out_features=2)
    b = models.mlp([5], in_features=3, out_features=2)
    sets = {"x": (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))}
    with pytest.raises(ValueError, match="num"):
        landscape.alpha_grid((-1, 2), 1)
    with pytest.raises(ValueError, match="model_b"):
        landscape.interpolation_curve(a, b, sets)
    with pytest.raises(ValueError, match="bn_stats"):
        landscape.interpolation_curve(a, a, sets, bn_stats="freeze")
    with pytest.raises(ValueError, match="sets"):
        landscape.interpolation_curve(a, a, {})
    with pytest.raises(ValueError, match="output"):
        landscape.jacobian_norms(a, torch.zeros(2, 3), output="probs")


def test_alpha_grid_always_holds_both_ends():
    grid = landscape.alpha_grid((-1, 2), 4)  # -1, 0, 1, 2 already
    assert grid.tolist() == [-1.0, 0.0, 1.0, 2.0]
    grid = landscape.alpha_grid((-0.5, 1.5), 5)  # -0.5, 0, 0.5, 1, 1.5
    assert 0.0 in grid and 1.0 in grid and len(grid) == 5
    grid = landscape.alpha_grid((-1, 2), 6)
    assert 0.0 in grid and 1.0 in grid and np.all(np.diff(grid) > 0)


def test_jacobian_norm_of_a_linear_model_is_the_weight_norm():
    torch.manual_seed(0)
    lin = nn.Linear(6, 3)
    x = torch.randn(20, 6)
    norms = landscape.jacobian_norms(lin, x, output="logits", batch_size=7)
    assert norms.shape == (20,)
    torch.testing.assert_close(norms, torch.full((20,), float(torch.linalg.matrix_norm(lin.weight.detach()))))
    # through Flatten on image-shaped input too
    model = models.mlp([], in_features=784, out_features=10)
    s = landscape.input_sensitivity(model, torch.randn(5, 1, 28, 28), output="logits")
    assert math.isclose(s, float(torch.linalg.matrix_norm(model[1].weight.detach())), rel_tol=1e-5)


def test_softmax_jacobian_matches_autograd_jacobian():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    model.train()
    model(torch.randn(32, 4))  # move the running statistics away from 0 / 1
    model.eval()
    x = torch.randn(5, 4)
    norms = landscape.jacobian_norms(model, x)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).softmax(1).squeeze(0), x[i])
        torch.testing.assert_close(norms[i], torch.linalg.matrix_norm(jac), rtol=1e-5, atol=1e-6)
    assert (norms > 0).all()


def test_sensitivity_uses_max_samples_and_leaves_mode(toy):
    model = _trained(toy, 0, epochs=1)
    model.train()
    full = landscape.jacobian_norms(model, toy.test.x[:40])
    assert model.training
    assert math.isclose(landscape.input_sensitivity(model, toy.test, max_samples=40), float(full.mean()), rel_tol=1e-6)


def test_under_plan_analyses_sample_and_record_what_all_samples_would_cost(toy, tmp_path, monkeypatch):
    """`dlcourse book --plan`: the interpolation and the sensitivity look at PLAN_SAMPLES samples
    and record their measured seconds scaled to the real number; outside plan mode, all of them."""
    import json

    from dlcourse import plan_mode

    a, b = _trained(toy, 0), _trained(toy, 1)
    n = 3 * plan_mode.PLAN_SAMPLES
    x = torch.cat([toy.test.x] * math.ceil(n / len(toy.test)))[:n]
    sets = {"test": data.Split(x, torch.zeros(n, dtype=torch.long))}
    whole = landscape.interpolation_curve(a, b, sets, num=3)
    log = tmp_path / "plan.jsonl"
    monkeypatch.setenv(plan_mode.PLAN, str(log))
    sampled = landscape.interpolation_curve(a, b, sets, num=3)
    head = landscape.jacobian_norms(a, x[:plan_mode.PLAN_SAMPLES]).mean()
    assert math.isclose(landscape.input_sensitivity(a, x), float(head), rel_tol=1e-6)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["analysis"] for r in records] == ["interpolation_curve", "input_sensitivity"]
    assert all(math.isclose(r["estimate_s"], 3 * r["measured_s"]) and r["measured_s"] > 0 for r in records)
    assert not whole.equals(sampled)  # 200 of the 600 samples: another curve
    monkeypatch.delenv(plan_mode.PLAN)
    assert math.isclose(landscape.input_sensitivity(a, x), float(landscape.jacobian_norms(a, x).mean()), rel_tol=1e-6)
    assert len(log.read_text().splitlines()) == 2  # nothing more recorded outside plan mode


def test_roughness_tells_spiky_from_smooth():
    steps = np.arange(200)
    smooth = 2.0 * np.exp(-steps / 50)
    spiky = smooth + np.where(steps % 10 == 0, 0.5, 0.0)
    assert landscape.roughness(smooth) < landscape.roughness(spiky)
    assert landscape.roughness(pd.Series([1.0, 2.0, 1.0, 2.0])) == pytest.approx(np.std([1, -1, 1], ddof=1))
    assert math.isnan(landscape.roughness([1.0, 0.5]))
    assert landscape.roughness(spiky, skip=150) > 0
    with pytest.raises(ValueError, match="skip"):
        landscape.roughness(smooth, skip=-1)


def test_end_sharpness_reads_the_rise_beyond_each_end():
    alpha = landscape.alpha_grid((-1, 2), 31)
    curve = pd.concat([
        pd.DataFrame({"alpha": alpha, "set": "train", "loss": np.where(alpha < 0, -alpha, np.maximum(alpha - 1, 0) * 4)}),
        pd.DataFrame({"alpha": alpha, "set": "test", "loss": 1.0}),
    ])
    rise_a, rise_b = landscape.end_sharpness(curve, "train", step=0.5)
    assert rise_a == pytest.approx(0.5) and rise_b == pytest.approx(2.0)
    assert landscape.end_sharpness(curve, "test", step=1.0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="step"):
        landscape.end_sharpness(curve, "train", step=1.5)
    with pytest.raises(ValueError, match="set"):
        landscape.end_sharpness(curve, "val")


def test_midpoint_change_reads_a_dip_between_the_ends():
    alpha = landscape.alpha_grid((-1, 2), 31)
    curve = pd.concat([
        pd.DataFrame({"alpha": alpha, "set": "test", "acc": np.where(np.abs(alpha - 0.5) < 0.3, 0.3, 0.9),
                      "loss": 0.2 + np.maximum(0.0, 0.5 - np.abs(alpha - 0.5))}),
        pd.DataFrame({"alpha": alpha, "set": "train", "acc": 0.95, "loss": 0.1}),
    ])
    assert landscape.midpoint_change(curve) == pytest.approx(0.3 - 0.9)
    assert landscape.midpoint_change(curve, metric="loss") == pytest.approx(0.5)
    assert landscape.midpoint_change(curve, "train") == pytest.approx(0.0)
    assert landscape.midpoint_change(curve, alpha=0.45) == pytest.approx(-0.6)
    with pytest.raises(ValueError, match="alpha"):
        landscape.midpoint_change(curve, alpha=3.0)
    with pytest.raises(ValueError, match="set"):
        landscape.midpoint_change(curve, "val")


def test_rank_correlation_and_half_gains():
    assert landscape.rank_correlation is metrics.rank_correlation  # one implementation, re-exported for the labs
    assert landscape.rank_correlation([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert landscape.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(landscape.rank_correlation([1, 2], [2, 1]))
    assert math.isnan(landscape.rank_correlation([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="pair"):
        landscape.rank_correlation([1, 2, 3], [1, 2])
    low, high = landscape.half_gains([1000, 10, 100, 10000, 1e5], [0.95, 0.80, 0.93, 0.955, 0.956])
    assert low == pytest.approx(0.15) and high == pytest.approx(0.006)
    with pytest.raises(ValueError, match="3"):
        landscape.half_gains([1, 2], [1, 2])


def test_figures_draw_with_labelled_axes():
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from dlcourse.plots import landscape as lplots

    alpha = landscape.alpha_grid((-1, 2), 7)
    curve = pd.concat([pd.DataFrame({"alpha": alpha, "set": s, "loss": (alpha - 0.5) ** 2 + k, "acc": 0.9 - 0.1 * k,
                                     "pair": p}) for k, s in enumerate(["train", "test"]) for p in ["x", "y"]])
    fig = lplots.interpolation(curve, row="pair", names={"x": ["a1", "b1"], "y": ["a2", "b2"]})
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "x: a = a1, b = b1"
    assert all(ax.get_xlabel().startswith("α") and ax.get_ylabel() for ax in fig.axes)
    frame = pd.DataFrame({"batch_size": [64, 512, 4096], "sensitivity": [0.1, 0.2, 0.15], "train_loss": [0.1, 0.2, 0.3],
                          "test_loss": [0.2, 0.3, 0.4], "train_acc": [0.99, 0.95, 0.9], "test_acc": [0.95, 0.93, 0.88],
                          "params": [10, 100, 1000]})
    fig = lplots.sensitivity_panels(frame)
    assert len(fig.axes) == 3 and all(ax.get_xscale() == "log" and "batch size" in ax.get_xlabel() for ax in fig.axes)
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None
    fig = lplots.parameter_panels(frame)
    assert [ax.get_ylabel() for ax in fig.axes] == [lplots.LOSS_AXIS, lplots.ACC_AXIS]
    plt.close("all")


def test_train_vs_heldout_draws_both_sets():
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from dlcourse.plots import landscape as lplots

    hist = pd.DataFrame({"epoch": [1, 2, 1, 2], "labels": ["random", "random", "true", "true"],
                         "train_loss": [2.3, 1.0, 1.0, 0.1], "val_loss": [2.3, 3.0, 0.5, 0.4],
                         "train_acc": [0.1, 0.6, 0.7, 0.99], "val_acc": [0.1, 0.1, 0.85, 0.9]})
    fig = lplots.train_vs_heldout(hist, hue="labels")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == lplots.LOSS_AXIS and acc_ax.get_xlabel() == "epoch"
    assert len(loss_ax.get_lines()) >= 4  # two runs x two sets
    with pytest.raises(ValueError, match="test_loss"):
        lplots.train_vs_heldout(hist, hue="labels", held_out="test")
    plt.close("all")
