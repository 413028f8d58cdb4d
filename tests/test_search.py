"""dlcourse.search: the sampler, spec building, and the importance / recommendation analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlcourse import metrics, runs, search, vocabulary


def test_space_is_the_reports():
    assert search.SPACE["optimizer"] == ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam")
    assert search.SPACE["weight_decay"] == (0.0, 5e-4, 0.5)
    assert search.space_size() == 2 * 3 * 3 * 3 * 2 * 6 * 3 * 2 * 3 == 11664


def test_sample_is_seeded_distinct_and_in_the_space():
    a = search.sample(60, seed=3)
    b = search.sample(60, seed=3)
    c = search.sample(60, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    keys = list(search.SPACE)
    assert list(a.columns) == [*keys, "shape"]
    assert not a[keys].duplicated().any()
    for k, values in search.SPACE.items():
        assert set(a[k]) <= set(values)
    assert a["shape"].nunique() == 60  # plain random search: every row its own shape


def test_sample_every_value_appears_with_enough_draws():
    frame = search.sample(400, seed=0)
    for k, values in search.SPACE.items():
        assert set(frame[k]) == set(values), k


def test_per_shape_groups_share_everything_but_member_keys():
    frame = search.sample(20, seed=1, per_shape=4)
    shape_keys = [k for k in search.SPACE if k not in search.MEMBER_KEYS]
    assert frame["shape"].nunique() == 5
    for _, group in frame.groupby("shape"):
        assert len(group) == 4
        assert (group[shape_keys].nunique() == 1).all()
        assert not group[list(search.MEMBER_KEYS)].duplicated().any()
    assert not frame[shape_keys].drop_duplicates().duplicated().any()
    assert not frame[list(search.SPACE)].duplicated().any()
    # a ragged last group
    assert len(search.sample(7, seed=0, per_shape=3)) == 7


def test_sample_whole_small_space_and_errors():
    space = {"lr": (0.1, 0.01), "optimizer": ("sgd", "adam")}
    full = search.sample(4, seed=0, space=space)
    assert set(map(tuple, full[["lr", "optimizer"]].to_numpy())) == {(0.1, "sgd"), (0.1, "adam"), (0.01, "sgd"), (0.01, "adam")}
    with pytest.raises(ValueError, match="only 4 distinct"):
        search.sample(5, space=space)
    with pytest.raises(ValueError, match="per_shape=13"):
        search.sample(13, per_shape=13)
    with pytest.raises(ValueError, match="n=0"):
        search.sample(0)
    with pytest.raises(ValueError, match="must be distinct"):
        search.sample(1, space={"lr": (0.1, 0.1)})
    with pytest.raises(ValueError, match="non-empty list"):
        search.sample(1, space={"optimizer": "adam"})


def test_config_to_spec_builds_valid_runspecs():
    config = search.sample(1, seed=5).iloc[0]
    d = search.config_to_spec(config, train_size=1000, val_size=500, epochs=1)
    spec = runs.RunSpec.from_dict(d)
    assert spec.hidden == (int(config["width"]),) * int(config["layers"])
    assert spec.init == config["init"] and config["init"] in vocabulary.INITS
    assert spec.epochs == 1 and spec.optimizer == config["optimizer"] and spec.lr == config["lr"]
    assert search.config_to_spec(config)["epochs"] == config["epochs"]
    all_specs = [runs.RunSpec.from_dict(d) for d in search.configs_to_specs(search.sample(50, seed=0), train_size=100)]
    assert len({s.key for s in all_specs}) == 50
    with pytest.raises(ValueError, match="lacks"):
        search.config_to_spec({"lr": 0.1})
    with pytest.raises(ValueError, match="init='random'.*xavier_normal"):  # the report's word is a label only
        search.config_to_spec({**config.to_dict(), "init": "random"})


def test_space_speaks_the_vocabulary():
    for name, words in (("optimizer", vocabulary.OPTIMIZERS), ("init", vocabulary.INITS),
                        ("activation", vocabulary.ACTIVATIONS)):
        assert set(search.SPACE[name]) <= set(words)
    assert set(search.REPORT_WORDS) == set(search.SPACE["init"])
    with pytest.raises(ValueError, match="init='xavier'"):
        search.check_space({"init": ("xavier", "normal")})


def test_per_shape_members_fall_in_one_stack_group():
    frame = search.sample(6, seed=2, per_shape=3)
    specs = [runs.RunSpec.from_dict(d) for d in search.configs_to_specs(frame, train_size=100)]
    groups = [runs.stack_group(s) for s in specs]
    assert groups[0] == groups[1] == groups[2] and groups[3] == groups[4] == groups[5]
    assert groups[0] != groups[3]


def _frame() -> pd.DataFrame:
    # val_acc is decided by the optimizer (+0.3 for adam) and the lr (+0.1 for 1e-3); init is noise
    rng = np.random.default_rng(0)
    rows = []
    for opt in ("sgd", "adam"):
        for lr in (1e-3, 1e-4):
            for init in ("normal", "xavier_normal"):
                for rep in range(5):
                    acc = 0.5 + 0.3 * (opt == "adam") + 0.1 * (lr == 1e-3) + rng.normal(0, 0.005)
                    rows.append({"optimizer": opt, "lr": lr, "init": init, "activation": ("tanh", "relu")[rep % 2],
                                 "val_acc": acc, "val_loss": 1 - acc})
    return pd.DataFrame(rows)


def test_importance_ranks_what_drives_accuracy():
    frame = _frame()
    imp = search.importance(frame, params=["optimizer", "lr", "init"])
    assert list(imp["hyperparameter"]) == ["optimizer", "lr", "init"]
    # variance explained: 0.3^2/4 vs 0.1^2/4 of a total 0.1^2/4 + 0.3^2/4 (+ noise)
    assert imp.loc[0, "importance"] == pytest.approx(0.9, abs=0.01)
    assert imp.loc[1, "importance"] == pytest.approx(0.1, abs=0.01)
    assert imp.loc[2, "importance"] < 0.01
    # spearman only for ordered (numeric) hyperparameters: higher lr ranks higher here
    assert np.isnan(imp.loc[0, "spearman"])
    assert imp.loc[1, "spearman"] == pytest.approx(frame["lr"].rank().corr(frame["val_acc"].rank()))
    assert imp.loc[1, "spearman"] > 0
    assert (imp["levels"] == 2).all()


def test_importance_of_a_one_feature_model_is_its_r2():
    x = np.repeat([0, 1, 2], 4)
    y = np.array([1.0, 2, 3, 2, 5, 6, 5, 4, 9, 9, 8, 10])
    imp = search.importance(pd.DataFrame({"x": x, "val_acc": y}), params=["x"])
    fitted = pd.Series(y).groupby(x).transform("mean")
    r2 = 1 - ((y - fitted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert imp.loc[0, "importance"] == pytest.approx(r2)


def test_importance_spearman_is_the_shared_rank_correlation():
    frame = _frame().assign(width=lambda f: np.where(f["val_acc"] > 0.7, 64, 32))
    imp = search.importance(frame, params=["lr", "width"]).set_index("hyperparameter")
    for p in ("lr", "width"):
        assert imp.loc[p, "spearman"] == metrics.rank_correlation(frame[p], frame["val_acc"])
    # two runs: the table has always shown their rho of -1 or +1; a constant side stays NaN
    two = search.importance(pd.DataFrame({"lr": [1e-3, 1e-2], "val_acc": [0.7, 0.6]}), params=["lr"])
    assert two.loc[0, "spearman"] == pytest.approx(-1.0)
    flat = search.importance(pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "val_acc": [0.6] * 3}), params=["lr"])
    assert np.isnan(flat.loc[0, "spearman"])


def test_a_hyperparameter_never_varied_explains_nothing_and_is_not_above_chance():
    # lab 8 at smoke: two stacks that shared width, batch size and epochs; the one group mean
    # against the overall mean left eta^2 = 2.9e-31 > chance 0, and the page listed the three
    # as above chance
    y = [0.414, 0.192, 0.160, 0.136, 0.124, 0.114]
    frame = pd.DataFrame({"width": [128] * 6, "batch_size": [32] * 6, "optimizer": ["adam", "sgd"] * 3,
                          "lr": [1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4], "val_acc": y})
    imp = search.importance(frame, params=["width", "batch_size", "optimizer", "lr"]).set_index("hyperparameter")
    for p in ("width", "batch_size"):
        assert imp.loc[p, "levels"] == 1 and imp.loc[p, "chance"] == 0.0
        assert imp.loc[p, "importance"] == 0.0  # exactly: not rounding noise
        assert not imp.loc[p, "importance"] > imp.loc[p, "chance"]
    assert imp.loc["lr", "importance"] > 0.3 and imp.loc["optimizer", "importance"] < 0.2  # chance: 0.2
    above = search.above_chance(imp.reset_index())
    assert above.to_dict() == {"lr": True, "optimizer": False, "width": False, "batch_size": False}
    # a single level is never above chance, whatever its importance says; NaN never is either
    table = pd.DataFrame({"hyperparameter": ["a", "b", "c", "d"], "importance": [1e-31, 0.3, 0.3 + 1e-12, np.nan],
                          "levels": [1, 2, 2, 2], "chance": [0.0, 0.2, 0.3, 0.2]})
    assert search.above_chance(table).to_dict() == {"a": False, "b": True, "c": False, "d": False}
    # a flat target: nothing to explain, importance undefined (NaN), nothing above chance
    flat = search.importance(frame.assign(val_acc=0.5), params=["width", "lr"])
    assert flat["importance"].isna().all() and not search.above_chance(flat).any()
    with pytest.raises(ValueError, match="no 'chance' column"):
        search.above_chance(table.drop(columns="chance"))


def test_shuffled_deals_values_out_the_way_they_were_drawn():
    frame = search.sample(60, seed=2, per_shape=3)
    shared = [k for k in search.SPACE if k not in search.MEMBER_KEYS]
    # the runs of a stack score alike, but nothing depends on the hyperparameters
    frame["val_acc"] = np.random.default_rng(0).normal(size=20).repeat(3)
    out = search.shuffled(frame, seed=1)
    assert out["val_acc"].equals(frame["val_acc"]) and out["shape"].equals(frame["shape"])
    assert out.dtypes.equals(frame.dtypes)
    assert (out.groupby("shape")[shared].nunique() == 1).all().all()  # a stack stays one shape
    stacks = lambda f: sorted(map(tuple, f.groupby("shape")[shared].first().astype(str).to_numpy()))
    assert stacks(out) == stacks(frame) and not out[shared].equals(frame[shared])
    for k in search.MEMBER_KEYS:
        assert sorted(out[k].astype(str)) == sorted(frame[k].astype(str))
    assert out.equals(search.shuffled(frame, seed=1)) and not out.equals(search.shuffled(frame, seed=2))
    # the mean importance of shuffles is the chance level: for a shared key it counts stacks
    mean = pd.concat([search.importance(search.shuffled(frame, seed=s)).set_index("hyperparameter")["importance"]
                      for s in range(300)], axis=1).mean(axis=1)
    chance = search.importance(frame).set_index("hyperparameter")["chance"]
    assert mean["optimizer"] == pytest.approx(chance["optimizer"], rel=0.15)  # 5 / 19, not 5 / 59
    assert mean["lr"] == pytest.approx(chance["lr"], rel=0.25)
    # without a shape column every key moves between runs; a shape must share its shape keys
    plain = search.shuffled(frame.drop(columns="shape"), seed=0)
    assert (plain.assign(shape=frame["shape"]).groupby("shape")["optimizer"].nunique() > 1).any()
    with pytest.raises(ValueError, match="differ in width"):
        search.shuffled(frame.assign(width=np.arange(60) % 3), seed=0)


def test_level_effects_and_means():
    frame = _frame()
    eff = search.level_effects(frame, params=["optimizer"]).set_index("value")
    assert eff.loc["adam", "correlation"] > 0.9 and eff.loc["sgd", "correlation"] < -0.9
    assert eff.loc["adam", "runs"] == 20
    assert eff.loc["adam", "mean"] == pytest.approx(frame.query("optimizer == 'adam'")["val_acc"].mean())
    assert list(search.level_means(frame, "optimizer").index) == ["adam", "sgd"]
    with pytest.raises(ValueError, match="'momentum' is not a column"):
        search.level_effects(frame, params=["momentum"])


def test_best_recommend_share_matches():
    frame = _frame()
    top = search.best(frame)
    assert len(top) == 1 and top.iloc[0]["val_acc"] == frame["val_acc"].max()
    rec = search.recommend(frame, k=3, distinct=("optimizer", "activation"))
    assert len(rec) == 3
    assert not rec[["optimizer", "activation"]].duplicated().any()
    assert rec["val_acc"].is_monotonic_decreasing
    assert rec.iloc[0]["val_acc"] == frame["val_acc"].max()
    assert search.share(frame, "optimizer", "sgd", frame["val_acc"] < 0.65) == 1.0
    assert np.isnan(search.share(frame, "optimizer", "sgd", frame["val_acc"] > 2))
    m = search.matches({"lr": 0.001, "optimizer": "adam"}, {"lr": 1e-3, "optimizer": "sgd"})
    assert m == {"lr": True, "optimizer": False}


def test_attach_counts_diverged_runs_as_chance():
    configs = search.sample(3, seed=0)
    sweep = pd.DataFrame({"val_acc": [0.8, np.nan, 0.7], "val_loss": [0.5, np.nan, 0.6], "diverged": [False, True, False],
                          "seconds": [1.0, 2.0, 3.0]})
    out = search.attach(configs, sweep)
    assert list(out["val_acc"]) == [0.8, 0.1, 0.7]
    assert list(out["diverged"]) == [False, True, False]
    with pytest.raises(ValueError, match="3 configurations but 2 runs"):
        search.attach(configs, sweep.head(2))


def test_stacked_sweep_on_toy_data(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    frame = search.sample(4, seed=0, per_shape=2)
    specs = search.configs_to_specs(frame, dataset="fashion-mnist", train_size=300, val_size=100, epochs=1, device="cpu")
    df = runs.sweep(specs, progress=False)
    assert (df["stack_size"] > 1).all() and (df["backend"] == "local").all()
    out = search.attach(frame, df)
    assert out["val_acc"].between(0, 1).all() and len(out) == 4
    imp = search.importance(out)
    assert set(imp["hyperparameter"]) == set(search.SPACE)


def test_sweep_figures_draw(toy_root):
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from dlcourse import metrics
    from dlcourse.plots import sweep as ps

    frame = _frame()
    frame["batch_size"] = 64
    figs = [
        ps.runs_scatter(frame, hue="optimizer", style="activation"),
        ps.parallel_coordinates(frame, ["optimizer", "lr", "init", "batch_size"]),
        ps.importance_bars(search.importance(frame, params=["optimizer", "lr"]), search.level_effects(frame)),
        ps.level_strip(frame, ["optimizer", "lr"]),
        ps.confusion_matrices({"a": metrics.confusion_matrix([0, 1, 1], [0, 1, 0], ["x", "y"], normalize="true")}),
        ps.class_samples(np.zeros((4, 1, 28, 28)), [0, 1, 2, 2], ["a", "b", "c"]),
    ]
    for fig in figs:
        assert fig.axes and fig.axes[0].get_xlabel() is not None
        plt.close(fig)
    assert "validation accuracy" in figs[0].axes[0].get_ylabel()
    with pytest.raises(ValueError, match="no column 'width'"):
        ps.parallel_coordinates(frame, ["width"])


def test_last_gain_per_run():
    hist = pd.DataFrame({"key": ["a", "a", "a", "b", "b", "c"], "epoch": [1, 3, 2, 1, 2, 1],
                         "val_acc": [0.5, 0.7, 0.6, 0.8, 0.75, 0.3]})
    gain = search.last_gain(hist)
    assert gain["a"] == pytest.approx(0.1) and gain["b"] == pytest.approx(-0.05) and np.isnan(gain["c"])
    with pytest.raises(ValueError, match="no 'val_loss'"):
        search.last_gain(hist, metric="val_loss")


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    """A stand-in for training: accuracy rises with width and is best with relu and adam."""
    score = (frame["width"] / 128 * 0.1 + (frame["activation"] == "relu") * 0.1 + (frame["optimizer"] == "adam") * 0.05
             + 0.6)
    return frame.assign(val_acc=score.to_numpy(), val_loss=(1 - score).to_numpy())


def test_neighbours_change_exactly_one_hyperparameter_and_skip_what_ran():
    keys = list(search.SPACE)
    runs_so_far = _scored(search.sample(20, seed=5))
    step = search.neighbours(runs_so_far, k=2)
    assert list(step.columns) == [*keys, "base", "changed"]
    bases = search.recommend(runs_so_far, k=2, distinct=("optimizer", "activation", "lr"))
    assert set(step["base"]) <= set(bases.index)
    for row in step.to_dict("records"):
        base = runs_so_far.loc[row["base"], keys]
        differs = [k for k in keys if not (base[k] == row[k])]
        assert differs == [row["changed"]]
    seen = {tuple(r) for r in runs_so_far[keys].astype(str).to_numpy()}
    assert not any(tuple(r) in seen for r in step[keys].astype(str).to_numpy())
    assert not step[keys].astype(str).duplicated().any()
    one = search.neighbours(runs_so_far.head(1), k=1)
    assert len(one) == sum(len(v) - 1 for v in search.SPACE.values())  # nothing else ran yet


def test_local_steps_reach_a_setting_two_changes_away():
    start = pd.DataFrame([{"epochs": 10, "layers": 3, "width": 32, "weight_decay": 0.0, "lr": 1e-3, "optimizer": "adam",
                           "batch_size": 64, "init": "xavier_normal", "activation": "tanh"}])
    start = _scored(start)
    calls = []

    def train(frame):
        calls.append(len(frame))
        return _scored(frame)

    one = search.local_steps(start, train, rounds=1, k=1)
    assert one["round"].eq(1).all() and len(calls) == 1
    assert not ((one["width"] == 128) & (one["activation"] == "relu")).any()  # one change at a time
    two = search.local_steps(start, train, rounds=2, k=1)
    best = search.best(pd.concat([start, two], ignore_index=True)).iloc[0]
    assert (best["width"], best["activation"]) == (128, "relu")
    assert set(two["round"]) == {1, 2}
    assert search.local_steps(start, train, rounds=0).empty
    shifted = search.local_steps(start.set_axis([7]), train, rounds=2, k=1)  # any index on the input
    pool = pd.concat([start, shifted], ignore_index=True)
    for row in shifted.to_dict("records"):  # `base` is a row of pool, differing only in `changed`
        base = pool.loc[row["base"]]
        assert [k for k in search.SPACE if base[k] != row[k]] == [row["changed"]]


def test_local_steps_stop_when_nothing_is_left_and_check_train():
    space = {"epochs": (5,), "layers": (3,), "width": (32, 64), "weight_decay": (0.0,), "lr": (1e-3,),
             "optimizer": ("adam",), "batch_size": (64,), "init": ("xavier_normal",), "activation": ("relu",)}
    start = _scored(pd.DataFrame([{k: v[0] for k, v in space.items()}]))
    steps = search.local_steps(start, _scored, rounds=5, k=1, space=space)
    assert len(steps) == 1 and steps["round"].tolist() == [1]  # the only neighbour, then nothing new
    with pytest.raises(ValueError, match="train"):
        search.local_steps(start, lambda frame: frame.head(0), rounds=1, k=1, space=space)
    with pytest.raises(ValueError, match="rounds"):
        search.local_steps(start, _scored, rounds=-1)


def test_plots_draw_a_search_without_importing_it():
    # plots sit below search in the layers: the legend order is passed in, never looked up
    import subprocess
    import sys

    code = ("import sys, pandas as pd, matplotlib; matplotlib.use('agg'); from dlcourse.plots import sweep; "
            "f = pd.DataFrame({'val_acc': [0.5, 0.8], 'optimizer': ['sgd', 'adam'], 'activation': ['tanh', 'relu']}); "
            "fig = sweep.runs_scatter(f, category_orders={'optimizer': ['sgd', 'adam']}); "
            "print([t.get_text() for t in fig.axes[0].get_legend().get_texts()][:3]); "
            "print(sorted(m for m in sys.modules if m in ('dlcourse.search', 'dlcourse.runs', 'dlcourse.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "['optimizer', 'sgd', 'adam']"
    assert out[1] == "[]"


def test_parts_split_a_search_into_disjoint_balanced_draws():
    frame = search.sample(30, seed=1, per_shape=3)
    part = search.parts(frame, 3, seed=0)
    assert part.index.equals(frame.index) and set(part) == {0, 1, 2}
    assert sorted(part.value_counts()) == [9, 9, 12]  # 10 stacks of 3 as 4 + 3 + 3
    assert (frame.groupby("shape").apply(lambda g: part[g.index].nunique()) == 1).all()  # a stack stays whole
    assert part.equals(search.parts(frame, 3, seed=0)) and not part.equals(search.parts(frame, 3, seed=1))
    plain = search.sample(7, seed=0).drop(columns="shape")
    assert sorted(search.parts(plain, 2).value_counts()) == [3, 4]
    with pytest.raises(ValueError, match="n=11"):
        search.parts(frame, 11)
