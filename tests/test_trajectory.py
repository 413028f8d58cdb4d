"""dlcourse.analysis.trajectory: PCA of weight snapshots, layer selection, comparisons, co-movement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dlcourse import data, metrics, models, train
from dlcourse.analysis import trajectory as tr


def _snaps(points: dict[str, np.ndarray]) -> list:
    """Snapshots from arrays of shape (steps, ...) per parameter name."""
    n = len(next(iter(points.values())))
    return [(10 * i, {k: torch.tensor(v[i], dtype=torch.float32) for k, v in points.items()}) for i in range(n)]


def test_points_on_a_line_are_one_component():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(6, 5))
    runs = {}
    for r in range(3):
        t = np.linspace(0, 1, 8) + r  # each run walks its own stretch of the same line
        runs[f"run{r}"] = _snaps({"1.weight": t[:, None, None] * direction, "1.bias": t[:, None] * np.ones((8, 4))})
    out = tr.trajectory_pca(runs)
    assert out.size == 34 and out.parameters == ["1.bias", "1.weight"]
    assert out.explained[0] == pytest.approx(1.0, abs=1e-6) and out.explained[1] == pytest.approx(0.0, abs=1e-6)
    assert list(out.frame.columns) == ["run", "step", "order", "pc1", "pc2"]
    assert len(out.frame) == 24 and out.frame["step"].iloc[:8].tolist() == list(range(0, 80, 10))
    # PC1 is the position along the line (up to scale): evenly spaced, monotone over the 3 runs
    pc1 = out.frame["pc1"].to_numpy()
    assert np.all(np.diff(pc1) >= -1e-5)  # runs end where the next one starts
    spacing = np.linalg.norm(np.concatenate([direction.ravel(), np.ones(4)])) / 7
    assert np.diff(pc1[:8]) == pytest.approx(np.full(7, spacing), rel=1e-4)
    assert pc1[0] <= 0  # sign convention


def test_pca_matches_numpy_svd_of_centred_matrix():
    rng = np.random.default_rng(1)
    runs = {r: _snaps({"a.weight": rng.normal(size=(7, 3, 4)), "b.bias": rng.normal(size=(7, 2))}) for r in "xy"}
    out = tr.trajectory_pca(runs, n_components=3)
    X = np.concatenate([np.concatenate([s["a.weight"].numpy().reshape(7, -1), s["b.bias"].numpy()], 1)
                        for s in [{k: torch.stack([p[k] for _, p in runs[r]]) for k in ("a.weight", "b.bias")}
                                  for r in "xy"]])
    Xc = X - X.mean(0)
    u, s, vt = np.linalg.svd(Xc, full_matrices=False)
    assert out.explained == pytest.approx(s[:3] ** 2 / (s ** 2).sum(), rel=1e-4)
    for j in range(3):  # same coordinates up to sign
        assert np.abs(out.coords[:, j]) == pytest.approx(np.abs(u[:, j] * s[j]), rel=1e-4, abs=1e-5)


def test_layer_selection_by_module_or_parameter_name():
    rng = np.random.default_rng(2)
    # layer 1 moves along a line, layer 3 moves at random: selecting layer 1 gives one component
    t = np.linspace(0, 1, 10)
    snaps = _snaps({"1.weight": t[:, None] * rng.normal(size=(1, 8)), "1.bias": t[:, None] * np.ones((1, 2)),
                    "3.weight": rng.normal(size=(10, 3))})
    assert tr.layers(snaps) == ["1", "3"] and tr.first_layer(snaps) == "1"
    first = tr.trajectory_pca([snaps], layers="1")
    assert first.parameters == ["1.bias", "1.weight"] and first.size == 10
    assert first.explained[0] == pytest.approx(1.0, abs=1e-6)
    whole = tr.trajectory_pca([snaps])
    assert whole.size == 13 and whole.explained[0] < 0.999
    only_w = tr.trajectory_pca([snaps], layers=["3", "1.weight"])
    assert only_w.parameters == ["1.weight", "3.weight"]  # model order


def test_bad_layer_name_raises_naming_it():
    snaps = _snaps({"1.weight": np.zeros((3, 2, 2)), "1.bias": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"layer 'fc1' is not in the model; its layers are: 1"):
        tr.trajectory_pca([snaps], layers="fc1")
    with pytest.raises(ValueError, match="not a layer name"):
        tr.trajectory_pca([snaps], layers=[1])
    with pytest.raises(ValueError, match="no snapshots"):
        tr.trajectory_pca({"a": []})
    with pytest.raises(ValueError, match="n_components"):
        tr.trajectory_pca([snaps], n_components=0)


def test_runs_must_share_the_model():
    a = _snaps({"1.weight": np.zeros((3, 2))})
    b = _snaps({"2.weight": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="lacks"):
        tr.trajectory_pca({"a": a, "b": b})


def test_real_mlp_snapshots_first_layer_dominates_whole_model(toy_root):
    """The 784-400-9-10 shape in small: the first layer holds most weights, so both pictures agree."""
    ds = data.load("mnist", toy_root, device="cpu", download=False)
    runs = {}
    for seed in range(3):
        torch.manual_seed(seed)
        model = models.mlp([40, 9])
        h = train.fit(model, ds, epochs=2, batch_size=64, optimizer="momentum", lr=1e-2, seed=seed,
                      snapshot_every=5, progress=False)
        runs[seed] = h
    whole = tr.trajectory_pca(runs)
    first = tr.trajectory_pca(runs, layers=tr.first_layer(runs[0].snapshots))
    assert first.size == 784 * 40 + 40 and whole.size == first.size + 40 * 9 + 9 + 9 * 10 + 10
    assert len(whole.frame) == 3 * (1 + 20 // 5)
    sim = tr.compare(whole, first)
    assert sim["distance_corr"] > 0.95 and sim["procrustes"] < 0.1 and sim["pc1_corr"] > 0.8
    last = tr.trajectory_pca(runs, layers="5")
    assert tr.compare(whole, last)["procrustes"] > sim["procrustes"]


def test_procrustes_ignores_rotation_scale_and_reflection():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(12, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    b = 3.0 * a @ rot @ np.diag([1, -1]) + 5
    assert tr.procrustes_disparity(a, b) == pytest.approx(0.0, abs=1e-10)
    assert tr.procrustes_disparity(a, rng.normal(size=(12, 2))) > 0.3


def test_compare_needs_the_same_points():
    rng = np.random.default_rng(4)
    a = tr.trajectory_pca([_snaps({"w": rng.normal(size=(5, 3))})])
    b = tr.trajectory_pca([_snaps({"w": rng.normal(size=(6, 3))})])
    with pytest.raises(ValueError, match="same runs and steps"):
        tr.compare(a, b)


def test_comovement_of_loss_and_grad_norm():
    steps = np.arange(1, 201)
    loss = np.exp(-steps / 50) * (1 + 0.2 * np.sin(steps))
    together = pd.DataFrame({"step": steps, "loss": loss, "grad_norm": 3 * loss ** 0.5})
    c = tr.comovement(together)
    assert c["level_corr"] == pytest.approx(1.0) and c["change_corr"] == pytest.approx(1.0)
    assert c["same_direction"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    apart = together.assign(grad_norm=rng.uniform(0.5, 1.5, len(steps)))
    c2 = tr.comovement(apart, window=1)
    assert abs(c2["level_corr"]) < 0.3 and abs(c2["change_corr"]) < 0.3
    assert c2["level_corr"] == metrics.rank_correlation(apart["loss"], apart["grad_norm"])
    with pytest.raises(ValueError, match="record_grad_norm"):
        tr.comovement(together.drop(columns="grad_norm"))
    assert math.isnan(tr.comovement(together.iloc[:2])["level_corr"])


def test_predict_curve_on_trained_function():
    fit_data = data.function_data("sinc", 200, device="cpu")
    torch.manual_seed(0)
    model = models.mlp([32, 32], in_features=1, out_features=1)
    before = tr.predict_curve(model, "sinc", n=300)
    train.fit(model, fit_data, epochs=60, batch_size=200, optimizer="adam", lr=2e-2, loss="mse", progress=False)
    after = tr.predict_curve(model, "sinc", n=300)
    assert list(after.columns) == ["x", "target", "prediction", "error"] and len(after) == 300
    assert after["x"].iloc[0] == -1.0 and after["x"].iloc[-1] == 1.0
    assert after["target"].max() == pytest.approx(1.0, abs=1e-3)  # sinc peaks at x = 0
    assert (after["error"] ** 2).mean() < 0.2 * (before["error"] ** 2).mean()


def test_relative_paths_remove_the_distance_between_starts():
    rng = np.random.default_rng(5)
    direction = rng.normal(size=6)
    t = np.linspace(0, 1, 6)[:, None]
    runs = {s: _snaps({"w": 10 * rng.normal(size=(1, 6)) + t * direction}) for s in range(4)}
    absolute = tr.trajectory_pca(runs)
    relative = tr.trajectory_pca(runs, relative=True)
    assert absolute.explained[0] < 0.9  # far-apart starts spread the points over several PCs
    assert relative.explained[0] == pytest.approx(1.0, abs=1e-6)  # all runs walk the same line
    first = relative.frame[relative.frame["order"] == 0]
    assert np.allclose(first[["pc1", "pc2"]].to_numpy(), first[["pc1", "pc2"]].to_numpy()[0], atol=1e-5)


def test_layers_follow_module_order_whatever_the_dict_order():
    snaps = [(0, {"10.weight": torch.zeros(2), "2.bias": torch.zeros(1), "2.weight": torch.zeros(3),
                  "0.weight": torch.zeros(1)})]
    assert tr.layers(snaps) == ["0", "2", "10"] and tr.first_layer(snaps) == "0"
    assert tr.parameters_of(list(snaps[0][1]), ["10", "2"]) == ["2.bias", "2.weight", "10.weight"]


def test_full_space_distances_match_the_snapshots():
    rng = np.random.default_rng(6)
    pts = rng.normal(size=(5, 4))
    t = tr.trajectory_pca([_snaps({"w": pts})])
    expected = [np.linalg.norm(pts[i] - pts[j]) for i in range(5) for j in range(i + 1, 5)]
    assert t.distances() == pytest.approx(expected, rel=1e-5)
    same = tr.compare(t, tr.trajectory_pca([_snaps({"w": 2 * pts})]))
    assert same["full_distance_corr"] == pytest.approx(1.0) and same["procrustes"] == pytest.approx(0.0, abs=1e-8)
