"""Prose bound to results: no number a run produced is typed into a lab's markdown.

Every decimal (`0.959`) and percentage (`96.6%`, `12 %`) in the markdown cells of an executed
notebook must be found among the numbers of its outputs (tables, printed text, glued values,
markdown built in code cells) or of its parameters (the `parameters` cell and the cell papermill
injected), at the precision the markdown states it: `96.6%` is found in an output `0.9657`
(as a percentage) and `0.96` in `0.9612`. What markdown may state without a run behind it:

- numbers inside inline code, code blocks, math (`$...$`) and MyST roles such as
  `` {glue:text}`name:.3f` `` (the glued value is an output);
- section numbers of citations (`R1 §3.2`);
- the short allow-list `CONSTANTS` below, each with why.

Run it on any folder of executed notebooks, e.g. after a laptop build:
`python tests/test_prose.py book/labs` (prints every unbound number, exits 1 if any).
tests/test_book.py checks the smoke book it builds with `unbound_numbers_in`.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

#: Numbers markdown may state with no run behind them: constants of the subject, not results.
CONSTANTS = {
    "0.25": "the largest slope of the sigmoid",
    "0.5": "one half: the midpoint α = 0.5 of an interpolation, a probability of one half",
    "0.9": "the usual momentum coefficient β = 0.9",
    "0.999": "Adam's usual second-moment coefficient β₂ = 0.999",
    "95%": "the confidence level of every verdict's interval (evidence.decide)",
}

# What markdown states: a decimal (thousands may be grouped by commas) or a percentage.
_MD_NUMBER = re.compile(r"(?<![\w.§,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+)(\s?%)?(?![\w.]\d)")
# What outputs and parameters hold: any number, possibly signed or in exponent form.
_ANY_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_SKIP = [
    re.compile(r"```.*?```", re.S),              # code blocks
    re.compile(r"\$\$.*?\$\$", re.S),            # display math
    re.compile(r"\{[\w:-]+\}`[^`]*`"),           # MyST roles: {glue:text}`x:.3f`, {doc}`...`
    re.compile(r"`[^`]*`"),                      # inline code
    re.compile(r"\$[^$\n]+\$"),                  # inline math
    re.compile(r"\]\([^)]*\)"),                  # link targets
    re.compile(r"<[^>\n]+>"),                    # HTML tags and autolinks
]


def markdown_numbers(text: str) -> list[str]:
    """The decimals and percentages a markdown text states, as written (`0.959`, `96.6%`)."""
    for pattern in _SKIP:
        text = pattern.sub(" ", text)
    found = []
    for m in _MD_NUMBER.finditer(text):
        number, percent = m.group(1), m.group(2)
        if percent or "." in number:
            found.append(number + ("%" if percent else ""))
    return found


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def known_numbers(nb: dict) -> list[float]:
    """Every number in the notebook's outputs and in its parameter cells."""
    texts = []
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and ({"parameters", "injected-parameters"} & set(tags)):
            texts.append(_text(cell["source"]))
        for out in cell.get("outputs", []):
            if "text" in out:
                texts.append(_text(out["text"]))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("/text/plain") or mime.endswith("/text/markdown"):
                    texts.append(_text(value))
    return [float(m.group().replace(",", "")) for t in texts for m in _ANY_NUMBER.finditer(t)]


def _matches(token: str, known: list[float]) -> bool:
    percent = token.endswith("%")
    digits = token.rstrip("%").replace(",", "")
    value = float(digits)
    places = len(digits.split(".")[1]) if "." in digits else 0
    tol = 0.5 * 10 ** -places + 1e-9
    scales = (100.0, 1.0) if percent else (1.0, 100.0, 0.01)
    return any(math.isclose(n * s, value, abs_tol=tol) or abs(n * s - value) <= tol for n in known for s in scales)


def unbound_numbers(nb: dict) -> list[tuple[int, str]]:
    """(cell index, number) for every decimal or percentage of the markdown found in no output
    or parameter and not in `CONSTANTS`."""
    known = known_numbers(nb)
    bad = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for token in markdown_numbers(_text(cell["source"])):
            if token in CONSTANTS:
                continue
            if not _matches(token, known):
                bad.append((i, token))
    return bad


def unbound_numbers_in(folder: str | os.PathLike) -> dict[str, list[tuple[int, str]]]:
    """`unbound_numbers` of every executed notebook in `folder` (only those with any)."""
    out = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        bad = unbound_numbers(json.loads(path.read_text(encoding="utf-8")))
        if bad:
            out[path.name] = bad
    return out


# ---------------------------------------------------------------- tests on made-up notebooks

def notebook(markdown: list[str], outputs: list[str] = (), parameters: str = "") -> dict:
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": parameters, "outputs": []}]
    cells += [{"cell_type": "markdown", "metadata": {}, "source": text} for text in markdown]
    cells += [{"cell_type": "code", "metadata": {}, "source": "",
               "outputs": [{"output_type": "execute_result", "data": {"text/plain": o}}]} for o in outputs]
    return {"cells": cells}


def test_markdown_numbers_are_decimals_and_percentages_outside_code_and_math():
    text = ("CNN 1 finished at 96.6% and CNN 3 at 0.937, 12 % and 8,000 images, 50 epochs, `lr = 0.001`, "
            "$\\alpha = 0.75$, {glue:text}`acc:.3f`, R1 §3.2, see [x](a/b-1.5.html), 2×100 nets, "
            "version v1.2.\n```python\nx = 0.123\n```")
    assert markdown_numbers(text) == ["96.6%", "0.937", "12%"]


def test_a_number_the_run_did_not_produce_is_caught():
    nb = notebook(["CNN 1 finished at 96.6% and CNN 3 at 0.937."], outputs=["CNN 1  0.959\nCNN 3  0.9372"])
    assert unbound_numbers(nb) == [(1, "96.6%")]
    assert unbound_numbers(notebook(["at 95.9%"], outputs=["0.959"])) == []  # the table, as a percentage
    assert unbound_numbers(notebook(["at 0.96"], outputs=["0.9612"])) == []  # rounded as written
    assert unbound_numbers(notebook(["at 0.97"], outputs=["0.9612"])) == [(1, "0.97")]


def test_parameters_glue_and_constants_are_allowed():
    nb = notebook(["tolerance 10 %, learning rate 0.001, slope at most 0.25, α = 0.5, a 95% interval, "
                   "{glue:text}`x:.2f`"],
                  parameters="same_tol = 0.10\nlr = 0.001\n")
    assert unbound_numbers(nb) == []
    glued = {"output_type": "display_data", "data": {"application/papermill.record/text/plain": "0.8123"}}
    nb = notebook(["it reached 81.2%"])
    nb["cells"][0]["outputs"].append(glued)
    assert unbound_numbers(nb) == []


def test_a_folder_of_notebooks(tmp_path):
    (tmp_path / "good.ipynb").write_text(json.dumps(notebook(["0.5 and 12.5%"], outputs=["0.125"])))
    (tmp_path / "bad.ipynb").write_text(json.dumps(notebook(["88.2%"], outputs=["0.881"])))
    assert unbound_numbers_in(tmp_path) == {"bad.ipynb": [(1, "88.2%")]}


def test_executed_labs_in_a_folder():
    """DLCOURSE_PROSE_DIR=book/labs checks a folder of executed labs (e.g. after a laptop build)."""
    folder = os.environ.get("DLCOURSE_PROSE_DIR")
    if not folder:
        pytest.skip("set DLCOURSE_PROSE_DIR to a folder of executed lab notebooks")
    assert list(Path(folder).glob("*.ipynb")), f"{folder} holds no notebooks"
    assert unbound_numbers_in(folder) == {}


if __name__ == "__main__":
    problems = unbound_numbers_in(sys.argv[1] if len(sys.argv) > 1 else "book/labs")
    for name, bad in problems.items():
        for cell, token in bad:
            print(f"{name}: cell {cell}: {token} is in no output or parameter")
    sys.exit(1 if problems else 0)
