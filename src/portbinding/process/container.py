"""One process-engine container: its configuration, its state, and its root folder.

A container is a process group started from a course image's recipe. Its files live in a
private folder that stands in for its root filesystem: the image's COPY'd files are put there,
absolute paths in its command and environment are moved under it when the image has them, and
its Python servers get the shim (see the package docstring) that gives them their own addresses.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portbinding.dockerjson import PortMap
from portbinding.process.netview import ContainerNet
from portbinding.process.output import Output
from portbinding.process.publisher import Publisher
from portbinding.process.recipes import Recipe

SHIM_DIR = Path(__file__).resolve().parent / "shim"
NEVER = "0001-01-01T00:00:00Z"
CONTAINER_ENV = "PORTBINDING_PROCESS_CONTAINER"  # every process of a container inherits it


class ApiError(Exception):
    """An error answered as the Docker API does: a status code and {"message": ...}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_id(recipe: Recipe) -> str:
    return recipe.ident


@dataclass
class ProcessContainer:
    """One container: a recipe, a run configuration, and (once started) a process group."""

    id: str
    name: str
    image: str  # the reference it was created from, as the run line named it
    recipe: Recipe
    command: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    port_bindings: PortMap
    publish_all: bool
    auto_remove: bool
    net: ContainerNet
    root: Path
    created: str = field(default_factory=now)
    process: subprocess.Popen[bytes] | None = None
    status: str = "created"
    exit_code: int = 0
    started_at: str = NEVER
    finished_at: str = NEVER
    error: str = ""
    publishers: dict[tuple[int, str], Publisher] = field(default_factory=dict)
    output: Output = field(default_factory=Output)

    @property
    def argv(self) -> list[str]:
        return [*self.recipe.entrypoint, *(self.command or self.recipe.cmd)]

    def inspect(self) -> dict[str, Any]:
        running = self.status == "running"
        ports: dict[str, Any] = {f"{p}/tcp": None for p in self.recipe.exposed}  # exposed only: null
        for (port, host_ip), publisher in self.publishers.items():
            bindings = ports.get(f"{port}/tcp") or []
            ports[f"{port}/tcp"] = [*bindings, {"HostIp": host_ip, "HostPort": str(publisher.port)}]
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "Created": self.created,
            "Path": self.argv[0] if self.argv else "",
            "Args": self.argv[1:],
            "Image": image_id(self.recipe),
            "State": {
                "Status": self.status,
                "Running": running,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "Pid": self.process.pid if running and self.process else 0,
                "ExitCode": self.exit_code,
                "Error": self.error,
                "StartedAt": self.started_at,
                "FinishedAt": self.finished_at,
            },
            "Config": {
                "Hostname": self.id[:12],
                "Image": self.image,
                "Cmd": self.command or list(self.recipe.cmd),
                "Entrypoint": list(self.recipe.entrypoint) or None,
                "Env": [f"{k}={v}" for k, v in self.env.items()],
                "ExposedPorts": {f"{p}/tcp": {} for p in self.recipe.exposed},
                "Labels": self.labels,
                "WorkingDir": self.recipe.workdir,
                "Tty": False,
                "User": "",
            },
            "HostConfig": {
                # No limits are applied to a process (no cgroups without root), so none are shown.
                "Memory": 0,
                "NanoCpus": 0,
                "PidsLimit": None,
                "PortBindings": self.port_bindings,
                "PublishAllPorts": self.publish_all,
                "AutoRemove": self.auto_remove,
            },
            "NetworkSettings": {
                "IPAddress": self.net.eth if running else "",
                "Gateway": "127.0.0.1" if running else "",
                "Ports": ports if running else {},
                "Networks": {
                    "bridge": {"IPAddress": self.net.eth if running else "", "Gateway": "127.0.0.1"}
                },
            },
        }

    def summary(self) -> dict[str, Any]:
        attrs = self.inspect()
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": attrs["Config"]["Image"],
            "ImageID": attrs["Image"],
            "Command": " ".join(self.argv),
            "Created": int(time.time()),
            "State": self.status,
            "Status": self.status,
            "Labels": attrs["Config"]["Labels"],
            "Ports": [
                {"PrivatePort": port, "PublicPort": p.port, "IP": ip, "Type": "tcp"}
                for (port, ip), p in self.publishers.items()
            ],
        }


# ------------------------------------------------------------------------------ the root folder


def populate(container: ProcessContainer) -> None:
    """The image's files under the container's root, where its Dockerfile COPYs them."""
    recipe, root = container.recipe, container.root
    for source, destination in recipe.copies:  # in Dockerfile order: a later COPY wins
        target = root / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for folder in (recipe.workdir, "/home/learner", "/tmp"):
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    _quiet_jupyter_extensions(root / "home/learner/.jupyter")


def _quiet_jupyter_extensions(config_dir: Path) -> None:
    """Turn off the server extensions of the course's own environment for the container.

    The image's Jupyter Server has no extensions; the course's environment has JupyterLab,
    nbgrader and more enabled for every server it starts. The user-level config (highest
    priority) switches them off, so the container's server starts as lean as the image's.
    """
    enabled: dict[str, bool] = {}
    for folder in (Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d",):
        for path in sorted(folder.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                names = json.loads(path.read_text()).get("ServerApp", {}).get("jpserver_extensions", {})
                enabled.update({name: False for name in names})
    config_dir.mkdir(parents=True, exist_ok=True)
    # The image runs as the unprivileged `learner`; a daemon run by root (a test machine) runs its
    # containers' servers as root, which Jupyter refuses without this.
    config = {"ServerApp": {"jpserver_extensions": enabled, "allow_root": os.geteuid() == 0}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))


def in_root(container: ProcessContainer, path: str) -> str:
    """An absolute path inside the container, on the host: under its root when the image has it."""
    inside = container.root / path.lstrip("/")
    return str(inside) if inside.exists() or (inside.parent.exists() and path != "/") else path


def _relocated(container: ProcessContainer, value: str) -> str:
    return in_root(container, value) if value.startswith("/") and value != "/" else value


def environment(container: ProcessContainer) -> dict[str, str]:
    root = container.root
    env = {
        "PATH": os.pathsep.join(
            [str(root / "usr/local/bin"), str(Path(sys.executable).parent), "/usr/bin:/bin"]
        ),
        "HOME": str(root / "home/learner"),
        "HOSTNAME": container.id[:12],
        "LANG": "C.UTF-8",
        "TMPDIR": str(root / "tmp"),
        "PYTHONPATH": str(SHIM_DIR),
        "JUPYTER_CONFIG_DIR": str(root / "home/learner/.jupyter"),
        "JUPYTER_CONFIG_PATH": str(root / "etc/jupyter"),
        "JUPYTER_DATA_DIR": str(root / "home/learner/.local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / "tmp/jupyter-runtime"),
    }
    env.update({k: _relocated(container, v) for k, v in container.env.items()})
    env.update(container.net.env())
    env[CONTAINER_ENV] = container.id
    return env


def resolve(container: ProcessContainer, env: dict[str, str], argv: list[str] | None = None) -> list[str]:
    """``argv`` (default: the container's command) with its paths and program found in ``env``."""
    words = [_relocated(container, word) for word in (argv if argv is not None else container.argv)]
    if not words:
        raise ApiError(400, "no command specified")
    if "/" not in words[0]:
        found = shutil.which(words[0], path=env["PATH"])
        if found is None:
            raise ApiError(400, f'exec: "{words[0]}": executable file not found in $PATH')
        words[0] = found
    return words
