"""The hub's login: roster members with the password ``portbinding hub init`` issued them.

Only hashes are kept (``roster.Credentials``); JupyterHub's ``allowed_users`` is the roster,
its ``admin_users`` the instructors. Imported by JupyterHub, inside the hub process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from portbinding.hub.roster import Credentials


class RosterAuthenticator(Authenticator):  # type: ignore[misc]  # JupyterHub ships no type hints
    """Checks a roster member's password against the hub's scrypt hashes."""

    credentials_file = Unicode("", config=True, help="The hub's credentials.json (id -> scrypt hash).")

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        username = str(self.normalize_username(str(data.get("username", ""))))
        password = str(data.get("password", ""))
        credentials = Credentials(Path(self.credentials_file))
        # scrypt takes ~50 ms of CPU on purpose: off the hub's event loop.
        if not (username and password):
            return None
        accepted: bool = await asyncio.to_thread(credentials.check, username, password)
        if accepted:
            return username
        self.log.warning("Failed login for %r", username[:40])
        return None
