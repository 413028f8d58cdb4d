"""`--plan`: the labs executed with stand-in runs tell what a build would train, and train nothing real.

The lab tests run lab 1 and lab 3 (whose specs do not depend on results) at the smoke profile
with an empty cache: planned, executed for real, planned again. No timing is asserted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import REPO, real_data_root
from dlcourse import cli, execution, labs, plan_mode, planning, runs, settings
from dlcourse.runs import plan as run_plan

LABS = ("lab01_depth", "lab03_batchnorm")


def tree(path: Path) -> dict:
    """Every file under `path` with its size and modification time (what 'nothing written' compares)."""
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()} if path.exists() else {}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(plans before, executed notebooks, plans after, cache, book/labs before and after the first plan)."""
    data = real_data_root()
    if data is None:
        pytest.skip("real data not found: set DLCOURSE_DATA")
    cache = tmp_path_factory.mktemp("plan-cache") / "cache"
    out = tmp_path_factory.mktemp("plan-out")
    found = {lab.stem: lab for lab in labs.discover(REPO)}
    todo = [(found[name], labs.resolve_parameters(found[name], "smoke", root=REPO)) for name in LABS]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCOURSE_CACHE", str(cache))
        mp.setenv("DLCOURSE_DATA", str(data))
        mp.setenv("DLCOURSE_THREADS", "1")
        book_labs = tree(REPO / "book" / "labs")
        before = planning.plan(todo, root=REPO, timeout=600)
        book_labs_after, cache_after = tree(REPO / "book" / "labs"), tree(cache)
        executed = [execution.execute(lab, params, out, root=REPO, timeout=600) for lab, params in todo]
        after = planning.plan(todo, root=REPO, timeout=600)
    return {"before": before, "executed": executed, "after": after, "cache": cache_after,
            "book_labs": (book_labs, book_labs_after)}


def test_the_plan_names_the_runs_the_execution_uses(smoke):
    for plan, notebook in zip(smoke["before"], smoke["executed"]):
        assert plan["keys"] == execution.made(notebook)["runs"], plan["lab"]
        assert plan["runs"] == len(plan["keys"]) and plan["cached"] == 0
        assert plan["training"] > 0 and plan["other"] > 0
        assert plan["model-epochs"] == sum(r["epochs"] for r in {x["key"]: x for x in plan["records"]
                                                                   if "key" in x}.values())


def test_the_plan_writes_nothing_real(smoke):
    assert smoke["cache"] == {}  # not even the cache folder
    assert smoke["book_labs"][0] == smoke["book_labs"][1]
    assert plan_mode.PLAN not in os.environ and settings.RUN_LOG not in os.environ


def test_after_the_build_everything_is_cached(smoke):
    for before, after in zip(smoke["before"], smoke["after"]):
        assert after["keys"] == before["keys"]
        assert after["cached"] == after["runs"] == before["runs"]
        assert (after["training"], after["stacks"], after["alone"], after["batches"]) == (0, 0, 0, [])


def test_the_stacks_are_what_batches_makes_of_the_specs(smoke):
    for plan in smoke["before"]:
        calls: dict[str, dict] = {}
        for r in plan["records"]:
            if "key" in r and not r["cached"] and not r.get("again"):  # again: trained by an earlier call
                calls.setdefault(r["call"], {})[r["key"]] = runs.RunSpec.from_dict(r["spec"])
        expected = [batch for todo in calls.values() for batch in runs.batches(todo)]
        assert sorted(map(sorted, plan["batches"])) == sorted(map(sorted, expected))
        assert plan["stacks"] == sum(len(b) > 1 for b in expected) > 0
        sizes = {r["key"]: r["stack_size"] for r in plan["records"] if "key" in r}
        assert all(sizes[k] == len(b) for b in plan["batches"] for k in b)


def test_stand_ins_carry_the_real_spec_and_its_epochs(toy_root, tmp_path, monkeypatch):
    """A stand-in: the real spec and key, one history row per real epoch, a model of the real
    shape; the real cache untouched, and `run` answers through the same hook."""
    log = tmp_path / "plan.jsonl"
    monkeypatch.setenv(plan_mode.PLAN, str(log))
    base = dict(dataset="mnist", train_size=400, val_size=100, hidden=[16], epochs=3, batch_size=32)
    specs = [dict(base, seed=s) for s in range(3)] + [dict(base, hidden=[8, 8], snapshot_every=5)]
    df = runs.sweep(specs, root=toy_root, progress=False)
    assert list(df["key"]) == [runs.RunSpec.from_dict(s).key for s in specs]
    for result, spec in zip(df["result"], specs):
        assert result.spec == runs.RunSpec.from_dict(spec) and not result.cached
        assert list(result.history["epoch"]) == [1, 2, 3] and "val_loss" in result.history
        assert result.model()[1].in_features == 784
    assert df.attrs["stacks"] == [list(df["key"][:3])]
    snapshots = df["result"][3].snapshots  # about as many as the real run's (13 steps x 3 epochs) / 5
    assert 1 < len(snapshots) <= 1 + (13 * 3) // 5
    again = runs.run(specs[3], root=toy_root)
    assert again.key == df["key"][3] and again.history.equals(df["result"][3].history)
    assert tree(Path(os.environ["DLCOURSE_CACHE"])) == {}  # the real cache is read, never written
    records = [json.loads(line) for line in log.read_text().splitlines()]
    lines = [r for r in records if "key" in r]
    assert [r["stack_size"] for r in lines] == [3, 3, 3, 1, 1]
    assert all(r["estimate_s"] > 0 and r["train_size"] == 400 for r in lines)


def test_a_sampled_analysis_counts_at_its_estimate_for_all_samples():
    records = [{"call": "1:1", "standin_s": 1.0},
               {"analysis": "input_sensitivity", "measured_s": 2.0, "estimate_s": 10.0}]
    plan = planning.summarize("lab", records, wall=5.0)
    assert plan["other"] == 5.0 - 1.0 - 2.0 + 10.0 and plan["total"] == plan["other"] and plan["runs"] == 0


def test_plan_with_pdf_or_ray_is_refused_and_the_environment_is_restored(capsys, monkeypatch):
    monkeypatch.setenv("DLCOURSE_BACKEND", "local")
    monkeypatch.delenv("DLCOURSE_THREADS", raising=False)
    assert cli.main(["book", "--plan", "--pdf", "--root", str(REPO)]) == 2
    assert "pdf=True is not valid with plan=True" in capsys.readouterr().err
    assert cli.main(["labs", "run", "depth", "--plan", "--backend", "ray", "--threads", "1", "--root", str(REPO)]) == 2
    assert "backend='ray' is not valid with plan=True" in capsys.readouterr().err
    # --backend and --threads reached the kernels' environment only for the command's duration
    assert os.environ["DLCOURSE_BACKEND"] == "local" and "DLCOURSE_THREADS" not in os.environ


def test_book_plan_plans_what_the_build_would_execute(tmp_path, capsys):
    """`book --plan` on a course of fixture labs (no runs): the stale labs, in a table, and nothing
    written; a lab already current is named and left out; a failing lab is a FAILED row and exit 2."""
    from test_labs import make_course, out_files, run_cli

    course = make_course(tmp_path / "course", with_book=False)
    code, out = run_cli(capsys, "book", "--plan", "--root", str(course), "--profile", "smoke")
    assert code == 0, out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith(("lab0", "total"))] == [
        ["lab01_fixture", "0", "0"], ["lab02_other", "0", "0"], ["total", "0", "0"]]
    assert "training (m:s)" in out and "the plan took" in out and out_files(course) == []
    assert run_cli(capsys, "labs", "run", "fixture", "--root", str(course), "--profile", "smoke", "-q")[0] == 0
    code, out = run_cli(capsys, "book", "--plan", "--root", str(course), "--profile", "smoke")
    assert "current in book/labs (not planned; --force plans them too): lab01_fixture" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("lab0")] == ["lab02_other"]
    code, out = run_cli(capsys, "labs", "run", "other", "--plan", "--root", str(course), "--profile", "smoke",
                        "-p", "fail_late=true")
    assert code == 2 and "lab02_other  FAILED" in out and "late failure" in out
