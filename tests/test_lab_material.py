"""The labs as course material, read from their source notebooks (no execution, no build).

The conventions (notebooks/README.md): objectives right after the title, 3 to 5 exercises,
each with its solution in its own cell tagged `solution` (a code solution also `hide-cell`),
takeaways at the end; code lines of at most 88 characters; claim-checking and glue cells
tagged so that their code is out of the reader's way. tests/test_book.py checks what a reader
sees of the same things on the built pages; these checks say which cell is wrong, in seconds.
The checker itself is tested on the fixture labs of test_labs.py, whole and broken.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from dlcourse import labs
from test_labs import make_course

REPO = Path(__file__).resolve().parents[1]
MAX_LINE = 88
OBJECTIVES, TAKEAWAYS = "## You will learn", "## Key takeaways"
#: Tags that keep a cell's code out of the reader's way (its results shown, or not).
HIDDEN = {"hide-input", "remove-input", "remove-cell"}
#: A call of the claim-checking or glue machinery: plumbing, not what a student should read.
PLUMBING = re.compile(r"\bevidence\.\w|\bglue\(")
_EXERCISE = re.compile(r"^:{3,}\{exercise\}", re.M)
_SOLUTION = re.compile(r"^:{3,}\{solution\}\s*(\S+)", re.M)
_LABEL = re.compile(r"^:label:\s*(\S+)", re.M)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+\S", re.M)


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def material_problems(nb) -> list[str]:
    """What a lab notebook lacks of its course material, one line per problem (empty: none)."""
    problems = []
    md = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    if len(nb.cells) < 2 or not nb.cells[1].source.lstrip().startswith(OBJECTIVES):
        problems.append(f"cell 1 must be the objectives, a markdown cell starting '{OBJECTIVES}'")
    else:
        bullets = len(_BULLET.findall(nb.cells[1].source))
        if not 3 <= bullets <= 5:
            problems.append(f"cell 1 lists {bullets} objectives (3 to 5)")
    headed = [i for i, c in md if re.search(r"^## ", c.source, re.M)]
    last = [i for i, c in md if c.source.lstrip().startswith(TAKEAWAYS)]
    if not last:
        problems.append(f"no markdown cell starts with '{TAKEAWAYS}'")
    elif headed[-1] != last[-1]:
        problems.append(f"'{TAKEAWAYS}' (cell {last[-1]}) must be the last section; cell {headed[-1]} follows")
    labels = [label for _, c in md if _EXERCISE.search(c.source) for label in _LABEL.findall(c.source)]
    exercises = sum(len(_EXERCISE.findall(c.source)) for _, c in md)
    if not 3 <= exercises <= 5:
        problems.append(f"{exercises} exercises (3 to 5)")
    if len(labels) != exercises:
        problems.append(f"{exercises} exercises but {len(labels)} labels: each exercise needs its :label:")
    solved = {}
    for i, c in enumerate(nb.cells):
        if "solution-start" in c.source or "solution-end" in c.source:
            problems.append(f"cell {i}: gated solution-start/solution-end (crashes Jupyter Book 1)")
        found = _SOLUTION.findall(c.source) if c.cell_type == "markdown" else []
        for label in found:
            solved[label] = i
            if "solution" not in _tags(c):
                problems.append(f"cell {i}: the solution to {label} is not tagged 'solution' (students would get it)")
            if not re.search(r"^:class:.*\bdropdown\b", c.source, re.M):
                problems.append(f"cell {i}: the solution to {label} is not folded (:class: dropdown)")
        if c.cell_type == "code" and "solution" in _tags(c) and not _tags(c) & {"hide-cell", "hide-input"}:
            problems.append(f"cell {i}: a code solution must be tagged hide-cell too (folded in the book)")
    problems += [f"exercise {label} has no solution" for label in labels if label not in solved]
    return problems


def code_problems(nb) -> list[str]:
    """Code lines over MAX_LINE characters, and plumbing cells whose code is shown."""
    problems = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        long = [n for n, line in enumerate(c.source.splitlines(), 1) if len(line) > MAX_LINE]
        if long:
            problems.append(f"cell {i}: lines {long} are longer than {MAX_LINE} characters")
        if PLUMBING.search(c.source) and not _tags(c) & HIDDEN and "solution" not in _tags(c):
            problems.append(f"cell {i}: calls evidence./glue( but is not tagged {' or '.join(sorted(HIDDEN))}")
    return problems


def _labs() -> list[labs.Lab]:
    found = labs.discover(REPO)
    if not found:
        pytest.skip("no lab notebooks in notebooks/ yet")
    return found


def _report(check) -> str:
    lines = []
    for lab in _labs():
        lines += [f"{lab.stem}: {p}" for p in check(nbformat.read(lab.path, as_version=4))]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the checker itself

@pytest.fixture
def fixture_lab(tmp_path) -> Path:
    return labs.discover(make_course(tmp_path / "course", material=True, with_book=False))[0].path


def test_the_fixture_lab_is_course_material(fixture_lab):
    nb = nbformat.read(fixture_lab, as_version=4)
    assert material_problems(nb) == [] and code_problems(nb) == []


def test_the_checker_names_what_is_missing(fixture_lab):
    nb = nbformat.read(fixture_lab, as_version=4)
    solution = next(i for i, c in enumerate(nb.cells) if "{solution} lab01-ex2" in c.source)
    nb.cells[solution].metadata["tags"] = []
    nb.cells[solution + 1].source = nb.cells[solution + 1].source.replace(":label: lab01-ex3", ":label: lab01-ex9")
    nb.cells[-1].source = "## More\n\nAfter the takeaways."
    nb.cells[1].source = "## You will learn\n\n- one thing"
    code = next(c for c in nb.cells if c.cell_type == "code" and "solution" in _tags(c))
    code.metadata["tags"] = ["solution"]
    assert material_problems(nb) == [
        "cell 1 lists 1 objectives (3 to 5)",
        f"no markdown cell starts with '{TAKEAWAYS}'",
        f"cell {solution - 2}: a code solution must be tagged hide-cell too (folded in the book)",
        f"cell {solution}: the solution to lab01-ex2 is not tagged 'solution' (students would get it)",
        "exercise lab01-ex9 has no solution",
    ]
    nb.cells[3].source = nb.cells[3].source.rstrip() + "\nverdict = evidence.decide([1.0, 2.0])  # " + "x" * 60
    assert code_problems(nb) == [
        "cell 3: lines [6] are longer than 88 characters",
        "cell 3: calls evidence./glue( but is not tagged hide-input or remove-cell or remove-input",
    ]


# ----------------------------------------------------------------------------- the labs

def test_every_lab_has_objectives_exercises_with_solutions_and_takeaways():
    problems = _report(material_problems)
    assert not problems, problems


def test_lab_code_fits_88_columns_and_plumbing_is_hidden():
    problems = _report(code_problems)
    assert not problems, problems
