"""Graded containers have no way out: attacks a student who read the source would try, on the real engine.

Each test sends requests the way a hostile notebook would (through the Judge, as the door
does) and looks at the container the grader really started: from the inside (``docker
exec``: its uid, capabilities, file system, what it can connect to) and from the engine
(where it is published, its log files, its writable layer). The Judge runs as the grader's
own (``owner="grader"``): the strict mode, which fails closed without its network.
"""

from __future__ import annotations

import base64
import contextlib
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from portbinding.command import RunSpec
from portbinding.discovery import find_engine
from portbinding.engine import Engine
from portbinding.grading.confine import BRIDGE, NETWORK, Confinement
from portbinding.grading.judge import Judge
from portbinding.grading.protocol import CheckResult
from portbinding.ports import PortMapping
from portbinding.probe import ProbeResult, probe_http, wait_until

NOTEBOOK = "portbinding/notebook:1.0"
# Run inside a graded container with its own python3: one TCP connection attempt per target.
CONNECT = r"""
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    sock = socket.socket()
    sock.settimeout(3)
    try:
        sock.connect((host, int(port)))
        print(target, "connected")
    except OSError as error:
        print(target, "failed", type(error).__name__)
    finally:
        sock.close()
"""
# A TCP service that accepts and hangs up (no name lookups: the other "machine" has no DNS).
ACCEPTOR = r"""
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    server.accept()[0].close()
"""
# Reads, from inside, what the grader's create options should have done.
SELF = r"""
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print("uid", os.getuid(), "gid", os.getgid())
print("caps", status["CapEff"].strip(), "nonewprivs", status["NoNewPrivs"].strip())
print("home", os.environ.get("HOME"))
for path in ("/pwned", "/tmp/flood"):
    written = 0
    try:
        with open(path, "wb") as out:
            while written < 1536 * 2**20:  # 1.5 GB, as the attack in the issue
                out.write(b"0" * 2**20)
                out.flush()
                written += 2**20
    except OSError as error:
        print("write", path, written // 2**20, "MB then", type(error).__name__)
    else:
        print("write", path, written // 2**20, "MB then nothing")
    if os.path.exists(path):
        os.remove(path)  # the server in this container needs its /tmp to go on
"""


@dataclass
class Spy:
    """Observations of the containers the Judge started, taken just before it judged each one."""

    look: Callable[[Engine, Container], dict[str, Any]]
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def engine(docker_client: docker.DockerClient) -> Iterator[Engine]:
    """The grader's own engine session (strict confinement); nothing of it may remain."""
    if subprocess.run(["id", "-u"], capture_output=True, text=True, check=True).stdout.strip() != "0":
        pytest.fail("the grader's firewall needs root")
    client, info = find_engine()
    grading = Engine(client, info, owner="grader")
    yield grading
    left = grading.course_containers(session=grading.session)
    grading.cleanup(session=grading.session)
    assert not left, f"checks left containers behind: {[c.name for c in left]}"
    with contextlib.suppress(docker.errors.NotFound):
        network = client.networks.get(NETWORK)
        assert network.attrs.get("Containers"), "the grading network outlived its last container"


@pytest.fixture
def judge(engine: Engine) -> Judge:
    return Judge(engine)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Spy]:
    """Look inside every container the Judge starts, right before it is judged (or right after)."""

    def install(look: Callable[[Engine, Container], dict[str, Any]], *, after: bool = False) -> Spy:
        spy = Spy(look)
        judged = Judge._judge

        def watching(self: Judge, container: Container, *args: Any) -> CheckResult:
            if not after:
                spy.seen.append(look(self.engine, container))
            result = judged(self, container, *args)
            if after:  # the container is still there: the Judge removes it once judged
                spy.seen.append(look(self.engine, container))
            return result

        monkeypatch.setattr(Judge, "_judge", watching)
        return spy

    return install


def _inside(engine: Engine, container: Container, script: str, *args: str) -> str:
    return engine.exec(container, ["python3", "-c", script, *args], timeout=60).output


def _host_address() -> str:
    """This machine's address on its default route (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))
        return str(sock.getsockname()[0])


@contextlib.contextmanager
def _host_service() -> Iterator[int]:
    """A TCP service of the grading machine on every address (what a graded container must not reach)."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen(8)
        server.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    server.accept()[0].close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield int(server.getsockname()[1])
        finally:
            stop.set()
            thread.join(timeout=5)


@contextlib.contextmanager
def _outside_host() -> Iterator[str]:
    """Another machine beyond the grading host ("the internet"): a network namespace over a veth
    pair, routed both ways, with a TCP service on port 80. Yields its address.
    """
    octet = random.randrange(256)
    netns, near, far = f"pbl-out-{octet}", f"pblo{octet}h", f"pblo{octet}n"
    local, address = f"10.234.{octet}.1", f"10.234.{octet}.2"

    def ip(*words: str) -> None:
        subprocess.run(["ip", *words], check=True, capture_output=True, timeout=30)

    with contextlib.ExitStack() as stack:
        ip("netns", "add", netns)
        stack.callback(subprocess.run, ["ip", "netns", "del", netns], timeout=30, check=False)
        ip("link", "add", near, "type", "veth", "peer", "name", far, "netns", netns)
        stack.callback(subprocess.run, ["ip", "link", "del", near], timeout=30, check=False)
        ip("addr", "add", f"{local}/30", "dev", near)
        ip("link", "set", near, "up")
        ip("-n", netns, "addr", "add", f"{address}/30", "dev", far)
        ip("-n", netns, "link", "set", far, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        # A route back to everything, so that only the grader's rules can stop a reply.
        ip("-n", netns, "route", "add", "default", "via", local)
        server = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c", ACCEPTOR, address, "80"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(server.wait, timeout=10)
        stack.callback(server.kill)
        up = wait_until(lambda: _accepts(address, 80), timeout=10, alive=lambda: server.poll() is None)
        assert up, "the outside host's service did not start"
        yield address


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


# ------------------------------------------------------------------------------------ policy


@pytest.mark.parametrize(
    ("line", "phrase"),
    [
        (f"docker run -d -p 1-65535 {NOTEBOOK}", "65535 port mapping(s)"),
        (f"docker run -d -p 1-65535:1-65535 {NOTEBOOK}", "65535 port mapping(s)"),
        (f"docker run -d -p 8000-8150:8888 {NOTEBOOK}", "range of host ports"),
        (f"docker run -d -p 8888:8888 -p 8889:8888 {NOTEBOOK}", "exactly one port per check"),
        (f"docker run -d -P -p 8888:8888 {NOTEBOOK}", "and -P"),
    ],
)
def test_more_than_one_published_port_is_refused_before_anything_runs(
    judge: Judge, engine: Engine, line: str, phrase: str
) -> None:
    """`-p 1-65535` cost 300 docker-proxy processes for 150 ports: every range and extra -p is refused."""
    started = time.time()
    result = judge.handle({"kind": "check_run", "line": line, "container_port": 8888})
    assert not result.passed and result.cause == "refused", result
    assert phrase in result.message and "Next step" in result.message, result.message
    assert not _created_since(engine, started), "a refused line started a container"


def _created_since(engine: Engine, started: float) -> list[dict[str, Any]]:
    """The containers this engine session created since ``started`` (removed ones too)."""
    return list(
        engine.client.events(
            since=int(started) - 1,
            until=int(time.time()) + 1,
            decode=True,
            filters={
                "type": "container",
                "event": "create",
                "label": f"portbinding.session={engine.session}",
            },
        )
    )


@pytest.mark.parametrize(
    "command",
    [
        "sh -c 'id > /tmp/x'",
        "python3 -c 'import os; os.system(\"id\")'",
        "python3 /app/app.py --anything",
    ],
)
def test_an_image_without_entrypoint_runs_only_its_own_program(judge: Judge, command: str) -> None:
    """Words after an image with no ENTRYPOINT would replace its program: the grader refuses them."""
    line = f"docker run -d -p 8000:8000 portbinding/scoring-api:1.0 {command}"
    result = judge.handle(
        {"kind": "check_run", "line": line, "container_port": 8000, "expect": "http", "path": "/health"}
    )
    assert not result.passed and result.cause == "refused", result
    assert "takes no arguments" in result.message, result.message


@pytest.mark.parametrize(
    "image",
    [
        "portbinding/notebook:1.0\nRUN exit 42",
        "portbinding/notebook:1.0 AS base\nCOPY --from=portbinding/notebook-loopback:1.0 /etc /x\n#",
        "portbinding/scoring-api:1.0",
        "portbinding/notebook:latest",
        "portbinding/notebook@sha256:" + "0" * 64,
        "  portbinding/notebook:1.0",
    ],
)
def test_check_config_builds_only_the_course_config_images(
    judge: Judge, image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image argument selects an entry of a fixed map; its text never reaches a Dockerfile."""
    builds: list[Any] = []  # every build docker-py sends in this process (the engine's image list is shared)

    def build(*args: Any, **kwargs: Any) -> Iterator[Any]:
        builds.append(kwargs)
        return iter(())

    monkeypatch.setattr(docker.api.build.BuildApiMixin, "build", build)
    result = judge.handle({"kind": "check_config", "line": 'c.ServerApp.ip = ""', "image": image})
    assert not result.passed and result.cause == "invalid", result
    assert "check_config works on portbinding/notebook" in result.message, result.message
    assert not builds, f"an image was built for a refused request: {builds}"


# ------------------------------------------------------------------------------- containers


def test_a_graded_container_runs_confined_whatever_the_line_asks(
    judge: Judge, engine: Engine, spy: Any
) -> None:
    """Non-root, no capabilities, no-new-privileges, read-only root, capped /tmp, 127.0.0.1, capped logs."""

    def look(engine: Engine, container: Container) -> dict[str, Any]:
        container.reload()
        return {
            "self": _inside(engine, container, SELF),
            "ports": [(p.host_ip, p.host_port) for p in engine.ports(container)],
            "host": container.attrs["HostConfig"],
            "networks": sorted(container.attrs["NetworkSettings"]["Networks"]),
        }

    seen = spy(look)
    line = f"docker run -d -e HOME=/root -p 0.0.0.0:8888:8888 {NOTEBOOK}"
    result = judge.handle({"kind": "check_run", "line": line, "container_port": 8888})
    assert result.passed, result.message
    (facts,) = seen.seen
    inside = facts["self"]
    assert "uid 1000 gid 1000" in inside, inside
    assert "caps 0000000000000000 nonewprivs 1" in inside, inside
    assert "home /tmp" in inside, inside
    assert "write /pwned 0 MB then OSError" in inside, f"the root file system took writes:\n{inside}"
    flooded = int(inside.split("write /tmp/flood ")[1].split(" MB")[0])
    assert flooded <= 64, f"/tmp took {flooded} MB; its tmpfs is 64 MB:\n{inside}"
    assert facts["ports"] and all(ip == "127.0.0.1" for ip, _ in facts["ports"]), facts["ports"]
    assert facts["networks"] == [NETWORK], facts["networks"]
    log = facts["host"]["LogConfig"]
    assert log == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}, log
    port = facts["ports"][0][1]
    assert not _accepts(_host_address(), port), "the published port answered on the network address"


def test_a_crashing_rm_line_is_judged_as_crashed_not_as_vanished(judge: Judge, spy: Any) -> None:
    """`--rm` is judged as if honoured, but the grader runs the container without auto-remove (it
    removes it itself): a crash stays to be diagnosed, never "the container disappeared"."""

    def look(engine: Engine, container: Container) -> dict[str, Any]:
        container.reload()
        return {"auto_remove": container.attrs["HostConfig"]["AutoRemove"]}

    seen = spy(look)
    line = "docker run --rm -d -p 8000:8000 portbinding/crash-before-listen:1.0"
    request = {"kind": "check_run", "line": line, "container_port": 8000, "expect": "http", "path": "/health"}
    result = judge.handle(request)
    assert not result.passed and result.cause == "crashed", result
    assert "not a problem in your answer" not in result.message, result.message
    assert seen.seen == [{"auto_remove": False}], seen.seen


def test_a_right_answer_slow_to_serve_its_first_request_is_waited_for(
    judge: Judge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server binds its socket before it serves: on a loaded grading machine its first answers
    can take seconds. Listening where forwarded traffic arrives is not yet a verdict -- the judge
    waits for the answer (it judged at the first failed probe after the bind, and failed right
    answers under load). Modelled here: every probe of the first 4 s times out."""
    started = time.monotonic()

    def loaded(url: str, timeout: float, **kwargs: Any) -> ProbeResult:
        if time.monotonic() - started < 4.0:
            return ProbeResult("timeout", "no answer yet (a loaded machine, modelled)", timeout)
        return probe_http(url, timeout=timeout, **kwargs)

    monkeypatch.setattr("portbinding.grading.judge.probe_http", loaded)
    line = "docker run -d -p 8000:8000 portbinding/scoring-api:1.0"
    request = {"kind": "check_run", "line": line, "container_port": 8000, "expect": "http", "path": "/health"}
    result = judge.handle(request)
    assert result.passed, f"a right answer failed while the machine was slow to answer: {result}"


def test_a_graded_container_reaches_neither_the_host_nor_another_graded_container_nor_beyond(
    judge: Judge, engine: Engine, spy: Any
) -> None:
    """From inside: the host's services (gateway, own address), a classmate's container, another machine."""
    peer_spec = RunSpec(
        image=NOTEBOOK,
        name=f"pbl-{engine.session}-peer",
        publish=(PortMapping(8888, "tcp", "127.0.0.1", None),),
        detach=True,
        env=(("HOME", "/tmp"),),
    )
    confinement = Confinement(engine)
    peer = engine.run(peer_spec, confinement=confinement.options())
    try:
        peer_ip = _address_on_grading_network(peer)
        assert wait_until(lambda: _accepts(peer_ip, 8888), timeout=30), "the peer never listened"
        with _host_service() as service, _outside_host() as outside:
            host_ip = _host_address()
            assert _accepts(host_ip, service) and _accepts(outside, 80), "the targets are not up"

            def look(engine: Engine, container: Container) -> dict[str, Any]:
                container.reload()
                gateway = container.attrs["NetworkSettings"]["Networks"][NETWORK]["Gateway"]
                targets = [f"{gateway}:{service}", f"{host_ip}:{service}", f"{peer_ip}:8888", f"{outside}:80"]
                return {"out": _inside(engine, container, CONNECT, *targets), "targets": targets}

            seen = spy(look)
            result = judge.handle(
                {
                    "kind": "check_run",
                    "line": f"docker run -d -p 8888:8888 {NOTEBOOK}",
                    "container_port": 8888,
                }
            )
    finally:
        engine.remove(peer)
    assert result.passed, f"published ports must still reach the grader's probe: {result.message}"
    (facts,) = seen.seen
    for target in facts["targets"]:
        assert f"{target} failed" in facts["out"], f"a graded container reached {target}:\n{facts['out']}"


def _address_on_grading_network(container: Container) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"])


# A learner's app that attacks while it starts: the root passwd trick, 1.5 GB of writes, a log flood.
FLOOD_APP = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
for path in ("/app/flood", "/tmp/flood"):
    try:
        with open(path, "wb") as out:
            for _ in range(1536):
                out.write(b"0" * 2**20)
    except OSError as error:
        print("stopped", path, error, flush=True)
line = "x" * 1023 + "\n"
for _ in range(100 * 1024):  # 100 MB of log
    sys.stdout.write(line)
sys.stdout.flush()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
ROOT_PASSWD = "root:x:0:0:root:/root:/bin/sh\nlearner:x:0:0:learner:/app:/bin/sh\n"


def test_a_learner_image_cannot_be_root_fill_the_disk_or_the_log(
    judge: Judge, engine: Engine, spy: Any
) -> None:
    """A copied /etc/passwd making "learner" uid 0, 1.5 GB of writes and 100 MB of log: all capped."""

    def look(engine: Engine, container: Container) -> dict[str, Any]:
        (listed,) = engine.client.api.containers(all=True, filters={"id": container.id}, size=True)
        log = Path(engine.client.api.inspect_container(container.id)["LogPath"])
        return {
            "uid": engine.exec(container, ["id", "-u"], timeout=10).output.strip(),
            "size_rw": int(listed.get("SizeRw") or 0),
            "log_bytes": sum(p.stat().st_size for p in log.parent.glob(log.name + "*")),
        }

    seen = spy(look, after=True)  # once it answers, the app has done its flooding
    dockerfile = (
        "FROM python:3.12-slim\nCOPY passwd /etc/passwd\nCOPY app.py /app/app.py\nUSER learner\n"
        'CMD ["python3", "/app/app.py"]\n'
    )
    files = {"Dockerfile": dockerfile, "app.py": FLOOD_APP, "passwd": ROOT_PASSWD}
    encoded = {name: base64.b64encode(text.encode()).decode() for name, text in files.items()}
    result = judge.handle({"kind": "check_image", "files": encoded, "path": "/health"})
    assert result.passed, result.message
    (facts,) = seen.seen
    assert facts["uid"] == "1000", f"the learner's image ran as uid {facts['uid']}"
    assert facts["size_rw"] < 2**20, f"the writable layer took {facts['size_rw']} bytes"
    assert facts["log_bytes"] <= 2 * 2**20 + 64 * 1024, f"the logs take {facts['log_bytes']} bytes on disk"


def test_the_grading_network_isolates_and_the_firewall_is_in_place(engine: Engine) -> None:
    """No masquerade, no inter-container traffic; the host's INPUT and forwarding from it are closed."""
    confinement = Confinement(engine)
    assert confinement.ensure_network() == NETWORK
    options = engine.client.networks.get(NETWORK).attrs["Options"]
    assert options["com.docker.network.bridge.enable_ip_masquerade"] == "false", options
    assert options["com.docker.network.bridge.enable_icc"] == "false", options
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True, timeout=30).stdout
    assert f"-A INPUT -i {BRIDGE} -j PBL-GRADING" in rules, rules
    assert f"-i {BRIDGE} -j REJECT" in rules, rules
    confinement.release()
    with contextlib.suppress(docker.errors.NotFound):
        in_use = engine.client.networks.get(NETWORK).attrs.get("Containers")
        assert in_use, "release() left the grading network with no container on it"


CHURN = r"""
import sys
from portbinding.discovery import find_engine
from portbinding.engine import Engine
from portbinding.grading.confine import Confinement

client, info = find_engine()
confinement = Confinement(Engine(client, info, owner="grader"))
for _ in range(int(sys.argv[1])):
    confinement.ensure_network()
    confinement.release()
print("ok")
"""


def test_graders_side_by_side_create_and_remove_the_network_without_tripping_each_other() -> None:
    """Two workers: one creates the network while the other removes it (docker: "same bridge name")."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CHURN, "15"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0 and out.strip() == "ok", err[-2000:]
