"""dlcourse.experiments and dlcourse.report: spec grids, result frames, the measurements behind claim
effects, display tables, and the figures drawn from the frames."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dlcourse import data, experiments as ex, models, report, train  # noqa: E402
from dlcourse.plots import curves  # noqa: E402

BASE = {"dataset": "mnist", "model": "mlp", "activation": "sigmoid", "optimizer": "adam", "lr": 1e-3,
        "batch_size": 20, "epochs": 2, "seed": 0}


def fake(spec, losses, seconds=None):
    """A stand-in Result: a History with the given validation losses, one epoch each."""
    n = len(losses)
    hist = pd.DataFrame({"epoch": range(1, n + 1), "train_loss": [v * 0.8 for v in losses],
                         "train_acc": [0.5 + 0.01 * i for i in range(n)], "val_loss": losses,
                         "val_acc": [0.6] * n, "test_loss": losses, "test_acc": [0.7] * n,
                         "seconds": [1.5] * n})
    return SimpleNamespace(spec=spec, history=hist, seconds=seconds)


# ---------------------------------------------------------------- specs

def test_grid_is_the_cartesian_product_first_axis_slowest():
    specs = ex.grid(BASE, hidden=[[50], [100]], lr=[0.1, 0.01, 0.001])
    assert len(specs) == 6
    assert [s["hidden"] for s in specs[:3]] == [[50]] * 3 and [s["lr"] for s in specs[:3]] == [0.1, 0.01, 0.001]
    assert all(s["optimizer"] == "adam" for s in specs) and "hidden" not in BASE


@pytest.mark.parametrize("bad", ["adam", [], 3, None])
def test_grid_refuses_an_axis_that_is_not_a_list(bad):
    with pytest.raises(ValueError, match="optimizer="):
        ex.grid(BASE, optimizer=bad)


def test_vary_one_field_with_per_value_overrides():
    specs = ex.vary(BASE, "optimizer", {"sgd": {"lr": 0.1}, "adam": {}}, epochs=5)
    assert [(s["optimizer"], s["lr"], s["epochs"]) for s in specs] == [("sgd", 0.1, 5), ("adam", 1e-3, 5)]
    assert [s["batch_size"] for s in ex.vary(BASE, "batch_size", [10, 1000])] == [10, 1000]
    with pytest.raises(ValueError, match="overrides for 'sgd'"):
        ex.vary(BASE, "optimizer", {"sgd": 0.1})
    with pytest.raises(ValueError, match="batch_size="):
        ex.vary(BASE, "batch_size", 10)
    with pytest.raises(ValueError, match="batch_sizes="):
        ex.vary(BASE, "batch_size", "[10, 20]", param="batch_sizes")


def test_hidden_layers_are_depth_times_width():
    assert ex.hidden_layers([1, 3], [50, 200]) == [[50], [200], [50, 50, 50], [200, 200, 200]]
    with pytest.raises(ValueError, match="widths=.*0"):
        ex.hidden_layers([1], [50, 0])
    with pytest.raises(ValueError, match="depths="):
        ex.hidden_layers("12", [50])


# ---------------------------------------------------------------- frames

def test_function_fits_are_lab_5s_nets_of_matched_size():
    fits = ex.function_fits(["sinc", "sign"], [8, 5, 2], range(3), epochs=7, device="cpu")
    assert len(fits) == 2 * 3 * 3 and "depth" not in fits[0]
    assert [f["hidden"] for f in fits[:9:3]] == [[9] * 7, [13, 13, 13, 12], [190]]  # the report's ~571 weights
    assert {(f["dataset"], f["seed"]) for f in fits} == {(d, s) for d in ("sinc", "sign") for s in range(3)}
    assert all(f["loss"] == "mse" and f["record_grad_norm"] and f["epochs"] == 7 for f in fits)
    with pytest.raises(ValueError, match="depths"):
        ex.function_fits(["sinc"], [], [0], epochs=1)


def test_labels_and_parameter_counts_read_well():
    assert ex.make_label({**BASE, "hidden": [100, 100]}, ["hidden"]) == "2×100"
    assert ex.make_label({**BASE, "hidden": [100, 50]}, ["hidden"]) == "100-50"
    assert ex.make_label(BASE, ["optimizer", "lr"]) == "optimizer=adam, lr=0.001"
    assert ex.parameter_count({**BASE, "hidden": [50]}) == 784 * 50 + 50 + 50 * 10 + 10 == 39760
    built = models.count_parameters(models.mlp([100, 100], batchnorm=True))
    assert ex.parameter_count({**BASE, "hidden": [100, 100], "batchnorm": True}) == built
    assert ex.parameter_count({"dataset": "mnist", "model": "cnn", "channels": [8], "dense": [16], "pool": True}) == \
        models.count_parameters(models.cnn([8], [16]))
    assert ex.parameter_count({"dataset": "sinc", "hidden": [5]}) is None


def test_multiply_adds_count_each_layer_once_per_image():
    assert ex.multiply_adds({**BASE, "hidden": [500]}) == 784 * 500 + 500 * 10
    # lab 6's CNN 1 (two 3x3 convolutions with pooling), counted by hand: 28x28 then 14x14 maps
    cnn = {"dataset": "mnist", "model": "cnn", "channels": [8, 16], "dense": [104, 128], "pool": True}
    by_hand = 9 * 1 * 8 * 28 * 28 + 9 * 8 * 16 * 14 * 14 + 7 * 7 * 16 * 104 + 104 * 128 + 128 * 10
    assert ex.multiply_adds(cnn) == by_hand
    unpooled = {**cnn, "channels": [4], "dense": [65], "pool": False}
    assert ex.multiply_adds(unpooled) == 9 * 4 * 28 * 28 + 28 * 28 * 4 * 65 + 65 * 10
    assert ex.multiply_adds({"dataset": "sinc", "hidden": [5]}) is None


def test_spec_dict_accepts_dataclasses():
    @dataclass(frozen=True)
    class Spec:
        dataset: str = "mnist"
        hidden: tuple = (10,)

    assert ex.spec_dict(Spec()) == {"dataset": "mnist", "hidden": (10,)}
    assert ex.make_label(Spec(), ["hidden"]) == "1×10"


def test_history_and_final_frames_from_results():
    runs = [fake({**BASE, "hidden": [50] * d}, [1.0, 0.5, 0.4], seconds=4.0) for d in (1, 2)]
    h = ex.history_frame(runs, ["hidden"])
    assert len(h) == 6 and list(h.columns[:5]) == ["hidden", "label", "depth", "width", "params"]
    assert h["label"].unique().tolist() == ["1×50", "2×50"] and h["depth"].unique().tolist() == [1, 2]
    assert h.loc[h["label"] == "1×50", "elapsed"].tolist() == [1.5, 3.0, 4.5]

    f = ex.final_frame(runs, ["hidden"])
    assert f["val_loss"].tolist() == [0.4, 0.4] and f["epochs"].tolist() == [3, 3]
    assert f["seconds"].tolist() == [4.0, 4.0]  # the result's own total wins over the epoch sum
    assert f["epoch_seconds"].tolist() == [1.5, 1.5]
    assert f["best_epoch"].tolist() == [3, 3] and f["params"].iloc[1] == 42310

    assert f["seed"].tolist() == [0, 0]

    t = report.final_table(f, digits=1, index="label")
    assert t.index.tolist() == ["1×50", "2×50"] and t.loc["1×50", "train_loss"] == 0.3
    assert t.columns.tolist() == ["params", *report.METRICS, "best_epoch", "seconds"]
    assert report.final_table(f, ["val_loss"]).index.tolist() == [0, 1]
    with pytest.raises(ValueError, match="nope"):
        report.final_table(f, ["nope"])


def test_epoch_seconds_leave_out_the_warm_up_epoch():
    res = fake({**BASE, "hidden": [50]}, [1.0, 0.5, 0.4, 0.3])
    res.history["seconds"] = [9.0, 1.0, 2.0, 1.2]  # epoch 1 pays for warm-up
    f = ex.final_frame([res], ["hidden"])
    assert f["epoch_seconds"].iloc[0] == 1.2 and f["seconds"].iloc[0] == 13.2
    assert ex.warm_epochs(res.history)["epoch"].tolist() == [2, 3, 4]
    one = fake(BASE, [1.0])
    assert ex.warm_epochs(one.history)["epoch"].tolist() == [1]  # a one-epoch run keeps its epoch


def test_per_seed_tables_make_paired_differences():
    runs = [fake({**BASE, "hidden": [w], "seed": s}, [1.0, 0.5 - w / 1000 + s / 100]) for s in (0, 1, 2) for w in (50, 200)]
    f = ex.final_frame(runs, ["hidden"])
    t = ex.per_seed(f, "val_loss")
    assert t.index.tolist() == [0, 1, 2] and t.columns.tolist() == ["1×50", "1×200"]
    assert (t["1×50"] - t["1×200"]).tolist() == pytest.approx([0.15] * 3)
    with pytest.raises(ValueError, match="by='depth'"):
        ex.per_seed(f, "val_loss", by="depth")  # both widths have depth 1: two rows per seed
    with pytest.raises(ValueError, match="nope"):
        ex.per_seed(f, "nope")

    table = report.seed_table(f, columns=["val_loss", "params"], digits=2)
    assert table.index.tolist() == ["1×50", "1×200"] and table["seeds"].tolist() == [3, 3]
    assert table.loc["1×50", "val_loss"] == "0.46 ± 0.01"
    assert table.loc["1×200", "params"] == "159,010"  # what does not vary shows alone, as the prose writes it
    big = f.assign(params=1234567, lr=0.001)
    assert report.seed_table(big, columns=["params", "lr"]).iloc[0].tolist() == [3, "1,234,567", "0.001"]
    assert report.seed_table(f.iloc[:1], columns=["val_loss"]).loc["1×50", "val_loss"] == "0.45"


def test_frames_accept_pairs_and_refuse_bad_input():
    res = fake(None, [1.0, 0.9])
    f = ex.final_frame([(BASE | {"hidden": [20]}, res)], ["optimizer"], labels=["mine"])
    assert f["label"].tolist() == ["mine"] and f["optimizer"].tolist() == ["adam"]
    assert f["seconds"].iloc[0] == 3.0  # falls back to the sum of epoch times
    h = ex.history_frame([(BASE, res)], ["optimizer"], extra=["lr", "optimizer"])
    assert h["label"].tolist() == ["adam", "adam"] and h["lr"].tolist() == [1e-3, 1e-3]
    assert list(h.columns[:3]) == ["optimizer", "lr", "label"]
    assert ex.final_frame([(BASE, res)], ["optimizer"], extra=["batch_size"])["batch_size"].tolist() == [20]
    with pytest.raises(ValueError, match="no runs"):
        ex.history_frame([], ["hidden"])
    with pytest.raises(ValueError, match=r"\.spec"):
        ex.final_frame([SimpleNamespace(history=res.history)], ["hidden"])
    with pytest.raises(ValueError, match="labels has 2"):
        ex.history_frame([(BASE, res)], ["lr"], labels=["a", "b"])


def test_frames_from_a_real_training_run(toy_root):
    ds = data.load("mnist", toy_root, device="cpu", val_size=100, download=False)
    torch.manual_seed(0)
    hist = train.fit(models.mlp([16]), ds, epochs=2, batch_size=50, lr=3e-3, progress=False)
    spec = {**BASE, "hidden": [16]}
    f = ex.final_frame([(spec, SimpleNamespace(history=hist.epochs))], ["hidden"])
    assert f["params"].iloc[0] == models.count_parameters(models.mlp([16]))
    assert f["test_acc"].iloc[0] == pytest.approx(hist.final["test_acc"])
    assert 0 < f["seconds"].iloc[0] == pytest.approx(hist.epochs["seconds"].sum())


# ---------------------------------------------------------------- measurements behind claim effects

def test_val_rise_measures_how_far_validation_loss_turned_up():
    runs = [fake({**BASE, "hidden": [w]}, losses) for w, losses in
            ((10, [1.0, 0.5, 0.4, 0.35]), (20, [1.0, 0.3, 0.4, 0.5]), (30, [1.0, 0.3, 0.306, 0.303]))]
    rise = ex.val_rise(ex.history_frame(runs, ["hidden"]))
    assert rise.index.tolist() == ["1×10", "1×20", "1×30"]
    assert rise.tolist() == pytest.approx([0.0, 0.5 / 0.3 - 1, 0.01])
    by_seed = ex.val_rise(ex.history_frame(runs, ["hidden"]), by=["label", "seed"]).unstack("label")
    assert by_seed.index.tolist() == [0] and by_seed.columns.tolist() == ["1×10", "1×20", "1×30"]


def test_first_reach_in_seconds_and_epochs():
    runs = [fake({**BASE, "batch_size": b}, losses) for b, losses in ((10, [0.5, 0.3, 0.2]), (100, [0.9, 0.8, 0.7]))]
    h = ex.history_frame(runs, ["batch_size"])
    assert ex.first_reach(h, "val_loss", 0.3).to_dict()["10"] == 3.0
    assert math.isnan(ex.first_reach(h, "val_loss", 0.3)["100"])
    assert ex.first_reach(h, "val_loss", 0.3, x="epoch")["10"] == 2
    assert ex.first_reach(h, "train_acc", 0.51, below=False, x="epoch").tolist() == [2, 2]
    per_run = ex.first_reach(h, "val_loss", 0.3, by=["label", "seed"], x="epoch")
    assert per_run.index.names == ["label", "seed"] and per_run.loc[("10", 0)] == 2


# ---------------------------------------------------------------- figures

def test_metric_curves_label_every_axis():
    runs = [fake({**BASE, "hidden": [w] * d}, [1.0, 0.5, 0.4]) for d in (1, 2) for w in (50, 100)]
    h = ex.history_frame(runs, ["hidden"])
    g = curves.metric_curves(h, hue="width", col="depth", ylabels={"val_loss": "validation loss (nats)"})
    assert g.axes.shape == (2, 2)
    assert g.axes[1, 0].get_ylabel() == "validation loss (nats)" and g.axes[1, 1].get_xlabel() == "epoch"
    assert g.axes[0, 1].get_title() == "depth = 2"
    g2 = curves.metric_curves(h, metrics=["val_acc", "missing"], x="elapsed", xlabel="wall time (s)")
    assert g2.axes.shape == (1, 1) and g2.axes[0, 0].get_xlabel() == "wall time (s)"
    g3 = curves.metric_curves(h, metrics=["train_loss", "val_acc"], hue="width", logy=["train_loss"], categorical=True)
    assert [ax.get_yscale() for ax in g3.axes.flat] == ["log", "linear"]
    assert len({line.get_color() for line in g3.axes[0, 0].get_lines()}) >= 2
    with pytest.raises(ValueError, match="none of the metrics"):
        curves.metric_curves(h, metrics=["nope"])
    plt.close("all")


def _curve_frame(hue: str = "implementation") -> pd.DataFrame:
    """A History-like long frame: two runs of ten epochs, as lab07 and lab08 build it."""
    rows = [{hue: name, "epoch": e, "train_loss": k / e, "val_loss": 1.2 * k / e, "train_acc": 1 - 0.4 / e,
             "val_acc": 1 - 0.5 / e} for k, name in ((1.0, "NumPy"), (1.1, "PyTorch")) for e in range(1, 11)]
    return pd.DataFrame(rows)


def _gaps(g) -> list[float]:
    """Pixels between each panel (all it draws) and the y axis (ticks and label) of the panel to its right."""
    fig = g.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    axes = list(g.axes.flat)
    return [right.yaxis.get_tightbbox(r).x0 - left.get_tightbbox(r).x1 for left, right in zip(axes, axes[1:])]


def test_metric_curves_draws_the_old_learning_curves_figures():
    # lab07 and lab08: one panel per metric, one line per hue value, a title, units in the labels
    nats = {"train_loss": "training loss (nats)", "val_loss": "validation loss (nats)"}
    g = curves.metric_curves(_curve_frame(), metrics=["train_loss", "val_loss", "val_acc"], hue="implementation",
                             ylabels=nats, title="hand-written vs PyTorch")
    assert g.axes.shape == (1, 3)
    assert [ax.get_ylabel() for ax in g.axes.flat] == ["training loss (nats)", "validation loss (nats)",
                                                        "validation accuracy"]
    assert [ax.get_title() for ax in g.axes.flat] == [ax.get_ylabel() for ax in g.axes.flat]
    assert all(ax.get_xlabel() == "epoch" for ax in g.axes.flat)
    assert all(len(ax.get_lines()) >= 2 for ax in g.axes.flat)  # one line per implementation
    assert g.figure._suptitle.get_text() == "hand-written vs PyTorch"
    assert [t.get_text() for t in g.legend.texts] == ["NumPy", "PyTorch"]
    one = curves.metric_curves(_curve_frame().query("epoch == 1"), metrics=["val_acc"], hue="implementation")
    one.figure.canvas.draw()
    ax = one.axes[0, 0]
    assert [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]] == [1.0]  # a one-epoch smoke run
    plt.close("all")


def test_metric_curves_keeps_a_long_right_y_label_off_the_left_panel():
    long = {"val_acc": "validation accuracy (fraction of images)", "train_acc": "training accuracy (fraction)"}
    for metrics in (["train_acc", "val_acc"], ["train_loss", "val_loss", "val_acc"]):
        g = curves.metric_curves(_curve_frame("l2"), metrics=metrics, hue="l2", ylabels=long, title="L2")
        assert g.axes[0, -1].get_ylabel() == long["val_acc"]
        assert min(_gaps(g)) > 2, _gaps(g)
        plt.close("all")


def test_metric_vs_params_draws_one_point_per_run():
    runs = [fake({**BASE, "hidden": [w] * d}, [1.0, 0.5]) for d in (1, 2) for w in (50, 100)]
    f = ex.final_frame(runs, ["hidden"])
    fig = curves.metric_vs_params(f)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "parameters" in ax.get_xlabel() and ax.get_ylabel() == "test accuracy"
    assert sum(len(c.get_offsets()) for c in ax.collections) == 4
    plt.close("all")
