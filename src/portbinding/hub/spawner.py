"""The hub's spawner: each server as its Unix user, with its own engine and inside its own limits.

``CourseSpawner`` is JupyterHub's LocalProcessSpawner (the server runs as the member's Unix
user -- nbgrader's exchange relies on Unix permissions) plus, before the server starts:

1. the member's cgroups with the class's limits (``limits.apply``);
2. their rootless Podman service, moved into those cgroups as soon as it answers, with the
   lesson images loaded (``engines.ensure_engine``);
3. the server itself joins the cgroups between fork and exec, then drops to the user.

Its environment names the engine (DOCKER_HOST, the student's socket -- never the host's), the
Jupyter config with the exchange (JUPYTER_CONFIG_PATH) and what ``portbinding doctor`` shows.
When the server stops, their engine stops with it, containers included.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from portbinding.hub import engines, limits
from portbinding.hub.config import HubSettings
from portbinding.hub.roster import read_roster
from portbinding.hub.student import HUB_ENGINE_ENV, HUB_ENV, HUB_LIMITS_ENV
from portbinding.settings import RUN_ENV

USER_PATH = "/usr/local/bin:/usr/bin:/bin"


class CourseSpawner(LocalProcessSpawner):  # type: ignore[misc]  # JupyterHub ships no type hints
    """LocalProcessSpawner with a rootless engine and a cgroup per member."""

    settings_file = Unicode("", config=True, help="The hub's hub.json.")

    def _settings(self) -> HubSettings:
        return HubSettings.load(Path(self.settings_file))

    def _role(self, settings: HubSettings) -> str:
        members = {m.id: m for m in read_roster(Path(settings.roster))}
        member = members.get(self.user.name)
        return "instructor" if member is not None and member.is_instructor else "student"

    async def start(self) -> Any:
        settings = self._settings()
        self._engine = await asyncio.to_thread(prepare, settings, self.user.name)
        return await super().start()

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        drop_privileges = super().make_preexec_fn(name)
        procs = [group / "cgroup.procs" for group in limits.groups(self._settings().name, name)]

        def preexec() -> None:
            # After fork, before exec and before dropping root: only root may move a process.
            for path in procs:
                with open(path, "w") as handle:
                    handle.write(str(os.getpid()))
            drop_privileges()

        return preexec

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        settings = self._settings()
        entry = pwd.getpwnam(self.user.name)
        engine = getattr(self, "_engine", None)
        url = engine.url if engine else f"unix:///run/user/{entry.pw_uid}/podman/podman.sock"
        env.update(
            {
                "PATH": f"{Path(settings.venv) / 'bin'}:{USER_PATH}",
                "XDG_RUNTIME_DIR": f"/run/user/{entry.pw_uid}",
                "DOCKER_HOST": url,
                "JUPYTER_CONFIG_PATH": str(settings.jupyter_dir(self._role(settings))),
                HUB_ENV: settings.name,
                HUB_ENGINE_ENV: engine.describe() if engine else url,
                HUB_LIMITS_ENV: settings.limits.describe(),
                **settings.extra_env,
            }
        )
        if os.environ.get(RUN_ENV):
            env[RUN_ENV] = os.environ[RUN_ENV]
        return env

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        await asyncio.to_thread(engines.stop_engine, self.user.name)


def prepare(settings: HubSettings, user: str) -> engines.StudentEngine:
    """A member's cgroups, then their engine (joined to the cgroups the moment it answers), then images."""
    uid = pwd.getpwnam(user).pw_uid
    limits.apply(settings.name, user, settings.limits)

    def join() -> None:
        limits.join_user_processes(settings.name, user, uid)

    return engines.ensure_engine(
        user,
        archive=engines.image_archive(settings.state, settings.images),
        references=settings.images,
        started=join,
    )
