"""The lab runner: discovery, parameter resolution, papermill execution, stamps, bad input.

Most tests use a tiny fixture course written here (two labs that need neither torch nor
data); one runs a real lab with bad values, when the labs exist.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import serve
from dlcourse import book, cli, execution, labs

REPO = Path(__file__).resolve().parents[1]

CHECK_LINE = "from dlcourse.labs import check_parameters; check_parameters()"
VALIDATE = CHECK_LINE + '''
if not (isinstance(widths, list) and all(isinstance(w, int) and w > 0 for w in widths)):
    raise ValueError(f"widths={widths!r} is not valid; give positive ints, e.g. [4, 8]")
if not lr > 0:
    raise ValueError(f"lr={lr!r} is not valid; must be > 0")
'''

FIGURES = '''\
import matplotlib
matplotlib.use("agg")
import matplotlib.pyplot as plt
%matplotlib inline
for w in widths:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(range(size), [w * i for i in range(size)])
    ax.set_title(f"width {w}")
    plt.show()
'''


OBJECTIVES = "## You will learn\n\n- how a line's slope grows with its width\n- how to read a figure\n- how to change a parameter"
TAKEAWAYS = "## Key takeaways\n\n- Wider lines are steeper.\n- Parameters change what a lab shows."


def exercise(number: int, i: int) -> list:
    """An exercise (with a folded hint) and its solution, the course's way (notebooks/README.md)."""
    label = f"lab{number:02d}-ex{i}"
    task = new_markdown_cell(
        f"::::{{exercise}} Exercise {i} of the fixture\n:label: {label}\n\nSet `size` to {i + 4}: predict first, "
        f"then run it.\n\n:::{{admonition}} Hint\n:class: dropdown\n\nLook at the last point.\n:::\n::::")
    solution = new_markdown_cell(f":::{{solution}} {label}\n:class: dropdown\n\nThe line gets longer by {i} point.\n:::")
    solution.metadata["tags"] = ["solution"]
    cells = [task, solution]
    if i == 1:  # a code solution, hidden in the book, defining nothing later cells use
        code = new_code_cell("print('solution', sum(widths))")
        code.metadata["tags"] = ["solution", "hide-cell"]
        cells.append(code)
    return cells


def lab_notebook(number: int, title: str, material: bool = False) -> nbformat.NotebookNode:
    """A lab in the course's shape: title, parameters cell, validation cell, two figures, a late check.

    `material`: also the course material of a lab page (objectives, three exercises with their
    solutions, takeaways), as the book's browser test and the editions expect them.
    """
    params = new_code_cell('size = 3\nwidths = [4, 8]\nlr = 0.1\nfail_late = False\npause = 0.0\nprofile = "laptop"')
    params.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell(f"# Lab {number}: {title}\n\nA fixture lab: it draws one line per width."),
        params,
        new_code_cell(VALIDATE),
        new_markdown_cell("## Figures\n\nSee {doc}`../setup` for how to run it."),
        new_code_cell(FIGURES),
        new_code_cell('import os\nimport time\nprint("cwd", os.getcwd())\ntime.sleep(pause)\nif fail_late:\n'
                      '    raise RuntimeError("late failure")'),
    ]
    if material:
        cells.insert(1, new_markdown_cell(OBJECTIVES))
        cells += [cell for i in (1, 2, 3) for cell in exercise(number, i)] + [new_markdown_cell(TAKEAWAYS)]
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def make_course(root: Path, names=("fixture", "other"), with_book: bool = True, material: bool = False) -> Path:
    """A course checkout with the fixture labs, a smoke profile and (optionally) the book's pages.

    `material`: the labs carry objectives, exercises, solutions and takeaways (`lab_notebook`).
    """
    (root / "notebooks" / "profiles").mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(names, 1):
        nbformat.write(lab_notebook(number, name.title(), material),
                       root / "notebooks" / f"lab{number:02d}_{name}.ipynb")
    (root / "notebooks" / "profiles" / "smoke.yml").write_text(
        "profile: smoke\nsize: 4\nfixture:\n  lr: 0.5\nother: {}\n")
    if with_book:
        shutil.copy(REPO / "_config.yml", root)
        (root / "book").mkdir(exist_ok=True)
        for page in ("intro.md", "setup.md", "reports.md"):
            shutil.copy(REPO / "book" / page, root / "book")
        shutil.copytree(REPO / "book" / "_static", root / "book" / "_static")
    return root


@pytest.fixture
def course(tmp_path) -> Path:
    return make_course(tmp_path / "course")


def out_files(root: Path) -> list[str]:
    folder = root / "book" / "labs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ----------------------------------------------------------------------------- discovery, parameters

def test_discover_and_select(course):
    found = labs.discover(course)
    assert [(lab.number, lab.name) for lab in found] == [(1, "fixture"), (2, "other")]
    assert labs.select(["fix"], found) == [found[0]]
    assert labs.select(["lab02_other", "1"], found) == [found[1], found[0]]
    assert labs.select([], found) == found
    with pytest.raises(ValueError, match="matches no lab"):
        labs.select(["depth"], found)
    with pytest.raises(ValueError, match="matches several labs"):
        labs.select(["lab0"], found)


def test_parameters_resolve_profile_then_section_then_files_then_overrides(course, tmp_path):
    lab = labs.discover(course)[0]
    assert labs.resolve_parameters(lab, "smoke", root=course) == {"profile": "smoke", "size": 4, "lr": 0.5}
    first = tmp_path / "a.yml"
    first.write_text("size: 5\nlr: 1e-3\nwidths: [1, 2]\nfixture:\n  size: 6\nother:\n  size: 99\n")
    second = tmp_path / "b.yml"
    second.write_text("size: 7\n")
    params = labs.resolve_parameters(lab, "smoke", [first, second], ["lr=2e-2", "fail_late=true"], root=course)
    assert params == {"profile": "smoke", "size": 7, "lr": 0.02, "widths": [1, 2], "fail_late": True}
    other = labs.discover(course)[1]
    assert labs.resolve_parameters(other, "smoke", [first], root=course)["size"] == 99
    with pytest.raises(ValueError, match="profile='nope' not found.*smoke"):
        labs.resolve_parameters(lab, "nope", root=course)


@pytest.mark.parametrize("text, value", [
    ("epochs=3", 3), ("lr=0.1", 0.1), ("lr=1e-3", 1e-3), ("lr=-1", -1), ("progress=false", False),
    ("optimizer=adam", "adam"), ("seed=null", None), ("widths=[100, 100]", "[100, 100]"), ("name=", ""),
])
def test_overrides_are_yaml_scalars_and_lists_stay_strings(text, value):
    key, parsed = labs.parse_override(text)
    assert key == text.split("=")[0] and parsed == value and type(parsed) is type(value)


def test_bad_override_syntax():
    with pytest.raises(ValueError, match="key=value"):
        labs.parse_override("epochs")


# ----------------------------------------------------------------------------- execution

def test_run_writes_atomically_and_stamps(course, capsys):
    code, out = run_cli(capsys, "labs", "run", "fix", "--root", str(course), "--profile", "smoke", "-q")
    assert code == 0, out
    assert out_files(course) == ["lab01_fixture.ipynb"]  # no temporary left beside it
    target = course / "book" / "labs" / "lab01_fixture.ipynb"
    assert oct(target.stat().st_mode & 0o644) == oct(0o644)
    nb = nbformat.read(target, as_version=4)
    made = nb.metadata["dlcourse"]
    assert made["profile"] == "smoke" and made["parameters"] == {"profile": "smoke", "size": 4, "lr": 0.5}
    # Both parameter cells (the lab's own and papermill's injected one) are collapsed in the book.
    tagged = {t: c for c in nb.cells for t in c.metadata.get("tags", []) if t in execution.HIDDEN_TAGS}
    assert set(tagged) == {"parameters", "injected-parameters"}
    assert all("hide-input" in c.metadata["tags"] for c in tagged.values())
    # The notebook ran with the course root as working directory.
    assert f"cwd {course.resolve()}" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    # Two figures were drawn as PNG outputs.
    assert sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs) == 2

    # The stamp says "fresh" for the same lab, parameters and code, and "stale" for any change.
    lab = labs.discover(course)[0]
    params = labs.resolve_parameters(lab, "smoke", root=course)
    out_dir = course / "book" / "labs"
    assert not execution.is_stale(lab, params, out_dir)
    assert [lab.stem for lab, _ in book.stale_labs(course, "smoke")] == ["lab02_other"]
    assert execution.is_stale(lab, {**params, "size": 5}, out_dir)
    assert execution.is_stale(lab, params, out_dir, fingerprint="other code")
    code, out = run_cli(capsys, "labs", "list", "--root", str(course))
    assert "executed (smoke profile)" in out and "not executed" in out
    nb_src = nbformat.read(lab.path, as_version=4)
    nb_src.cells[4].source += "\nprint('changed')"
    nbformat.write(nb_src, lab.path)
    assert execution.is_stale(lab, params, out_dir)


def test_bad_parameter_fails_in_validation_cell_and_leaves_nothing(course, capsys):
    code, out = run_cli(capsys, "labs", "run", "fixture", "--root", str(course), "--profile", "smoke",
                        "-q", "-p", "lr=-1")
    assert code != 0
    assert "ValueError: lr=-1 is not valid; must be > 0" in out
    # the cell, and the line of it that raised (not its first line)
    assert "lab01_fixture failed in cell 3, line 5 " in out, out
    assert 'raise ValueError(f"lr={lr!r} is not valid; must be > 0")' in out
    assert out_files(course) == []


def test_string_where_a_list_belongs_fails_naming_the_parameter(course):
    lab = labs.discover(course)[0]
    params = labs.resolve_parameters(lab, "smoke", overrides=["widths=[4, 8]"], root=course)
    with pytest.raises(execution.LabError) as info:
        execution.execute(lab, params, course / "book" / "labs", root=course)
    err = info.value
    assert (err.ename, err.cell_index) == ("ValueError", 3)  # the cell right after the injected parameters
    assert "widths='[4, 8]' is not valid" in err.evalue
    assert out_files(course) == []


def test_late_failure_keeps_the_older_copy_marked_stale_and_no_temporary(course):
    lab = labs.discover(course)[0]
    out_dir = course / "book" / "labs"
    execution.execute(lab, {"size": 2}, out_dir, root=course)
    assert out_files(course) == ["lab01_fixture.ipynb"]
    good = nbformat.read(out_dir / "lab01_fixture.ipynb", as_version=4)
    with pytest.raises(execution.LabError, match=r"cell 6, line 6 .*RuntimeError: late failure") as err:
        execution.execute(lab, {"fail_late": True}, out_dir, root=course)
    assert "was kept, marked stale" in str(err.value)
    assert out_files(course) == ["lab01_fixture.ipynb"]
    kept = nbformat.read(out_dir / "lab01_fixture.ipynb", as_version=4)
    assert [c.get("outputs") for c in kept.cells] == [c.get("outputs") for c in good.cells]
    assert kept.metadata["dlcourse"]["stale"].startswith("the last run failed: lab01_fixture failed in cell 6")
    assert execution.is_stale(lab, {"size": 2}, out_dir)


def test_toc_lists_the_labs_found(course):
    found = labs.discover(course)
    assert book.write_toc(course, found) is True
    text = (course / "_toc.yml").read_text()
    assert "root: book/intro" in text and "- file: book/setup" in text
    assert text.index("book/labs/lab01_fixture") < text.index("book/labs/lab02_other")
    assert book.write_toc(course, found) is False  # unchanged: not rewritten


def test_committed_toc_matches_the_labs_in_the_repo():
    """`dlcourse book` rewrites _toc.yml from notebooks/; the committed one should already agree."""
    assert (REPO / "_toc.yml").read_text() == book.toc_text(labs.discover(REPO))


def test_kernel_runs_this_python():
    from jupyter_client.kernelspec import KernelSpecManager

    argv0 = KernelSpecManager().get_kernel_spec(execution.kernel_name()).argv[0]
    assert argv0 in ("python", "python3") or os.path.abspath(argv0) == os.path.abspath(sys.executable)


# ----------------------------------------------------------------------------- a real lab, bad values

def _real_lab_with(kind: str):
    """The first lab in notebooks/ with a list parameter (kind "list") or an `lr` (kind "lr"): (lab, bad -p)."""
    import papermill

    for lab in labs.discover(REPO):
        for name, info in papermill.inspect_notebook(str(lab.path)).items():
            if kind == "list" and info["default"].lstrip().startswith("["):
                return lab, name, f"{name}=not-a-list"
            if kind == "lr" and name == "lr":
                return lab, name, "lr=-1"
    return None, None, None


@pytest.mark.parametrize("kind", ["list", "lr"])
def test_real_lab_rejects_bad_values_in_the_validation_cell(kind, tmp_path, capsys):
    lab, name, override = _real_lab_with(kind)
    if lab is None:
        pytest.skip(f"no lab notebook in notebooks/ with a parameter of kind {kind!r} yet")
    out = tmp_path / "out"
    code, text = run_cli(capsys, "labs", "run", lab.name, "--root", str(REPO), "--profile", "smoke", "-q",
                         "--out", str(out), "--timeout", "300", "-p", override)
    assert code != 0, text
    assert "ValueError" in text and f"{name}=" in text, text
    assert not out.exists() or not list(out.iterdir())
    nb = nbformat.read(lab.path, as_version=4)
    params_index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert f"failed in cell {params_index + 2}, line " in text, text  # right after the injected parameters


# ----------------------------------------------------------------------------- safe re-runs

@pytest.mark.parametrize("where", ["default", "out"])
def test_failed_run_keeps_the_previous_notebook_marked_stale(where, course, tmp_path, capsys):
    out = ["--out", str(tmp_path / "mine")] if where == "out" else []
    out_dir = tmp_path / "mine" if where == "out" else course / "book" / "labs"
    target = out_dir / "lab01_fixture.ipynb"
    argv = ["labs", "run", "fixture", "--root", str(course), "--profile", "smoke", "-q", *out]
    assert run_cli(capsys, *argv)[0] == 0
    good = target.read_bytes()
    code, text = run_cli(capsys, *argv, "-p", "lr=-1")
    assert code != 0 and "lr=-1 is not valid" in text
    assert f"The previous executed notebook {target} was kept, marked stale" in text, text
    assert sorted(p.name for p in out_dir.iterdir()) == ["lab01_fixture.ipynb"]  # no temporary either
    kept = nbformat.read(target, as_version=4)
    assert kept.cells == nbformat.reads(good.decode(), as_version=4).cells  # the good run's cells and outputs
    assert kept.metadata["dlcourse"]["stale"].startswith("the last run failed")
    code, text = run_cli(capsys, "labs", "list", "--root", str(course), *out[:2])
    assert "fixture" in text and "STALE (the last run failed" in text, text
    lab = labs.discover(course)[0]
    assert execution.is_stale(lab, labs.resolve_parameters(lab, "smoke", root=course), out_dir)
    if where == "default":  # the next book build executes it again
        assert [lab.stem for lab, _ in book.stale_labs(course, "smoke")] == ["lab01_fixture", "lab02_other"]
    assert run_cli(capsys, *argv)[0] == 0  # a good run makes it current again
    assert not execution.is_stale(lab, labs.resolve_parameters(lab, "smoke", root=course), out_dir)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_keeps_the_notebook_and_no_temporary_survives(signum, course):
    out_dir = course / "book" / "labs"
    lab = labs.discover(course)[0]
    execution.execute(lab, {"size": 2}, out_dir, root=course)
    proc = subprocess.Popen([sys.executable, "-m", "dlcourse.cli", "labs", "run", "fixture", "--root", str(course),
                             "--profile", "smoke", "-q", "-p", "pause=120"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    pattern = f".lab01_fixture.{proc.pid}.*.tmp.ipynb"
    try:
        deadline = time.monotonic() + 120
        while not list(out_dir.glob(pattern)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        assert list(out_dir.glob(pattern)), "the run never wrote its temporary notebook"
        time.sleep(1)  # inside the sleeping cell
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signum)  # SIGKILL: no handler runs; the kernel exits when its parent is gone
        stderr = proc.communicate(timeout=60)[1]
    target = out_dir / "lab01_fixture.ipynb"
    reason = nbformat.read(target, as_version=4).metadata["dlcourse"]["stale"]
    if signum == signal.SIGKILL:
        assert f"(pid {proc.pid}) did not finish" in reason and len(list(out_dir.glob(pattern))) == 1
        other = labs.discover(course)[1]
        execution.execute(other, {}, out_dir, root=course)  # any later run in that folder cleans up
        assert out_files(course) == ["lab01_fixture.ipynb", "lab02_other.ipynb"]
    else:  # SIGTERM: the run cleans up after itself and says what it kept
        assert proc.returncode == 128 + signal.SIGTERM
        assert reason == "the run was interrupted (SystemExit)" and out_files(course) == ["lab01_fixture.ipynb"]
        assert f"the previous executed notebook {target} was kept, marked stale" in stderr, stderr
    assert execution.is_stale(lab, {"size": 2}, out_dir)


def test_timed_out_run_keeps_the_previous_notebook(course):
    out_dir = course / "book" / "labs"
    lab = labs.discover(course)[0]
    execution.execute(lab, {"size": 2}, out_dir, root=course)
    with pytest.raises(execution.LabError, match="(?s)failed: CellTimeoutError.*was kept, marked stale"):
        execution.execute(lab, {"pause": 60.0}, out_dir, root=course, timeout=2)
    assert out_files(course) == ["lab01_fixture.ipynb"]
    assert execution.is_stale(lab, {"size": 2}, out_dir)


# ----------------------------------------------------------------------------- strict parameters

def test_misspelled_parameter_is_refused_before_anything_runs(course, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(execution, "kernel_name", lambda: pytest.fail("a kernel was started"))
    code, text = run_cli(capsys, "labs", "run", "fixture", "--root", str(course), "--profile", "smoke", "-q",
                         "-p", "sizes=3")
    assert code == 2 and "sizes=3 is not a parameter of lab01_fixture; did you mean size?" in text, text
    code, text = run_cli(capsys, "labs", "run", "fixture", "--root", str(course), "--profile", "smoke",
                         "-p", "qwerty=1")
    assert code == 2 and "qwerty=1 is not a parameter of lab01_fixture; its parameters are: size, widths" in text
    typo = tmp_path / "typo.yml"
    typo.write_text("other:\n  sise: 3\n")  # in the second lab: the first must not run either
    code, text = run_cli(capsys, "labs", "run", "--root", str(course), "--profile", "smoke", "-f", str(typo))
    assert code == 2 and "sise=3 is not a parameter of lab02_other; did you mean size?" in text, text
    with pytest.raises(ValueError, match="sise=3 is not a parameter of lab02_other"):
        book.run_labs(course, str(typo))  # `dlcourse book` checks every stale lab before executing any
    assert out_files(course) == []


def papermill_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "papermill", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_misspelled_parameter_is_refused_by_plain_papermill(course, tmp_path):
    lab = labs.discover(course)[0]
    proc = papermill_cli(str(lab.path), str(tmp_path / "out.ipynb"), "-p", "lrr", "0.5", "-p", "size", "2")
    assert proc.returncode != 0
    assert "ValueError: lrr=0.5 is not a parameter of this lab; did you mean lr?" in proc.stderr, proc.stderr[-3000:]
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.outputs)]
    assert len(failed) == 1 and failed[0].source.startswith(CHECK_LINE)  # the validation cell, before any work
    ok = papermill_cli(str(lab.path), str(tmp_path / "ok.ipynb"), "-p", "lr", "0.5", "-p", "size", "2")
    assert ok.returncode == 0, ok.stderr[-3000:]


def test_every_lab_checks_its_parameters_first():
    """The line the other notebook edits must keep: first in the cell right after `parameters`."""
    for lab in labs.discover(REPO):
        nb = nbformat.read(lab.path, as_version=4)
        i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        validation = next(c for c in nb.cells[i + 1:] if c.cell_type == "code")
        assert validation.source.startswith(CHECK_LINE), lab.stem
        assert labs.declared_parameters(lab) == list(papermill_names(lab))


def papermill_names(lab) -> list[str]:
    import papermill

    return list(papermill.inspect_notebook(str(lab.path)))


def test_a_real_lab_refuses_a_misspelled_parameter_through_plain_papermill(tmp_path):
    lab = next(iter(labs.discover(REPO)), None)
    if lab is None:
        pytest.skip("no lab notebooks yet")
    name = labs.declared_parameters(lab)[-1]
    proc = papermill_cli(str(lab.path), str(tmp_path / "out.ipynb"), "-p", name + "s", "1")
    assert proc.returncode != 0
    assert f"{name}s=1 is not a parameter of this lab; did you mean {name}" in proc.stderr, proc.stderr[-3000:]


# ----------------------------------------------------------------------------- plain papermill, exactly

def test_labs_params_with_plain_papermill_equals_labs_run(course, tmp_path, capsys):
    extra = tmp_path / "extra.yml"
    extra.write_text("widths: [2, 3]\nfixture:\n  lr: 1e-3\nother:\n  size: 99\n")
    options = ["--root", str(course), "--profile", "smoke", "-f", str(extra), "-p", "size=2"]
    code, yml = run_cli(capsys, "labs", "params", "fixture", *options)
    assert code == 0, yml
    (tmp_path / "params.yml").write_text(yml)
    lab = labs.discover(course)[0]
    proc = papermill_cli(str(lab.path), str(tmp_path / "plain.ipynb"), "-f", str(tmp_path / "params.yml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_cli(capsys, "labs", "run", "fixture", "-q", *options, "--out", str(tmp_path / "run"))[0] == 0
    plain = nbformat.read(tmp_path / "plain.ipynb", as_version=4).metadata.papermill.parameters
    ours = nbformat.read(tmp_path / "run" / "lab01_fixture.ipynb", as_version=4).metadata.papermill.parameters
    assert plain == ours == {"profile": "smoke", "size": 2, "lr": 0.001, "widths": [2, 3]}
    assert type(plain["lr"]) is float


# ----------------------------------------------------------------------------- a fresh machine

def test_fresh_machine_runs_a_lab_through_a_local_mirror(real_root, tmp_path, monkeypatch, capsys):
    """An empty data root, DLCOURSE_MIRROR on 127.0.0.1: the lab downloads, checks and uses the data."""
    lab = next((lab for lab in labs.discover(REPO) if lab.name == "depth"), None)
    if lab is None:
        pytest.skip("lab depth not found")
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("DLCOURSE_DATA", str(empty))
    with serve(real_root) as url:
        monkeypatch.setenv("DLCOURSE_MIRROR", url)
        code, text = run_cli(capsys, "labs", "run", "depth", "--root", str(REPO), "--profile", "smoke", "-q",
                             "--out", str(tmp_path / "out"), "--timeout", "300")
    assert code == 0, text
    assert (tmp_path / "out" / "lab01_depth.ipynb").exists()
    raw = empty / "MNIST" / "raw"
    for f in (real_root / "MNIST" / "raw").iterdir():  # the mirror's files, unpacked, byte for byte
        assert (raw / f.name).read_bytes() == f.read_bytes(), f.name
    assert sorted(p.name for p in empty.iterdir()) == ["MNIST"]  # only what the lab needs; no temporaries
