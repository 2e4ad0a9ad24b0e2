"""The course installed the ordinary way (`pip install .`, not editable) is a working tool.

A fresh venv in a private (0700) folder gets a copy of the checkout installed into it; then,
from a folder that is not the checkout, it builds the images, runs a scenario, lays out the
course and grades a submission through the sandbox -- everything an instructor does, with no
path leading back into the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from portbinding.images import IMAGES
from tests.support.checkout import REPO, copy_checkout

pytestmark = pytest.mark.engines("docker", reason="image builds and grading need Docker")
EX01 = "ex01-unreachable-notebook"


@dataclass(frozen=True)
class Installed:
    """A venv with the course installed from a copy of the checkout, and a folder to work in."""

    venv: Path
    work: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(docker_client: docker.DockerClient) -> Iterator[Installed]:
    if os.geteuid() != 0:
        pytest.fail("grading needs root (the sandbox); run this under make test")
    private = Path(tempfile.mkdtemp(prefix="pbl-installed-"))  # 0700, like a clone in /root
    try:
        source = copy_checkout(private / "source")
        venv = private / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(source)],
            check=True,
            timeout=900,
        )
        work = private / "work"
        work.mkdir()
        env = {
            **os.environ,
            # The venv's bin first (nbgrader runs alembic from PATH); nothing from the checkout.
            "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
            "PORTBINDING_SESSION": f"installed-{uuid.uuid4().hex[:8]}",
        }
        for name in ("PYTHONPATH", "VIRTUAL_ENV", "PORTBINDING_IMAGES_DIR"):
            env.pop(name, None)
        yield Installed(venv, work, env)
    finally:
        subprocess.run(["rm", "-rf", str(private)], check=False, timeout=120)


def test_the_installed_package_carries_its_image_folders_and_course(installed: Installed) -> None:
    """portbinding.paths finds the shipped folders inside site-packages, not in a checkout."""
    shown = installed.run(
        "python",
        "-c",
        "from portbinding import paths; print(paths.images_dir()); print(paths.course_material()); "
        "print(paths.checkout_root())",
    )
    assert shown.returncode == 0, shown.stderr
    images, course, checkout = shown.stdout.split()
    assert "site-packages" in images and "site-packages" in course, shown.stdout
    assert checkout == "None", f"an installed package must not think it is a checkout: {shown.stdout}"
    assert str(REPO) not in shown.stdout, f"the installed package reaches into the checkout: {shown.stdout}"


def test_the_installed_tool_builds_the_images(installed: Installed) -> None:
    """`portbinding images build` works from the package data; the shipped folders equal the checkout's."""
    built = installed.run("portbinding", "images", "build", "--json", timeout=900)
    assert built.returncode == 0, f"images build failed:\n{built.stdout[-2000:]}\n{built.stderr[-2000:]}"
    results = json.loads(built.stdout)["images"]
    assert {r["reference"] for r in results} == {image.reference for image in IMAGES}, results
    # The suite built them from the checkout already: identical build contexts are up to date.
    stale = [r["reference"] for r in results if not r["cached"]]
    assert not stale, f"the installed image folders differ from the checkout's: {stale} were rebuilt"


def test_the_installed_tool_runs_a_scenario(installed: Installed) -> None:
    """`portbinding run ok` starts the healthy notebook and the probe reaches it."""
    try:
        ran = installed.run("portbinding", "run", "ok", "--json", timeout=120)
        assert ran.returncode == 0, f"portbinding run ok failed:\n{ran.stdout}\n{ran.stderr}"
        assert json.loads(ran.stdout)["probe"]["outcome"] == "ok", ran.stdout
    finally:
        session = installed.env["PORTBINDING_SESSION"]
        cleaned = installed.run("portbinding", "cleanup", "--session", session, "--json", timeout=120)
        assert cleaned.returncode == 0, cleaned.stderr


def test_the_installed_tool_lays_out_a_course_and_grades_a_submission(installed: Installed) -> None:
    """`portbinding course init` + nbgrader + `portbinding grade`: a reference submission gets full marks."""
    laid = installed.run("portbinding", "course", "init", "course")
    assert laid.returncode == 0, laid.stderr
    grader = installed.work / "course" / "grader"
    generated = subprocess.run(
        [str(installed.venv / "bin" / "nbgrader"), "generate_assignment", EX01, "--force"],
        cwd=grader,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr[-2000:]
    submission = grader / "submitted" / "ref" / EX01
    submission.mkdir(parents=True)
    (submission / f"{EX01}.ipynb").write_bytes((grader / "source" / EX01 / f"{EX01}.ipynb").read_bytes())
    graded = installed.run("portbinding", "grade", EX01, "--course", str(grader), "--json", timeout=600)
    assert graded.returncode == 0, f"grading failed:\n{graded.stdout[-2000:]}\n{graded.stderr[-2000:]}"
    [outcome] = json.loads(graded.stdout)["submissions"]
    assert outcome["status"] == "graded" and outcome["score"] == outcome["max_score"] > 0, outcome
