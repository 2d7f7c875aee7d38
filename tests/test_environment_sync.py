"""environment.yaml (conda) must list the same dependencies as pyproject.toml (no conda channel is reachable here,
so the check is static)."""
import re
import tomllib

import yaml

from conftest import REPO

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_deps() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {CONDA_NAMES.get(_name(r), _name(r)) for r in reqs}


def _conda_deps() -> set[str]:
    env = yaml.safe_load((REPO / "environment.yaml").read_text())
    return {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}


def test_environment_yaml_matches_pyproject():
    py, conda = _pyproject_deps(), _conda_deps()
    assert py == conda, f"only in pyproject.toml: {sorted(py - conda)}; only in environment.yaml: {sorted(conda - py)}"


def test_name_parser_sees_versions_and_extras():
    assert _name("stable-baselines3>=2.4") == "stable-baselines3"
    assert _name("nbdev[dev] >= 3") == "nbdev"
    assert _name("torch==2.13.0") == "torch"
