"""The two ways to install list the same packages, and the CLI answers as the README says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from dlcourse import cli

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower()


def test_pyproject_and_environment_list_the_same_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    pyproject = project["dependencies"] + extras  # conda users get the extras too
    env = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    pip_deps = next(d["pip"] for d in env if isinstance(d, dict))
    assert sorted(pyproject) == sorted(pip_deps)  # same names and the same version ranges
    required = {"torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "tqdm", "papermill",
                "jupyter-book", "ipykernel", "jupyterlab", "nbval", "pytest", "safetensors", "pyyaml"}
    assert required <= {_name(r) for r in pyproject}


def test_torch_ranges_admit_the_local_wheels():
    from packaging.specifiers import SpecifierSet

    deps = {_name(r): r[len(_name(r)):] for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert "2.14.1" in SpecifierSet(deps["torch"]) and "0.29.1" in SpecifierSet(deps["torchvision"])
    assert "1.0.4.post1" in SpecifierSet(deps["jupyter-book"])


def test_data_check_command(toy_root, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("DLCOURSE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["data", "check", "--root", str(toy_root)]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "train=600 test=200" in out
    assert cli.main(["data", "check", "--root", str(tmp_path / "none")]) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and str((tmp_path / "none" / "MNIST" / "raw").resolve()) in out
