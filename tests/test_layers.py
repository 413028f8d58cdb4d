"""The package's layers: every import between dlcourse modules (lazy ones inside functions too)
follows the table in src/dlcourse/README.md, and every module is in exactly one layer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dlcourse"


def layer_table(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(module -> layer, layer -> the layers and modules it may import) from the README's table."""
    block = re.search(r"<!-- layers: begin -->(.*?)<!-- layers: end -->", text, re.S)
    assert block, "src/dlcourse/README.md has no layer table between the layer markers"
    layer_of, allowed = {}, {}
    for line in block.group(1).strip().splitlines()[2:]:  # skip the header and its rule
        layer, modules, may = (cell.strip() for cell in line.strip().strip("|").split("|"))
        for module in (m.strip() for m in modules.split(",")):
            assert module not in layer_of, f"module {module} is in two layers"
            layer_of[module] = layer
        allowed[layer] = {layer} | {m.strip() for m in may.split(",") if m.strip()}
    return layer_of, allowed


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level dlcourse module) of every import in `path`, at any depth of the file."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    here = parts[:-1]  # the package a relative import starts from
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - (node.level - 1)]
            names = node.module.split(".") if node.module else []
            targets = [base + names] if names else [base + [a.name] for a in node.names]
            out += [(node.lineno, t[0]) for t in targets if t]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlcourse."):
            out.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("dlcourse.")]
    return out


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_is_in_one_layer():
    layer_of, _ = layer_table((PACKAGE / "README.md").read_text())
    missing = sorted({module_name(p) for p in MODULES} - set(layer_of))
    assert not missing, f"modules in no layer of src/dlcourse/README.md: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    layer_of, allowed = layer_table((PACKAGE / "README.md").read_text())
    layer = layer_of.get(module_name(path))
    if layer is None:
        pytest.skip("in no layer (test_every_module_is_in_one_layer says so)")
    bad = [f"line {line}: imports {target} ({layer_of.get(target, 'no layer')})"
           for line, target in imports_of(path)
           if target in layer_of and not ({layer_of[target], target} & allowed[layer])]
    bad += [f"line {line}: imports {target}, which is in no layer" for line, target in imports_of(path)
            if target not in layer_of and (PACKAGE / target).exists() | (PACKAGE / f"{target}.py").exists()]
    assert not bad, f"{path.relative_to(PACKAGE)} ({layer}) crosses a boundary: " + "; ".join(bad)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The parser finds an import inside a function, relative imports from a subpackage, and
    `from . import x`; the table parser reads layers and what they may import."""
    sub = PACKAGE / "plots" / "_probe_for_test_layers.py"
    sub.write_text("from . import label\nfrom ..vocabulary import INITS\n\ndef f():\n    from ..search import SPACE\n"
                   "    import dlcourse.train\n")
    try:
        assert imports_of(sub) == [(1, "plots"), (2, "vocabulary"), (5, "search"), (6, "train")]
    finally:
        sub.unlink()
    layer_of, allowed = layer_table((PACKAGE / "README.md").read_text())
    assert layer_of["search"] == "analysis" and "search" not in allowed[layer_of["plots"]]
    assert "train" not in allowed["blocks"] and "blocks" in allowed["train"]
