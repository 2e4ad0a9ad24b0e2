"""environment.yml (Binder, conda) and pyproject.toml must install the same things."""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from tests.support.checkout import REPO


def _normalised(requirements: list[str]) -> dict[str, str]:
    parsed = [Requirement(text) for text in requirements]
    return {r.name.lower().replace("_", "-"): str(r.specifier) for r in parsed}


def test_environment_yml_pins_the_same_dependencies_as_pyproject() -> None:
    """Every dependency and version range in pyproject.toml appears in environment.yml, and nothing else."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lists = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert len(pip_lists) == 1, "environment.yml should have exactly one pip: section"
    assert _normalised(pip_lists[0]) == _normalised(project["dependencies"]), (
        "environment.yml and pyproject.toml disagree; copy pyproject's dependencies into environment.yml"
    )


def test_environment_yml_uses_the_python_the_course_is_tested_on() -> None:
    """Binder builds with the Python version the project requires."""
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pythons = [d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python")]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert pythons == ["python=3.11"], f"environment.yml python pin is {pythons}"
    assert Requirement(f"python{requires}").specifier.contains("3.11"), requires
