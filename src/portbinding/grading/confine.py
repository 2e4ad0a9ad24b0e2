"""Graded containers with no way out: the grading network, its firewall, and the create options.

A graded container runs learner-chosen arguments (or a learner's own app) on the grading
machine, so the grader, not the image and not the answer, decides how it runs:

* **Its own network.** ``portbinding-grading``, a bridge (``pbl-grading0``) with IP
  masquerading and inter-container traffic switched off: no NAT to the outside, no traffic
  between two graded containers. Docker does not stop a container from reaching the *host's*
  own services (the bridge gateway, or any address of the host): a firewall chain does -- on
  the grading bridge only, the host accepts nothing but replies to connections it opened
  (docker-proxy's, towards the container), and forwards nothing from it. The network is
  created on demand, labelled, and removed when no container uses it; the firewall rules are
  keyed on the bridge's fixed name, so they stay valid across re-creations.
* **Published on 127.0.0.1 only** (``publish_ip``), as one mapping (the judge's policy).
* **As a non-root user whatever the image says** (``USER 00``, ``USER $U`` or a copied
  /etc/passwd make no difference: the uid is numeric and set at create time), with every
  capability dropped, ``no-new-privileges``, a read-only root file system with a small tmpfs
  at /tmp (HOME points there: Jupyter writes its runtime files under HOME), and a capped
  json-file log.

Grading (an engine session owned by ``grader``) fails closed: without the network and its
firewall the check is not run (the grader's fault, never the learner's). A learner's own
checks on their own machine get the same container options, and the network when their
engine is a local Docker; the firewall needs root and the engine's own machine, so it is
installed only where both hold (a remote engine's host is not ours to change).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig

from portbinding.engine import Engine
from portbinding.errors import EngineUnavailable
from portbinding.probe import wait_until

LOGGER = logging.getLogger(__name__)

NETWORK = "portbinding-grading"
BRIDGE = "pbl-grading0"
CHAIN = "PBL-GRADING"
USER = "1000:1000"  # the course images' own "learner"; any non-zero uid would do
TMPFS = "rw,nosuid,nodev,size=64m,mode=1777"
HOME = "/tmp"
LOG_LIMITS = {"max-size": "1m", "max-file": "2"}
NETWORK_OPTIONS = {
    "com.docker.network.bridge.name": BRIDGE,
    "com.docker.network.bridge.enable_ip_masquerade": "false",
    "com.docker.network.bridge.enable_icc": "false",
}
_IPTABLES_TIMEOUT_S = 15.0
_NETWORK_WAIT_S = 20.0
_network_lock = threading.Lock()


class ConfinementUnavailable(EngineUnavailable):
    """The grader cannot confine graded containers here; grading must not go on without it."""


def container_options(network: str | None) -> dict[str, Any]:
    """docker-py ``containers.create`` options for a graded container (see the module docstring)."""
    options: dict[str, Any] = {
        "user": USER,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": TMPFS},
        "log_config": LogConfig(type="json-file", config=dict(LOG_LIMITS)),
    }
    if network is not None:
        options["network"] = network
    return options


def publish_ip(engine: Engine) -> str:
    """The host address graded ports are published on: loopback, unless the engine is remote.

    A remote engine's ports must open where its probes reach them (its own address); that
    engine is a learner's own, since grading refuses remote engines (see ``Confinement``).
    """
    return "127.0.0.1" if engine.publish_host in ("127.0.0.1", "localhost", "::1") else ""


def is_grading(engine: Engine) -> bool:
    """Whether checks on this engine session are the grader's (strict) or a learner's own."""
    return engine.owner == "grader"


class Confinement:
    """The grading network of one engine, made on demand and removed when unused."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.strict = is_grading(engine)

    def options(self) -> dict[str, Any]:
        """The create options for the next graded container; the network exists when this returns."""
        return container_options(self.ensure_network())

    def ensure_network(self) -> str | None:
        """The grading network's name (created, and its firewall installed, if needed).

        None only for a learner's own checks on an engine where it cannot be had (Podman,
        the process engine, an engine that refused); grading raises ConfinementUnavailable.
        """
        info = self.engine.info
        if info.kind != "docker" or info.rootless:
            if self.strict:
                raise ConfinementUnavailable(
                    f"Grading needs a rootful Docker Engine (its bridge network and the host's firewall "
                    f"confine graded containers), but the engine is {'rootless ' if info.rootless else ''}"
                    f"{info.kind}.",
                    hint="grade on a machine with Docker Engine (see grader/README.md)",
                )
            return None
        local = _is_local(info.url)
        if self.strict and not local:
            raise ConfinementUnavailable(
                f"The grading engine at {info.url} is remote: the firewall that keeps graded containers "
                "away from the host's own services must be installed on the engine's machine.",
                hint="run the grader on the engine's own machine",
            )
        try:
            with _network_lock:
                _ensure_network(self.engine.client, labels=_network_labels(self.engine))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            if self.strict:
                raise ConfinementUnavailable(f"The grading network could not be created: {error}") from error
            LOGGER.warning("no grading network on this engine (%s); using its default network", error)
            return None
        if local and os.geteuid() == 0:
            if not Path("/sys/class/net", BRIDGE).exists():
                # A "local" socket into a VM (Docker Desktop): the bridge, and its firewall, live there.
                if self.strict:
                    raise ConfinementUnavailable(
                        f"The grading network's bridge {BRIDGE} is not on this machine, so its firewall "
                        "cannot be installed here (is the engine running in a virtual machine?).",
                        hint="run the grader where the engine runs",
                    )
                return NETWORK
            install_firewall()
        elif self.strict:
            raise ConfinementUnavailable(
                "Grading needs root to install the grading network's firewall.",
                hint="run the grader as root (see grader/README.md)",
            )
        return NETWORK

    def release(self) -> None:
        """Remove the grading network if no container uses it (another check may, or start to)."""
        try:
            network = self.engine.client.networks.get(NETWORK)
            network.reload()
            if network.attrs.get("Containers"):
                return
            network.remove()
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            LOGGER.debug("grading network kept: %s", error)  # an endpoint arrived in between: in use
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            LOGGER.warning("could not remove the grading network: %s", error)


def _is_local(url: str) -> bool:
    return urlparse(url).scheme in ("unix", "http+unix", "npipe", "")


def _network_labels(engine: Engine) -> dict[str, str]:
    # Shared by every session that grades at the same time: the course and owner, no session.
    labels = {key: value for key, value in engine.labels.items() if key != "portbinding.session"}
    return {**labels, "portbinding.grading": "network"}


def _ensure_network(client: docker.DockerClient, *, labels: dict[str, str]) -> None:
    """Make the grading network exist; other graders create and remove it at the same time."""
    refused: list[docker.errors.APIError] = []

    def attempt() -> bool:
        try:
            existing = client.networks.get(NETWORK)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            options = existing.attrs.get("Options") or {}
            if any(options.get(key) != value for key, value in NETWORK_OPTIONS.items()):
                # Someone made a network by that name without our options: never run graded containers on it.
                raise ConfinementUnavailable(
                    f"A network called {NETWORK} exists without the grading options {NETWORK_OPTIONS}.",
                    hint=f"remove it (docker network rm {NETWORK}); the grader makes its own",
                )
            return True
        try:
            client.networks.create(
                NETWORK, driver="bridge", options=dict(NETWORK_OPTIONS), labels=labels, check_duplicate=True
            )
        except docker.errors.APIError as error:
            # 409: another grader created it a moment ago; 403 "same bridge name": another grader's
            # release is still removing the previous one. Either way: look again.
            if error.status_code not in (403, 409):
                raise
            refused.append(error)
            return False
        return True

    if not wait_until(attempt, timeout=_NETWORK_WAIT_S, first_interval=0.05, max_interval=0.5):
        raise refused[-1]


# ------------------------------------------------------------------------------------ firewall


def firewall_rules() -> list[tuple[str, list[str]]]:
    """(chain, rule) pairs, in order: accept replies, reject the rest, from the grading bridge."""
    return [
        (CHAIN, ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]),
        (CHAIN, ["-j", "REJECT"]),
    ]


def install_firewall() -> None:
    """Install (idempotently) the rules that keep the grading bridge away from the host.

    INPUT from the bridge goes through ``PBL-GRADING`` (replies to the host's own connections
    only: docker-proxy reaching a published port still works); anything the bridge would have
    the host forward is rejected in DOCKER-USER, the chain Docker evaluates first and never
    rewrites (FORWARD where there is none).
    """
    iptables = _iptables()
    if _run(iptables, ["-n", "-L", CHAIN], check=False) != 0:
        _run(iptables, ["-N", CHAIN])
    for chain, rule in firewall_rules():
        if _run(iptables, ["-C", chain, *rule], check=False) != 0:
            _run(iptables, ["-A", chain, *rule])
    jumps = [("INPUT", ["-i", BRIDGE, "-j", CHAIN])]
    forward = "DOCKER-USER" if _run(iptables, ["-n", "-L", "DOCKER-USER"], check=False) == 0 else "FORWARD"
    jumps.append((forward, ["-i", BRIDGE, "-j", "REJECT"]))
    for chain, rule in jumps:
        if _run(iptables, ["-C", chain, *rule], check=False) != 0:
            _run(iptables, ["-I", chain, "1", *rule])


def _iptables() -> str:
    found = shutil.which("iptables") or shutil.which("iptables", path="/usr/sbin:/sbin")
    if found is None:
        raise ConfinementUnavailable(
            "iptables is not installed, so the grading network's firewall cannot be set up.",
            hint="install it (apt-get install iptables); Docker Engine needs it too",
        )
    return found


def _run(iptables: str, arguments: list[str], *, check: bool = True) -> int:
    try:
        done = subprocess.run(
            [iptables, "-w", "5", *arguments],
            capture_output=True,
            text=True,
            timeout=_IPTABLES_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfinementUnavailable(f"iptables did not run: {error}") from error
    if check and done.returncode != 0:
        raise ConfinementUnavailable(
            f"iptables {' '.join(arguments)} failed: {done.stderr.strip() or done.returncode}"
        )
    return done.returncode
