"""dlcourse.analysis.evidence: verdicts from several seeds, preconditions, claims files and their table."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import yaml

from dlcourse.analysis import evidence as ev
from dlcourse.settings import project_root


def t_cdf(x: float, df: int) -> float:
    """Student's t CDF by a fine trapezoid integral of its density (scipy is not installed)."""
    grid = np.linspace(0.0, x, 200_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(grid**2 / df))
    return 0.5 + float(np.trapezoid(pdf, grid))


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 14, 29, 30, 31, 60, 200])
def test_t_quantiles_are_the_975_quantiles(df):
    assert t_cdf(ev.t_quantile(df), df) == pytest.approx(0.975, abs=2e-5)


def test_t_quantile_refuses_bad_degrees_of_freedom():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="df="):
            ev.t_quantile(bad)


def test_clear_win_is_confirmed_with_its_interval():
    v = ev.decide([0.10, 0.12, 0.11])
    assert v.verdict == "confirmed" and v.reason == "" and v.n == 3
    assert v.effect == pytest.approx(0.11)
    half = ev.T975[1] * 0.01 / math.sqrt(3)  # sample std of 0.10, 0.11, 0.12 is 0.01
    assert (v.low, v.high) == pytest.approx((0.11 - half, 0.11 + half))
    assert 0 < v.low < v.effect < v.high


def test_clear_loss_is_not_confirmed():
    v = ev.decide([-0.5, -0.45, -0.55, -0.5, -0.48])
    assert v.verdict == "not confirmed" and v.high < 0 and v.reason == "" and v.n == 5


def test_within_noise_is_undecided():
    v = ev.decide([0.3, -0.2, 0.1])
    assert v.verdict == "undecided" and v.low < 0 < v.high and "within noise" in v.reason
    # a positive mean is not enough: two seeds with a large spread cannot decide
    assert ev.decide([0.01, 0.03]).verdict == "undecided"
    assert ev.decide([0.0, 0.0, 0.0]).verdict == "undecided"  # no spread, no effect


def test_limits_cut_the_interval_to_the_values_an_effect_can_take():
    corrs = [0.99, 0.93, 0.985]  # three rank correlations close to 1
    free = ev.decide(corrs)
    assert free.high > 1  # Student's t alone reaches past 1
    cut = ev.decide(corrs, limits=(-1, 1))
    assert cut.high == 1.0 and cut.low == free.low and cut.effect == free.effect
    assert cut.verdict == free.verdict == "confirmed"
    for bad in ((0, 1), (-1, 0), (1, -1)):
        with pytest.raises(ValueError, match="limits="):
            ev.decide(corrs, limits=bad)


def test_failed_precondition_makes_it_undecided_with_its_reason():
    clear = [1.0, 1.1, 0.9]
    v = ev.decide(clear, preconditions=[ev.needs_device("cuda", "cpu")])
    assert v.verdict == "undecided" and v.reason == "a claim about a GPU (cuda), measured on a CPU"
    assert v.effect == pytest.approx(1.0) and v.low > 0  # the numbers are still shown
    v = ev.decide(clear, preconditions=[ev.needs_steps(150_000, 4_300), ev.needs_seeds(5, 3)])
    assert v.verdict == "undecided" and v.reason == "needs at least 150,000 steps, ran 4,300; needs at least 5 seeds, ran 3"
    ok = [ev.needs_device("cuda", "cuda:0"), ev.needs_steps(100, 100), ev.precondition(True, "unused")]
    assert ev.decide(clear, preconditions=ok).verdict == "confirmed"
    import torch
    assert ev.needs_device("cpu", torch.device("cpu")).ok and not ev.needs_device("cuda", torch.device("cpu")).ok
    v = ev.decide(clear, preconditions=[ev.precondition(False, "confounded with the learning rate")])
    assert v.reason == "confounded with the learning rate"
    with pytest.raises(ValueError, match="preconditions="):
        ev.decide(clear, preconditions=[True])


def test_single_seed_is_undecided_without_an_interval():
    v = ev.decide([5.0])
    assert v.verdict == "undecided" and v.n == 1 and v.effect == 5.0
    assert math.isnan(v.low) and math.isnan(v.high) and v.reason == "needs at least 2 seeds, ran 1"
    assert ev.decide([1.0, 1.1, 0.9], min_seeds=5).reason == "needs at least 5 seeds, ran 3"
    assert ev.decide([]).verdict == "undecided" and ev.decide([]).n == 0


def test_an_effect_that_is_not_a_number_is_undecided():
    v = ev.decide([1.0, math.nan, 1.2])
    assert v.verdict == "undecided" and v.reason == "the effect is not a number for 1 of 3 draws"
    assert v.effect == pytest.approx(1.1)
    assert (v.n, v.used, v.draws) == (3, 2, "2 of 3")  # the mean and interval come from the 2 numbers
    assert ev.decide([1.0, 1.2]).draws == "2"


def test_paired_differences_decide_what_unpaired_means_cannot():
    # two settings whose seeds move together: the per-seed difference is steady
    a, b = np.array([0.30, 0.50, 0.40]), np.array([0.28, 0.47, 0.38])
    assert ev.decide(a - b).verdict == "confirmed"


CLAIMS = [
    {"id": "wider_lower_loss", "cite": "R0 §3", "report_says": "More units, lower loss.",
     "claim": "Wider nets reach a lower training loss", "effect": "loss of 1x50 minus 1x200 (nats); > 0 supports",
     "runs": "depth grid"},
    {"id": "gpu_faster", "cite": "R0 §9", "report_says": "Large batches ran faster on the GPU.",
     "claim": "Larger batches take less time per epoch", "effect": "seconds (s); > 0 supports",
     "preconditions": "a GPU", "runs": ["batch sizes"]},
]


def test_claims_table_shows_every_claim_with_its_numbers():
    verdicts = {"wider_lower_loss": ev.decide([0.1, 0.12, 0.11]),
                "gpu_faster": ev.decide([3.0], preconditions=[ev.needs_device("cuda", "cpu")])}
    t = ev.claims_table(CLAIMS, verdicts)
    assert t.index.name == "id" and t.index.tolist() == ["wider_lower_loss", "gpu_faster"]
    assert t.columns.tolist() == ["claim", "the report said", "effect", "draws", "mean effect", "interval", "verdict", "reason"]
    row = t.loc["wider_lower_loss"]
    assert row["verdict"] == "confirmed" and row["draws"] == "3" and row["mean effect"] == "0.110"
    assert re.fullmatch(r"\[0\.0\d\d, 0\.1\d\d\]", row["interval"]) and row["reason"] == "—"
    assert row["the report said"] == 'More units, lower loss. (<a href="../reports.html#r0">R0 §3</a>)'
    gpu = t.loc["gpu_faster"]
    assert gpu["interval"] == "—" and gpu["verdict"] == "undecided" and "GPU" in gpu["reason"]
    html = t._repr_html_()
    assert '<a href="../reports.html#r0">R0 §3</a>' in html and "&lt;a" not in html
    assert ev.claims_table(CLAIMS, verdicts, digits=1).loc["wider_lower_loss", "mean effect"] == "0.1"
    with pytest.raises(ValueError, match="no verdict for \\['gpu_faster'\\]"):
        ev.claims_table(CLAIMS, {"wider_lower_loss": verdicts["wider_lower_loss"]})
    with pytest.raises(ValueError, match="no claim for \\['extra'\\]"):
        ev.claims_table(CLAIMS, {**verdicts, "extra": verdicts["gpu_faster"]})


def test_claims_table_escapes_text_but_not_links_and_shows_sentences_whole():
    long = "loss < 0.1 & falling, " + "and a long sentence that goes on " * 4 + "to the end"
    claim = [{**CLAIMS[0], "claim": long}]
    html = ev.claims_table(claim, {"wider_lower_loss": ev.decide([1.0, 1.0])})._repr_html_()
    assert long.replace("&", "&amp;").replace("<", "&lt;") in html


def test_check_claims_refuses_bad_files():
    assert ev.check_claims(CLAIMS) is CLAIMS
    bad = [
        ([], "non-empty list"),
        ([{**CLAIMS[0], "cite": "Lab 1 report, §3"}], "cite="),
        ([{**CLAIMS[0], "cite": "R5 §1"}], "cite="),
        ([{**CLAIMS[0], "id": "Wider"}], "id="),
        ([CLAIMS[0], CLAIMS[0]], "id="),
        ([{k: v for k, v in CLAIMS[0].items() if k != "effect"}], "missing \\['effect'\\]"),
        ([{**CLAIMS[0], "verdict": "confirmed"}], "unknown \\['verdict'\\]"),
        ([{**CLAIMS[0], "claim": ""}], "claim="),
    ]
    for claims, message in bad:
        with pytest.raises(ValueError, match=message):
            ev.check_claims(claims)


def test_every_claims_file_of_the_course_loads():
    folder = project_root() / "notebooks" / "claims"
    files = sorted(folder.glob("lab*.yml"))
    assert files, "notebooks/claims/ holds no claims files"
    for path in files:
        claims = ev.load_claims(path.stem)
        assert claims == yaml.safe_load(path.read_text(encoding="utf-8"))
        name = path.stem.split("_", 1)[1]
        assert ev.load_claims(name) == claims  # the lab's short name finds the same file
    with pytest.raises(ValueError, match="lab='nope'"):
        ev.load_claims("nope")


def test_claims_show_the_values_of_the_parameters_they_name():
    plain = {c["id"]: c for c in ev.load_claims("lab01_depth")}
    shown = {c["id"]: c for c in ev.load_claims("lab01_depth", values={"same_tol": 0.1, "rise_tol": 0.05})}
    assert "same_tol" in plain["one_layer_top_widths_alike"]["claim"]
    assert "same_tol (0.1)" in shown["one_layer_top_widths_alike"]["claim"]
    assert shown["one_layer_top_widths_alike"]["effect"].startswith("same_tol (0.1) minus")
    assert "rise_tol (0.05)" in shown["no_overfitting"]["claim"] and "same_tol (" not in shown["no_overfitting"]["claim"]
    # a whole word only: "tol" is part of "same_tol", not a name of its own, so it names nothing
    with pytest.raises(ValueError, match=r"'tol', which no claim in lab01_depth.yml mentions"):
        ev.load_claims("lab01_depth", values={"tol": 1})
