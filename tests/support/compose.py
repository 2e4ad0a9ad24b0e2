"""Both Compose front ends, run as a learner runs them, on files labelled so every container is swept.

``docker compose`` is Compose v2+ as the docker CLI plugin: the Go binary the test dependencies
install (``.venv/bin/docker-compose``) is linked into a project-local ``DOCKER_CONFIG`` as
``cli-plugins/docker-compose``, so nothing of the user's own docker configuration is touched.
``docker-compose`` v1 is Debian's package (``make compose`` installs it). A missing one fails
the test with the step that installs it: the suite never passes without running both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from portbinding.compose import FrontEnd, front_ends
from portbinding.engine import COURSE, COURSE_LABEL, OWNER_LABEL, Engine

V1 = "/usr/bin/docker-compose"
TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ComposeCLI:
    """One front end: how to start it and the environment it needs."""

    front_end: FrontEnd
    env: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.front_end.command} {self.front_end.version}"

    def run(self, folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``<front end> -p PROJECT ARGS`` in ``folder`` (its docker-compose.yml); fails with the output."""
        argv = [*self.front_end.argv, "-p", project, *args]
        done = subprocess.run(
            argv, cwd=folder, env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
        assert done.returncode == 0, (
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
        return done


def compose_front_ends(config_dir: Path) -> dict[str, ComposeCLI]:
    """``plugin`` (docker compose, v2+) and ``v1`` (docker-compose 1.29), or the test fails saying why."""
    venv_binary = Path(sys.executable).parent / "docker-compose"
    plugins = config_dir / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(venv_binary)
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    found = {item.kind: item for item in front_ends(env=env)}
    missing = [
        what
        for what, kind in (
            ("docker compose (pip install -e '.[test]')", "plugin"),
            (f"{V1} (make compose)", "v1"),
        )
        if kind not in found
    ]
    if missing:
        pytest.fail(f"the Compose tests need both front ends; missing: {', '.join(missing)}")
    return {"plugin": ComposeCLI(found["plugin"], env), "v1": ComposeCLI(found["v1"], env)}


def labels_yaml(engine: Engine, owner: str, indent: int) -> str:
    """The course labels as a YAML mapping, so the sweep and the leftover check see Compose's containers."""
    labels = {**engine.labels, COURSE_LABEL: COURSE, OWNER_LABEL: owner}
    pad = " " * indent
    return "\n".join(f'{pad}{key}: "{value}"' for key, value in labels.items())


def unique_project(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@contextmanager
def compose_project(cli: ComposeCLI, folder: Path, text: str, *, prefix: str) -> Iterator[str]:
    """``text`` as ``folder/docker-compose.yml``, up under a fresh project, always taken down."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docker-compose.yml").write_text(text)
    project = unique_project(prefix)
    try:
        cli.run(folder, project, "up", "-d")
        yield project
    finally:
        subprocess.run(
            [*cli.front_end.argv, "-p", project, "down", "--timeout", "2"],
            cwd=folder,
            env=cli.env,
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
