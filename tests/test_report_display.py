"""How the book shows a table (`report.show_table`, and the `Table`s that seed_table,
final_table and claims_table return): rounded as displayed, "—" for missing values, no
unnamed index of row numbers, text escaped except link columns."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dlcourse import report
from dlcourse.analysis import evidence


def _cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, re.S)]


FRAME = pd.DataFrame({"label": ["a", "a", "b", "b"], "loss": [0.12345, 0.2, np.nan, np.nan],
                      "lr": [1e-5, 1e-5, 0.01, 0.01], "note": ["<b>", "x", "y", "z"]})


def test_show_table_rounds_as_displayed_and_shows_missing_as_a_dash():
    html = report.show_table(FRAME, digits=3, index=False).to_html()
    cells = _cells(html)
    assert "0.123" in cells and "0.12345" not in html and "1.0e-05" in cells and "0.010" in cells
    assert cells.count("—") == 2 and not re.search(r"\bnan\b", html, re.I)
    assert "&lt;b&gt;" in html and "<b>" not in html  # text is escaped
    assert 'class="dataframe"' in html  # styled like every other table of the book
    assert "0" not in cells[:6]  # no row numbers: the header, then the first row's values
    assert re.search(r"row_heading", report.show_table(FRAME, index=True).to_html())


def test_whole_numbers_from_ten_thousand_have_thousands_separators():
    """A parameter count reads 359,941 in a table as in the prose; a seed of 1000 or a batch of
    2048 keeps its digits together."""
    frame = pd.DataFrame({"net": ["a", "b"], "parameters": [359941, 39760], "batch": [2048, 64]})
    cells = _cells(report.show_table(frame, index=False).to_html())
    assert cells[3:] == ["a", "359,941", "2048", "b", "39,760", "64"]
    seeds = pd.DataFrame({"label": ["a", "a"], "seed": [0, 1], "params": [39760, 39760], "acc": [0.5, 0.6]})
    shown = _cells(report.seed_table(seeds, "label", ["params", "acc"])._repr_html_())
    assert "39,760" in shown and "39760" not in shown


def test_tables_of_the_package_display_through_show_table_and_stay_dataframes():
    table = report.seed_table(FRAME, "label", ["loss", "lr"], digits=2)
    assert isinstance(table, report.Table) and table.digits == 2
    html = table._repr_html_()
    assert ">label<" in html and not re.search(r"\bnan\b", html, re.I)  # the index is named and shown
    assert "—" in _cells(html) and "1.0e-05" in _cells(html)  # a tiny learning rate is not "0"
    assert report.seed_table(FRAME, "label", ["lr"]).loc["a", "lr"] == "1.0e-05"
    final = report.final_table(FRAME, ["loss", "lr", "note"], digits=3)
    assert final["lr"].tolist()[0] == 1e-5 and final["loss"].tolist()[0] == 0.123  # stored too
    shown = final.assign(extra=[1, 2, 3, 4])  # what a lab does to a table keeps its display
    assert isinstance(shown, report.Table) and shown.digits == 3
    cells = _cells(shown._repr_html_())
    assert cells[:5] == ["loss", "lr", "note", "extra", "0.123"]  # no index column of row numbers
    named = report.final_table(FRAME, ["loss"], index="label")._repr_html_()
    assert ">label<" in named


def test_claims_table_labels_its_index_and_links_its_citations():
    claims = [{"id": "wider", "cite": "R0 §3", "report_says": "said <x>", "claim": "a < b & c", "effect": "e",
               "runs": "r"}]
    table = evidence.claims_table(claims, {"wider": evidence.decide([float("nan"), 1.0])})
    html = table._repr_html_()
    assert '<a href="../reports.html#r0">R0 §3</a>' in html and "a &lt; b &amp; c" in html
    assert ">id<" in html and not re.search(r"\bnan\b", html, re.I)
    assert 'class="dataframe claims"' in html  # pages.css keeps its headers' words whole
    assert ">the report said<" in html  # what was said, beside what we test, with its citation
    assert '>said &lt;x&gt; (<a href="../reports.html#r0">R0 §3</a>)<' in html


def test_epochs_and_seconds_show_few_decimals_whatever_the_tables_digits():
    runs = pd.DataFrame({"label": ["a", "a", "b"], "best_epoch": [15, 16, 3], "seconds": [127.8345, 120.0, 9.87654],
                         "test_acc": [0.91234, 0.92345, 0.9], "epoch to 0.97": [19.0, 20.2, 3.0]})
    seeds = report.seed_table(runs, "label", ["best_epoch", "seconds", "test_acc", "epoch to 0.97"], digits=4)
    assert seeds.loc["a", "epoch to 0.97"] == "19.6 ± 0.8"
    assert seeds.loc["a", "best_epoch"] == "15.5 ± 0.7" and seeds.loc["a", "seconds"] == "123.9 ± 5.5"
    assert seeds.loc["a", "test_acc"] == "0.9179 ± 0.0079"  # other columns keep the table's digits
    assert seeds.loc["b", "test_acc"] == "0.9000"  # one seed: the mean, in the column's format
    cells = _cells(report.final_table(runs, ["seconds", "test_acc"], digits=4)._repr_html_())
    assert "127.8" in cells and "127.8345" not in cells and "0.9123" in cells


def test_a_measurement_column_has_one_format_and_a_setting_shows_alone():
    runs = pd.DataFrame({"label": ["a", "a", "b", "b"], "train_acc": [1.0, 1.0, 0.99, 0.97],
                         "best_epoch": [7, 7, 7, 7], "params": [10, 10, 20, 20]})
    seeds = report.seed_table(runs, "label", ["train_acc", "best_epoch", "params"], digits=4)
    # the seeds of "a" agree, those of "b" do not: both cells read mean ± std, not "1" beside "0.9800 ± 0.0141"
    assert seeds["train_acc"].tolist() == ["1.0000 ± 0.0000", "0.9800 ± 0.0141"]
    # columns that vary within no setting are properties of it
    assert seeds["best_epoch"].tolist() == ["7", "7"] and seeds["params"].tolist() == ["10", "20"]


def test_headers_and_ids_break_after_underscores_and_stay_escaped():
    frame = pd.DataFrame({"test_acc": [0.9]}, index=pd.Index(["xavier_beats_random"], name="id"))
    styled = report.show_table(frame).to_html()
    assert "xavier_<wbr>beats_<wbr>random" in styled and "test_<wbr>acc" in styled
    assert "a &lt;b&gt;_<wbr>c" in report.show_table(frame.rename(index={"xavier_beats_random": "a <b>_c"})).to_html()


def test_count_says_a_number_with_its_noun():
    assert report.count(1, "epoch") == "1 epoch"
    assert report.count(0, "step") == "0 steps"
    assert report.count(12500, "step") == "12,500 steps"
    for bad in (1.5, -1, True):
        with pytest.raises(ValueError, match="is not valid"):
            report.count(bad, "epoch")


def test_in_words_lists_items_as_prose():
    assert report.in_words(["sgd"]) == "sgd"
    assert report.in_words(["adam", "nadam"]) == "adam and nadam"
    assert report.in_words(["sgd", "momentum", 0.5]) == "sgd, momentum and 0.5"
    with pytest.raises(ValueError, match="items="):
        report.in_words([])
