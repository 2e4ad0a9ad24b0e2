"""The learner's working copy of the course, and JupyterLab on it (``portbinding lab``, ``make lab``).

The lessons and exercises are tracked files, and JupyterLab autosaves answers and cell outputs
into whatever it serves. So the course is served from a **workspace**: a copy of notebooks/ and
exercises/, made the first time, where a learner's work stays theirs and the course's files stay
clean (in a checkout it is ``workspace/``, which git ignores). Files the course adds later are
copied in on the next start; a file already in the workspace is never overwritten.
``portbinding lab --reset`` sets the old workspace aside (``workspace.old-<time>``, nothing is
deleted) and starts again from the course's versions.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from portbinding import settings
from portbinding.errors import PortBindingError
from portbinding.hub.config import INSTRUCTOR_LAB_PLUGINS, INSTRUCTOR_SERVER_EXTENSIONS
from portbinding.paths import checkout_root, course_material

PARTS = ("notebooks", "exercises")
START_PAGE = "notebooks/00-start-here.ipynb"
_SKIP = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")

# nbgrader's Validate button reads nbgrader_config.py from the server's folder (the workspace).
# The checks start containers (and ex03 builds an image): nbgrader's 30 s per cell is too short.
NBGRADER_CONFIG = '''"""nbgrader settings for the Validate button in this workspace (from `portbinding lab`).

The exercises' checks start containers, and one builds an image: allow each cell 3 minutes.
"""

c = get_config()  # noqa: F821 -- nbgrader provides it when it loads this file
c.Execute.timeout = 180
'''


# A learner has no use for nbgrader's instructor tools (Create Assignment, the formgrader); the
# hub hides them from students the same way: a Jupyter config folder of the workspace's own.
JUPYTER_CONFIG = ".portbinding/jupyter"
LEARNER_PAGE_CONFIG = {"disabledExtensions": {name: True for name in INSTRUCTOR_LAB_PLUGINS}}


@dataclass(frozen=True)
class Workspace:
    """A prepared workspace: where it is, what was copied in this time, where an old one went."""

    root: Path
    copied: tuple[Path, ...]
    set_aside: Path | None = None

    @property
    def start_page(self) -> Path:
        return self.root / START_PAGE


def default_workspace() -> Path:
    """PORTBINDING_WORKSPACE, else ``workspace/`` in a checkout, else ``~/port-binding-lab``."""
    chosen = settings.workspace()
    if chosen is not None:
        return chosen
    root = checkout_root()
    return root / "workspace" if root is not None else Path.home() / "port-binding-lab"


def prepare(root: Path, *, reset: bool = False) -> Workspace:
    """Copy what is missing of notebooks/ and exercises/ into ``root``; never overwrite a file.

    With ``reset``, an existing ``root`` is first renamed to ``<root>.old-<YYYYmmdd-HHMMSS>``.
    """
    source = course_material()
    root = root.expanduser().resolve()
    for part in PARTS:
        tracked = (source / part).resolve()
        if root / part == tracked or tracked == root or tracked in root.parents:
            raise PortBindingError(
                f"The workspace {root} would be the course's own {part}/ folder: your answers would be "
                "saved into the course's files.",
                hint=f"choose another folder with --workspace (or {settings.WORKSPACE_ENV}); by default "
                "it is workspace/ in a checkout, ~/port-binding-lab otherwise",
            )
    set_aside = None
    if reset and root.exists():
        set_aside = root.with_name(f"{root.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        root.rename(set_aside)
    copied: list[Path] = []
    for part in PARTS:
        copied += _copy_missing(source / part, root / part)
    config = root / "nbgrader_config.py"
    if not config.exists():
        config.write_text(NBGRADER_CONFIG)
        copied.append(config)
    labconfig = root / JUPYTER_CONFIG / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(LEARNER_PAGE_CONFIG, indent=1))
    return Workspace(root, tuple(copied), set_aside)


def _copy_missing(origin: Path, destination: Path) -> list[Path]:
    copied: list[Path] = []

    def copy(src: str, dst: str) -> str:
        if Path(dst).exists():
            return dst  # the learner's copy, maybe with their answers: never overwritten
        shutil.copy2(src, dst)
        copied.append(Path(dst))
        return dst

    shutil.copytree(origin, destination, ignore=_SKIP, copy_function=copy, dirs_exist_ok=True)
    return copied


# As a Python literal (how traitlets reads a Dict on the command line): Validate off the server's
# event loop (it froze JupyterLab while the checks ran), and no formgrader.
SERVER_EXTENSIONS = repr(
    {"portbinding.validate_server": True, **{name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}}
)


def jupyter_command(workspace: Workspace, *, host: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command that serves ``workspace`` and opens lesson 00."""
    jupyter = Path(sys.executable).parent / "jupyter"
    command = [
        str(jupyter) if jupyter.exists() else "jupyter", "lab", "--no-browser",
        f"--ServerApp.ip={host}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={workspace.root}", f"--LabApp.default_url=/lab/tree/{START_PAGE}",
        f"--ServerApp.jpserver_extensions={SERVER_EXTENSIONS}",
    ]  # fmt: skip
    return [*command, *extra]


def exec_jupyter(workspace: Workspace, command: Sequence[str]) -> None:
    """Replace this process with JupyterLab, in the workspace (never returns).

    The venv's bin goes first on PATH (nbgrader runs ``alembic`` from it); the workspace is the
    folder it runs in, so the Validate button finds the workspace's nbgrader_config.py.
    """
    env = jupyter_env(workspace)
    os.chdir(workspace.root)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], list(command), env)


def jupyter_env(workspace: Workspace) -> dict[str, str]:
    """JupyterLab's environment: the venv's bin first, and the workspace's Jupyter config folder."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    paths = [str(workspace.root / JUPYTER_CONFIG), *filter(None, [env.get("JUPYTER_CONFIG_PATH")])]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    return env
