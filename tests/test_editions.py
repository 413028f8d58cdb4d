"""The student and instructor editions (`dlcourse notebooks`) and the box the book adds to each lab.

On the fixture labs of test_labs.py carrying the course material (objectives, three exercises
with their solutions, one of them code, takeaways); tests/test_book.py runs the student edition
of the real labs at smoke.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse import book, editions, execution, labs
from test_labs import make_course, run_cli


@pytest.fixture
def course(tmp_path) -> Path:
    return make_course(tmp_path / "course", material=True, with_book=False)


def _tags(nb) -> list[list[str]]:
    return [c.metadata.get("tags", []) for c in nb.cells]


def _executed_like_a_lab(lab: labs.Lab) -> None:
    """Give the source what an executed copy has (an injected cell, outputs, papermill's metadata),
    so that the editions are seen to remove it all."""
    nb = nbformat.read(lab.path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(f"{labs.INJECTED_HEADER}\nsize = 9")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(i + 1, injected)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
            cell.execution_count = 7
    nb.metadata["papermill"] = {"parameters": {"size": 9}}
    nbformat.write(nb, lab.path)


def test_student_edition_keeps_exercises_and_drops_solutions_outputs_and_injected_cell(course):
    lab = labs.discover(course)[0]
    _executed_like_a_lab(lab)
    source = nbformat.read(lab.path, as_version=4)
    student, instructor = editions.edition(lab, "student"), editions.edition(lab, "instructor")
    solutions = [c for c in source.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) == 4  # the fixture: three markdown solutions and one code solution
    assert not any("solution" in t or "injected-parameters" in t for t in _tags(student))
    assert len(student.cells) == len(source.cells) - len(solutions) - 1
    assert sum("{exercise}" in c.source for c in student.cells) == 3  # the exercises stay, hints too
    assert sum("solution" in t for t in _tags(instructor)) == 4
    assert not any("injected-parameters" in t for t in _tags(instructor))
    for nb in (student, instructor):
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code)
        assert "papermill" not in nb.metadata and "dlcourse" not in nb.metadata
        nbformat.validate(nb)
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert params.source == next(c for c in source.cells if "parameters" in c.metadata.get("tags", [])).source
    with pytest.raises(ValueError, match="kind='teacher' is not valid"):
        editions.edition(lab, "teacher")


def test_a_profile_goes_into_the_parameters_cell_not_an_injected_one(course):
    source = 'profile = "laptop"\nsize = 3   # points\nwidths = [\n    4,\n    8,\n]  # two lines\nlr = 0.1\nname = "é"\n'
    out = editions.set_parameters(source, {"profile": "smoke", "size": 3, "widths": [2], "lr": 0.5, "name": "ü"})
    assert out == 'profile = "smoke"\nsize = 3   # points\nwidths = [2]  # two lines\nlr = 0.5\nname = "ü"\n'
    assert editions.set_parameters(source, {"size": 3.0}) == source.replace("size = 3 ", "size = 3.0 ")
    lab = labs.discover(course)[0]
    params = labs.resolve_parameters(lab, "smoke", root=course)
    nb = editions.edition(lab, "student", params)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert labs.assigned_names(cell.source) == {"size": "4", "widths": "[4, 8]", "lr": "0.5", "fail_late": "False",
                                                "pause": "0.0", "profile": '"smoke"'}
    with pytest.raises(ValueError, match="sizes=4 is not a parameter of lab01_fixture; did you mean size"):
        editions.edition(lab, "student", {"sizes": 4})


def test_cli_writes_both_editions_and_leaves_unchanged_files_alone(course, tmp_path, capsys):
    student, teacher = tmp_path / "student", tmp_path / "instructor"
    argv = ["notebooks", "--root", str(course), "--student", str(student), "--instructor", str(teacher)]
    code, out = run_cli(capsys, *argv)
    assert code == 0, out
    assert "student edition: 2 notebooks" in out and "instructor edition: 2 notebooks" in out
    names = ["lab01_fixture.ipynb", "lab02_other.ipynb"]
    assert sorted(p.name for p in student.iterdir()) == sorted(p.name for p in teacher.iterdir()) == names
    stamps = [p.stat().st_mtime_ns for p in student.iterdir()]
    assert run_cli(capsys, *argv)[0] == 0
    assert [p.stat().st_mtime_ns for p in student.iterdir()] == stamps  # nothing rewritten
    code, out = run_cli(capsys, "notebooks", "other", "--root", str(course), "--student", str(tmp_path / "one"),
                        "--profile", "smoke", "-p", "size=2")
    assert code == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["lab02_other.ipynb"]
    code, out = run_cli(capsys, "notebooks", "--root", str(course))
    assert code == 2 and "give --student OUT, --instructor OUT or both" in out


def test_student_edition_runs_under_nbval(course, tmp_path):
    """What the student gets runs top to bottom in a plain kernel, no papermill involved."""
    found = labs.discover(course)
    out = tmp_path / "student"
    paths = editions.write(found, "student", out,
                           {lab.stem: labs.resolve_parameters(lab, "smoke", root=course) for lab in found})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(out),
                           "--nbval-lax", "--nbval-current-env", *map(str, paths)],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    cells = sum(c.cell_type == "code" for p in paths for c in nbformat.read(p, as_version=4).cells)
    assert f"{cells} passed" in proc.stdout, proc.stdout[-2000:]  # nbval: one test per code cell


def test_the_box_goes_after_the_objectives_once_and_keeps_the_stamp(course):
    lab = labs.discover(course)[0]
    out_dir = course / "book" / "labs"
    params = labs.resolve_parameters(lab, "smoke", root=course)
    target = execution.execute(lab, params, out_dir, root=course)
    assert book.add_how_to_run(target, lab) is True
    before = target.read_bytes()
    assert book.add_how_to_run(target, lab) is False and target.read_bytes() == before  # unchanged file
    nb = nbformat.read(target, as_version=4)
    boxes = [i for i, c in enumerate(nb.cells) if c.get("id") == book.HOW_TO_RUN]
    assert len(boxes) == 1 and nb.cells[boxes[0] - 1].source.startswith(book.OBJECTIVES)
    box = nb.cells[boxes[0]].source
    assert box.startswith(":::{admonition} How to run this lab\n:class: dropdown")
    assert "{download}`student notebook <../student/lab01_fixture.ipynb>`" in box
    assert "dlcourse labs run fixture --profile laptop" in box
    assert "papermill notebooks/lab01_fixture.ipynb out.ipynb -f p.yml" in box
    assert not execution.is_stale(lab, params, out_dir)  # still current: nothing re-executes
    assert sorted(p.name for p in out_dir.iterdir()) == ["lab01_fixture.ipynb"]  # no temporary left


@pytest.mark.parametrize("kind", editions.EDITIONS)
def test_an_edition_keeps_the_cells_nbconvert_keeps(course, kind):
    """`editions` filters cells itself (nbconvert's import costs seconds on every `dlcourse book`):
    the same cells, sources and outputs as nbconvert's TagRemovePreprocessor + ClearOutputPreprocessor."""
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    lab = labs.discover(course)[0]
    _executed_like_a_lab(lab)
    theirs, resources = nbformat.read(lab.path, as_version=4), {}
    theirs, resources = TagRemovePreprocessor(
        remove_cell_tags=set(editions.REMOVED_TAGS[kind])).preprocess(theirs, resources)
    theirs, _ = ClearOutputPreprocessor().preprocess(theirs, resources)
    ours = editions.edition(lab, kind)
    assert [(c.id, c.cell_type, c.source, c.get("outputs"), c.get("execution_count")) for c in ours.cells] == \
        [(c.id, c.cell_type, c.source, c.get("outputs"), c.get("execution_count")) for c in theirs.cells]
