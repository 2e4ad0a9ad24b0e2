"""One hub's settings (``hub.json`` in its state folder) and the JupyterHub configuration built from them.

A hub's state folder (``/var/lib/portbinding-hub/<name>``, root's) holds::

    hub.json                  these settings (written by ``portbinding hub init``)
    jupyterhub_config.py      two lines: ``configure(c, <hub.json>)``
    credentials.json          scrypt hashes of the passwords (0600)
    images-<key>.tar          the lesson images, loaded into each student's Podman
    jupyter/student/          Jupyter config every student's server reads (JUPYTER_CONFIG_PATH):
    jupyter/instructor/         the exchange and course id; students get no formgrader
    jupyterhub.sqlite, jupyterhub_cookie_secret, proxy/ (configurable-http-proxy from npm)

The folder is 0711: students may reach ``jupyter/`` (0755) by its name, nothing else.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from portbinding.hub.limits import StudentLimits

STATE_BASE = Path("/var/lib/portbinding-hub")
DEFAULT_EXCHANGE = Path("/srv/nbgrader/exchange")
COURSE_ID = "port-binding-lab"  # grader/nbgrader_config.py's
# What students must not see in JupyterLab: the instructor's tools.
INSTRUCTOR_LAB_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",)


@dataclass
class HubSettings:
    """Everything ``portbinding hub`` needs to run one class's hub."""

    name: str = "class"
    ip: str = "127.0.0.1"
    port: int = 8000
    roster: str = ""
    exchange: str = str(DEFAULT_EXCHANGE)
    course_id: str = COURSE_ID
    venv: str = str(Path(sys.executable).parent.parent)
    images: list[str] = field(default_factory=list)
    memory_bytes: int = StudentLimits().memory_bytes
    pids: int = StudentLimits().pids
    state_base: str = str(STATE_BASE)
    # Extra variables for every server (the tests pass their run id, so their containers are theirs).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return Path(self.state_base) / self.name

    @property
    def path(self) -> Path:
        return self.state / "hub.json"

    @property
    def limits(self) -> StudentLimits:
        return StudentLimits(self.memory_bytes, self.pids)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip
        return f"http://{host}:{self.port}"

    def jupyter_dir(self, role: str) -> Path:
        return self.state / "jupyter" / role

    def save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True, mode=0o711)
        os.chmod(self.state, 0o711)
        self.path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        os.chmod(self.path, 0o600)

    @classmethod
    def load(cls, path: Path) -> HubSettings:
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(**data)


def configure(c: Any, settings_path: str) -> None:
    """Fill JupyterHub's config object ``c`` for the hub whose settings are at ``settings_path``."""
    from portbinding.hub.roster import read_roster

    settings = HubSettings.load(Path(settings_path))
    members = read_roster(Path(settings.roster))
    c.JupyterHub.ip = settings.ip
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.db_url = f"sqlite:///{settings.state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(settings.state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(settings.state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.command = [
        str(settings.state / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy")
    ]
    c.ConfigurableHTTPProxy.pid_file = str(settings.state / "proxy.pid")
    c.JupyterHub.authenticator_class = "portbinding.hub.auth.RosterAuthenticator"
    c.RosterAuthenticator.credentials_file = str(settings.state / "credentials.json")
    c.Authenticator.allowed_users = {m.id for m in members}
    c.Authenticator.admin_users = {m.id for m in members if m.is_instructor}
    c.JupyterHub.spawner_class = "portbinding.hub.spawner.CourseSpawner"
    c.CourseSpawner.settings_file = settings_path
    c.Spawner.cmd = [str(Path(settings.venv) / "bin" / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    # Starting a student's Podman and loading the lesson images the first time takes a while.
    c.Spawner.start_timeout = 300
    c.Spawner.http_timeout = 120
    c.JupyterHub.cleanup_servers = True
