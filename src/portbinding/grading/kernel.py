"""A Jupyter kernel manager that starts every kernel inside a grading sandbox.

nbgrader executes notebooks through nbclient, which asks a kernel manager to start the
kernel. This one wraps the kernel's command in the jail (``Sandbox.jail_command``), gives it
a clean environment with the door's address, and talks to it over ZeroMQ *ipc* (Unix
sockets in the sandbox folder) because the kernel's network namespace has no route to the
grader's TCP ports. When the kernel is shut down, the sandbox is closed and what it saw kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from portbinding.grading.sandbox import SESSION_ENV, Sandbox

LOGGER = logging.getLogger(__name__)


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel in a ``Sandbox``; ``violations`` holds what it did wrong once it is shut down."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sandbox: Sandbox | None = None
        self.violations: list[dict[str, Any]] = []
        # Folders whose regular files vouch for the ones in the kernel's cwd (see jail._copy_submission);
        # set by SandboxedExecute. Without them, no file of the cwd is copied into the sandbox.
        self.copy_check_against: list[str] = []

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        copy_from = kw.get("cwd")
        self.sandbox = Sandbox.create(session=os.environ.get(SESSION_ENV) or None)
        self.sandbox.on_violation = self._on_violation
        # Set before the connection file is written: the kernel binds Unix sockets in its folder.
        self.transport = "ipc"
        self.ip = self.sandbox.ipc_prefix
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        env = self.sandbox.kernel_env(dict(kw.get("env") or {}))
        kw["env"] = {**env}
        kw["cwd"] = str(self.sandbox.root)
        copy = None
        if copy_from and self.copy_check_against:
            copy = {"source": str(copy_from), "check_against": list(self.copy_check_against)}
        command = self.sandbox.jail_command(
            kernel_cmd, connection_file=self.connection_file, copy=copy, env=env
        )
        LOGGER.info(
            "kernel sandbox %s (uid %d, session %s)",
            self.sandbox.root,
            self.sandbox.uid,
            self.sandbox.session,
        )
        return command, kw

    def _on_violation(self, code: str) -> None:
        """A rule was broken (e.g. the engine socket was touched): stop the kernel now, not at the timeout."""
        LOGGER.warning("sandbox violation %s: stopping the kernel", code)
        self.kill_sandbox()

    def kill_sandbox(self) -> None:
        """Kill the kernel's process group (jail, bubblewrap, kernel); the sandbox goes with bubblewrap."""
        provisioner = self.provisioner
        pgid = getattr(provisioner, "pgid", None)
        if pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self.sandbox is not None and not restart:
            self.violations = self.sandbox.close()
