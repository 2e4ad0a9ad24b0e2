"""A remote engine named by DOCKER_HOST (tcp:// and ssh://): its ports open on its host, not here.

The "remote host" is a network namespace with its own dockerd and sshd (see netns.py), so the
published ports really are somewhere other than 127.0.0.1 -- a probe of localhost would miss.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from portbinding.builder import BuiltImage
from portbinding.command import RunSpec
from portbinding.diagnose import diagnose
from portbinding.discovery import connect, find_engine
from portbinding.engine import SESSION_LABEL, Engine, free_port
from portbinding.ports import PortMapping
from portbinding.probe import probe_http, wait_until, wait_until_ready
from portbinding.settings import PUBLISH_HOST_ENV
from tests.support.netns import RemoteHost, remote_host

pytestmark = pytest.mark.engines("docker", reason="starts a second dockerd in its own network namespace")

IMAGE = "portbinding/scoring-api:1.0"  # the smallest course image that serves HTTP
PORT = 8000


@pytest.fixture(scope="module")
def remote(docker_client: docker.DockerClient, course_images: list[BuiltImage]) -> Iterator[RemoteHost]:
    # course_images: the image to copy must be built (or up to date) on the course engine first.
    if os.geteuid() != 0:
        pytest.skip("a network namespace with its own dockerd and sshd needs root")
    with remote_host(docker_client, [IMAGE]) as host:
        yield host


@pytest.fixture(params=["tcp", "ssh"])
def docker_host(request: pytest.FixtureRequest, remote: RemoteHost) -> Iterator[str]:
    """DOCKER_HOST naming the remote engine, as a learner would set it (CLI subprocesses inherit it)."""
    url = remote.tcp_url if request.param == "tcp" else remote.ssh_url
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", url)
        patch.setenv("HOME", str(remote.home))  # ssh:// finds the test's key and known_hosts there
        patch.delenv(PUBLISH_HOST_ENV, raising=False)
        yield url


def _spec(host_port: int, **env: str) -> RunSpec:
    # Published on every address of the remote host: 127.0.0.1 there is not reachable from here.
    return RunSpec(image=IMAGE, publish=(PortMapping(PORT, "tcp", "", host_port),), env=tuple(env.items()))


def _left_on(remote: RemoteHost, engine: Engine) -> list[str]:
    found = remote.client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={engine.session}"})
    return [str(c.name) for c in found]


def test_published_port_is_reached_at_the_engines_host_not_localhost(
    docker_host: str, remote: RemoteHost
) -> None:
    """Engine.connect() finds the remote engine; its container answers at the namespace address only."""
    host_port = free_port()  # free here too, so nothing of ours can answer on 127.0.0.1
    with Engine.connect(owner="tests") as engine:
        assert (engine.info.url, engine.info.source) == (docker_host, "DOCKER_HOST"), engine.info
        assert engine.publish_host == remote.address, f"ports publish at {engine.publish_host}"
        described = engine.info.describe()
        assert f"reached at {remote.address} (the engine's host, not localhost" in described, described
        container = engine.run(_spec(host_port))
        status = remote.client.containers.get(str(container.id)).status
        assert status == "running", f"the container runs on the remote engine, not here: {status}"

        answer = wait_until_ready(engine, container, PORT, path="/health", timeout=30)
        assert answer.ok, answer.detail
        url = engine.url(container, PORT, "/health")
        assert url == f"http://{remote.address}:{host_port}/health", url
        local = probe_http(f"http://127.0.0.1:{host_port}/health", timeout=2)
        assert not local.reachable, f"127.0.0.1:{host_port} answered: {local.detail}"
    left = _left_on(remote, engine)
    assert left == [], f"the session left containers on the remote engine: {left}"


def test_loopback_server_on_the_remote_engine_is_diagnosed(docker_host: str, remote: RemoteHost) -> None:
    """A server bound to the container's 127.0.0.1 is loopback_only, probed at the remote host."""
    with Engine.connect(owner="tests") as engine:
        container = engine.run(_spec(free_port(), BIND_HOST="127.0.0.1"))
        listening = wait_until(
            lambda: any(item.port == PORT for item in engine.listeners(container)),
            timeout=30,
            alive=lambda: engine.is_running(container),
        )
        assert listening, engine.logs(container)
        found = diagnose(engine, container, container_port=PORT, expect="http", path="/health")
        assert found.cause == "loopback_only", found.explain()
        probe = found.evidence.host_probe
        assert probe is not None, "the diagnosis did not probe from the host"
        assert str(probe["target"]).startswith(f"http://{remote.address}:"), probe
    left = _left_on(remote, engine)
    assert left == [], f"the session left containers on the remote engine: {left}"


def test_doctor_reports_the_remote_host(docker_host: str, remote: RemoteHost) -> None:
    """`portbinding doctor --json` with DOCKER_HOST set names the remote host as the publish host."""
    result = subprocess.run(
        [sys.executable, "-m", "portbinding", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    engine = json.loads(result.stdout)["engine"]
    assert (engine["url"], engine["publish_host"]) == (docker_host, remote.address), engine
    assert engine["publish_host_reason"].startswith("the engine's host, not localhost"), engine


def test_ssh_config_alias_publishes_on_the_hostname_it_names(
    remote: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DOCKER_HOST=ssh://<alias from ~/.ssh/config>: probes go to its HostName, which resolves."""
    shutil.copytree(remote.home / ".ssh", tmp_path / ".ssh")
    (tmp_path / ".ssh" / "config").write_text(f"Host remote-box\n  HostName {remote.address}\n  User root\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", "ssh://remote-box")
    monkeypatch.delenv(PUBLISH_HOST_ENV, raising=False)
    client, info = find_engine()
    client.close()
    assert (info.url, info.publish_host) == ("ssh://remote-box", remote.address), info


def test_unknown_ssh_host_key_is_refused_with_a_clear_error(
    remote: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No known_hosts entry: an engine error naming the cause (never a prompt, never a hang)."""
    (tmp_path / ".ssh").mkdir(mode=0o700)
    shutil.copy(remote.home / ".ssh" / "id_ed25519", tmp_path / ".ssh")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(docker.errors.DockerException, match="not found in known_hosts"):
        connect(remote.ssh_url, timeout=5)
