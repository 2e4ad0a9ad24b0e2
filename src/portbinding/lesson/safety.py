"""Is publishing on 127.0.0.1 private on *this* engine? It depends on the engine and its version.

``-p 127.0.0.1:HOST:PORT`` opens the host port on loopback only, but on Docker Engine for Linux
before 28.0 a machine on the same network segment that routes the container subnet through your
machine reached the container directly, published on 127.0.0.1 or not (moby/moby#45610; Docker
28.0 drops such traffic). From 28.2.0 to 28.3.2 a firewalld reload removed that protection again
(CVE-2025-54388, fixed in 28.3.3). Docker Desktop is not affected. Sources in :data:`SOURCES`.
"""

from __future__ import annotations

import re

from portbinding.engine import Engine
from portbinding.lesson.wire import engine_row

SOURCES = (
    "https://www.docker.com/blog/docker-engine-28-hardening-container-networking-by-default/",
    "https://github.com/moby/moby/issues/45610",
    "https://github.com/moby/moby/security/advisories/GHSA-x4rx-4gw3-53p4 (CVE-2025-54388)",
    "https://docs.docker.com/engine/network/packet-filtering-firewalls/ (DOCKER-USER rules)",
)
SAFE_FROM = (28, 3, 3)
_YOURS = "-p 127.0.0.1:... keeps the container to this machine."
_ADVICE = (
    "Upgrade Docker Engine to 28.3.3 or later. Until then, do not count on 127.0.0.1 on a network you do "
    "not trust (a café, a shared office LAN): stop exercise servers you are not using, and if you manage "
    "the firewall, drop traffic from your network interface to container addresses in the DOCKER-USER "
    "chain (see Docker's packet filtering guide)."
)


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """``"20.10.24+dfsg1"`` -> ``(20, 10, 24)``; None when the text has no version in front."""
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def loopback_publish_safety(engine: Engine) -> str:
    """Whether ``-p 127.0.0.1:…`` keeps a container to this machine, on the learner's engine, in words."""
    found = engine_row(engine)
    key = found.row.key if found.row else ""
    version = engine.info.version
    if key == "process":
        return "The course's process engine publishes on the address you name and routes nothing: " + _YOURS
    if key == "desktop":
        return (
            f"Docker Desktop {version}: the containers live in a VM your network cannot route to; " + _YOURS
        )
    if key in ("podman4", "podman5"):
        return (
            f"Rootless Podman {version}: the host port is a socket of your own user on 127.0.0.1, and the "
            "container network is not routable from outside; " + _YOURS
        )
    if key == "podman-rootful":
        return (
            f"Rootful Podman {version}: not measured by this course. Its NAT and FORWARD rules are "
            "netavark's; check that your firewall drops forwarded traffic from your network to containers."
        )
    parsed = version_tuple(version)
    if parsed is None:
        return f"Docker {version}: the course cannot read this version. {_ADVICE}"
    if parsed < (28, 0, 0):
        return (
            f"Docker Engine {version} is older than 28.0: a machine on your network segment that routes "
            f"container addresses through yours can reach the container directly, 127.0.0.1 or not. {_ADVICE}"
        )
    if parsed < SAFE_FROM and parsed >= (28, 2, 0):
        return (
            f"Docker Engine {version}: private until firewalld is reloaded, which removes the rules that "
            f"keep your network out (CVE-2025-54388). {_ADVICE}"
        )
    return f"Docker Engine {version}: 28.0 and later drop traffic routed to containers; " + _YOURS
