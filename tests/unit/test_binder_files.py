"""repo2docker (what mybinder.org runs) reads binder/ and sets the course up on the process engine.

The image itself cannot be built here (no registry for repo2docker's base image), so this checks
the Dockerfile repo2docker generates from the repository with ``--no-build``: it installs
binder/environment.yml, runs binder/postBuild, and starts through binder/start. The Binder
session itself is simulated in tests/notebooks/test_binder_session.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import REPO


@pytest.fixture(scope="module")
def dockerfile() -> str:
    repo2docker = Path(sys.executable).parent / "repo2docker"
    done = subprocess.run(
        [str(repo2docker), "--no-build", "--no-run", "--debug", str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout + done.stderr


def test_repo2docker_installs_the_binder_environment(dockerfile: str) -> None:
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "binder/environment.yml"' in dockerfile


def test_repo2docker_runs_postbuild_and_starts_through_binder_start(dockerfile: str) -> None:
    assert "RUN ./binder/postBuild" in dockerfile
    assert 'R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in dockerfile


def test_binder_start_chooses_the_process_engine() -> None:
    start = (REPO / "binder" / "start").read_text()
    assert re.search(r"^export PORTBINDING_ENGINE=process$", start, re.MULTILINE)
    assert start.rstrip().endswith('exec "$@"'), "binder/start must hand over to the notebook server"


def test_the_readme_has_a_launch_badge_that_opens_the_first_lesson() -> None:
    readme = (REPO / "README.md").read_text()
    badge = re.search(
        r"\[!\[[^]]*\]\(https://mybinder\.org/badge_logo\.svg\)\]\((https://mybinder\.org/v2/[^)]+)\)", readme
    )
    assert badge, "no Binder launch badge in the README"
    assert "urlpath=lab/tree/notebooks/00-start-here.ipynb" in badge.group(1)
