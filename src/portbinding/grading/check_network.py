"""One network per Compose check (ex04): its services talk to each other, and to nothing else.

The grading network (:mod:`portbinding.grading.confine`) forbids traffic between containers;
ex04's API must reach its database, so each Compose check gets a bridge of its own:

* a fresh user-defined network (``pbl-<session>-net<N>``, bridge ``pblc<8 hex>``), labelled
  like every graded container, **without IP masquerading** (no way out to other machines) and
  removed when the check ends, whatever happened;
* never ``host``, never shared between checks: two submissions graded side by side are on two
  bridges, and a service of one can neither resolve nor reach the other's;
* the host's firewall, installed once for every such bridge (``-i pblc+``): the host accepts
  nothing from them but replies to connections it opened (docker-proxy's, towards a published
  port; the same ``PBL-GRADING`` chain as the grading network) and forwards nothing from them
  (DOCKER-USER sends them to ``PBL-CHECKS``, which ends in REJECT), except traffic that stays on
  the check's own bridge -- one ACCEPT per check at the top of ``PBL-CHECKS`` while it runs.

As for the grading network, grading fails closed (a rootful local Docker and root, or no check);
a learner's own check on their own engine gets the network, and the firewall where it can be had.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from portbinding.engine import Engine
from portbinding.grading.confine import (
    CHAIN,
    ConfinementUnavailable,
    _iptables,
    _run,
    install_firewall,
    is_grading,
)

LOGGER = logging.getLogger(__name__)

BRIDGE_PREFIX = "pblc"  # + 8 hex digits: an interface name has at most 15 characters
NETWORK_OPTIONS = {
    "com.docker.network.bridge.enable_ip_masquerade": "false",
    "com.docker.network.bridge.enable_icc": "true",
}
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


CHECKS_CHAIN = "PBL-CHECKS"


def generic_rules() -> list[tuple[str, list[str]]]:
    """The jumps every check bridge shares: to the host, replies only; forwarded, to PBL-CHECKS."""
    return [
        ("INPUT", ["-i", f"{BRIDGE_PREFIX}+", "-j", CHAIN]),
        ("DOCKER-USER", ["-i", f"{BRIDGE_PREFIX}+", "-j", CHECKS_CHAIN]),
    ]


def own_bridge_rule(bridge: str) -> list[str]:
    """Traffic that stays on one check's bridge (its services, to each other) is let through."""
    return ["-i", bridge, "-o", bridge, "-j", "ACCEPT"]


@contextlib.contextmanager
def check_network(engine: Engine, *, index: int) -> Iterator[str]:
    """A network for one check, firewalled where it can be; removed (with its rule) afterwards.

    Raises:
        ConfinementUnavailable: grading, and the network or its firewall cannot be had here.
    """
    strict = is_grading(engine)
    info = engine.info
    if strict and (info.kind != "docker" or info.rootless):
        raise ConfinementUnavailable(
            f"Grading a Compose file needs a rootful Docker Engine, but the engine is {info.kind}.",
            hint="grade on a machine with Docker Engine (see grader/README.md)",
        )
    name = f"pbl-{engine.session}-net{index}"
    bridge = f"{BRIDGE_PREFIX}{uuid.uuid4().hex[:8]}"
    labels = {**engine.labels, "portbinding.grading": "compose-network"}
    options = {**NETWORK_OPTIONS, "com.docker.network.bridge.name": bridge} if info.kind == "docker" else {}
    try:
        network = engine.client.networks.create(name, driver="bridge", options=options, labels=labels)
    except _ENGINE_ERRORS as error:
        raise ConfinementUnavailable(f"The network for this check could not be created: {error}") from error
    firewalled = False
    try:
        firewalled = _firewall(engine, bridge, strict=strict)
        yield name
    finally:
        if firewalled:
            with contextlib.suppress(ConfinementUnavailable):
                _run(_iptables(), ["-D", CHECKS_CHAIN, *own_bridge_rule(bridge)], check=False)
        _remove(network)


def _firewall(engine: Engine, bridge: str, *, strict: bool) -> bool:
    local = engine.info.url.startswith(("unix://", "http+unix://")) or engine.info.url == ""
    if not (local and os.geteuid() == 0 and Path("/sys/class/net", bridge).exists()):
        if strict:
            raise ConfinementUnavailable(
                "Grading a Compose file needs root on the engine's own machine, to firewall the check's "
                f"network (bridge {bridge}).",
                hint="run the grader as root, where the engine runs (see grader/README.md)",
            )
        return False
    install_firewall()  # the PBL-GRADING chain (replies only) that INPUT jumps to
    iptables = _iptables()
    if _run(iptables, ["-n", "-L", CHECKS_CHAIN], check=False) != 0:
        _run(iptables, ["-N", CHECKS_CHAIN])
    if _run(iptables, ["-C", CHECKS_CHAIN, "-j", "REJECT"], check=False) != 0:
        _run(iptables, ["-A", CHECKS_CHAIN, "-j", "REJECT"])  # last, whatever is inserted above it
    for chain, rule in generic_rules():
        if _run(iptables, ["-C", chain, *rule], check=False) != 0:
            _run(iptables, ["-I", chain, "1", *rule])
    _run(iptables, ["-I", CHECKS_CHAIN, "1", *own_bridge_rule(bridge)])
    return True


def _remove(network: docker.models.networks.Network) -> None:
    """Remove the check's network; its containers were removed first (by the judge)."""
    try:
        network.reload()
        for container in network.attrs.get("Containers") or {}:
            with contextlib.suppress(*_ENGINE_ERRORS):
                network.client.containers.get(container).remove(force=True)
        network.remove()
    except docker.errors.NotFound:
        return
    except _ENGINE_ERRORS as error:
        LOGGER.warning(
            "the check's network %s was kept (the session sweep removes it): %s", network.name, error
        )
