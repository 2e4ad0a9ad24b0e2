"""Diagnosis of a foreign container in states a stranger met: paused, sharing the host's network,
and fixed on a host port something else holds.

The FROM scratch busybox of tests/support/foreign.py, run with the docker CLI as a learner types
it. A paused container keeps its published ports (``docker port`` lists them), so the diagnosis
must too; a ``--network host`` container with no ``-p`` and no EXPOSE shares this machine's whole
socket table, so no listener there may be taken for the container's own port; and a printed fix
must not publish on a host port that is taken now (run here exactly as printed, no port swapped).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess

import pytest

from portbinding.diagnose import diagnose
from portbinding.engine import Engine, free_port
from portbinding.probe import probe_http, wait_until
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


def _as_printed(engine: Engine, command: str) -> None:
    """One fix command exactly as printed (host ports untouched), with the session's labels added."""
    words = shlex.split(command)
    if words[1] == "run":
        labels = [word for key, value in engine.labels.items() for word in ("--label", f"{key}={value}")]
        words = [*words[:2], *labels, *words[2:]]
    env = {**os.environ, "DOCKER_HOST": engine.info.url}
    done = subprocess.run(words, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, f"`{command}` as printed failed: {done.stderr.strip()}"


def test_a_publish_fix_avoids_a_host_port_something_else_holds(engine: Engine, busybox: str) -> None:
    """Unpublished on container port P while this machine's P is taken: -p P:P would fail, so not that."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        name = unique_name("taken")
        cli(engine, f"docker run -d --name {name} {busybox} {HTTPD} -p 0.0.0.0:{port}")
        found = _cause(engine, name, "not_published", when=lambda d: bool(d.evidence.sockets))
        line = found.fix.run_line or ""
        assert f":{port}:{port}" not in line and f"{port} is taken" in found.fix.summary, found.explain()
        for command in found.fix.commands:
            _as_printed(engine, command)
    fixed = _cause(engine, name, "ok")
    url = fixed.evidence.host_url or ""
    assert wait_until(lambda: probe_http(url).reachable, timeout=10), f"{url} after {found.fix.commands}"
