"""A Jupyter server extension: nbgrader's Validate button no longer freezes JupyterLab.

nbgrader 0.9.6 validates inside its request handler, on the server's event loop: while the
student's checks run (they start containers: tens of seconds), the server answers nothing else --
no saves, no kernels, no terminal -- and JupyterLab shows "Server Connection Error" over the work.
``portbinding lab`` loads this extension, which makes the handler run the same validation on a
worker thread and wait for it without blocking the loop. Nothing else about Validate changes (the
same ``validate_notebook``, the same answer).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MODULE = "portbinding.validate_server"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": MODULE}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    if patch_validate_handler():
        server_app.log.info("portbinding: nbgrader's Validate runs off the server's event loop")


def patch_validate_handler() -> bool:
    """Make nbgrader's Validate handler non-blocking; False when nbgrader is not installed."""
    try:
        from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler
    except ImportError:
        return False
    from tornado import web

    if getattr(ValidateAssignmentHandler, "_portbinding_off_loop", False):
        return True

    @web.authenticated
    async def post(self: Any) -> None:
        try:
            path = self.get_argument("path")
        except web.MissingArgumentError:
            path = self.get_json_body()["path"]
        output = await asyncio.get_running_loop().run_in_executor(None, self.validate_notebook, path)
        self.finish(json.dumps(output))

    ValidateAssignmentHandler.post = post
    ValidateAssignmentHandler._portbinding_off_loop = True
    return True
