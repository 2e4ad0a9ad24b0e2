"""Diagnosis of a foreign container in states a stranger met: paused, and sharing the host's network.

The FROM scratch busybox of tests/support/foreign.py, run with the docker CLI as a learner types
it. A paused container keeps its published ports (``docker port`` lists them), so the diagnosis
must too; a ``--network host`` container with no ``-p`` and no EXPOSE shares this machine's whole
socket table, so no listener there may be taken for the container's own port.
"""

from __future__ import annotations

import pytest

from portbinding.diagnose import diagnose
from portbinding.engine import Engine, free_port
from tests.engine.test_diagnose_foreign import _cause, _fix_makes_it_reachable
from tests.support.foreign import HTTPD, busybox, cli, unique_name

__all__ = ["busybox"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.engines("docker", reason="builds a FROM scratch image and runs docker CLI lines")


def test_a_paused_container_keeps_its_published_ports_and_unpausing_fixes_it(
    engine: Engine, busybox: str
) -> None:
    name = unique_name("paused")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox} {HTTPD} -p 0.0.0.0:80")
    running = _cause(engine, name, "ok")
    cli(engine, f"docker pause {name}")
    found = _cause(engine, name, "stopped", when=lambda d: d.evidence.status == "paused")
    assert found.evidence.published == running.evidence.published != [], (
        f"a paused container's ports stay published (docker port lists them)\n{found.explain()}"
    )
    assert "published: nothing" not in found.explain(), found.explain()
    assert found.fix.commands == (f"docker unpause {name}",), found.fix
    _fix_makes_it_reachable(engine, found)


def test_network_host_without_a_port_names_no_listener_of_the_host_as_its_own(
    engine: Engine, busybox: str
) -> None:
    name, port = unique_name("hostnoport"), free_port()
    cli(engine, f"docker run -d --name {name} --network host {busybox} {HTTPD} -p 0.0.0.0:{port}")
    found = diagnose(engine, name)
    assert (found.cause, found.rule) == ("host_network", "host_port_unknown"), (
        f"with no port to go by, the host's first listener is not the container's\n{found.explain()}"
    )
    assert found.evidence.container_port is None and not found.evidence.sockets, found.explain()
    assert "--port PORT" in found.fix.summary and not found.fix.commands, found.fix
    # Named, the port is judged as usual: the server answers on this machine's own port.
    named = _cause(engine, name, "ok", container_port=port)
    assert named.evidence.listeners == [f"0.0.0.0:{port}"], named.explain()
