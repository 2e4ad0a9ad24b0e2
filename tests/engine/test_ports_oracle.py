"""parse_publish checked row by row against the real Docker CLI (``docker create -p SPEC``).

The CLI is the oracle: where it refuses a spec, parse_publish must raise PortSpecError; where it
accepts one, ``docker inspect``'s HostConfig.PortBindings must equal to_docker_ports(parse_publish()).
Last recorded with Docker CLI 28.2.2 (API 1.41) against Docker Engine 20.10.24+dfsg1.
``docker create`` never runs the command, so an empty image made with ``docker import`` is enough
and no registry is needed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator

import pytest

from portbinding.errors import PortSpecError
from portbinding.ports import from_bindings, parse_publish, to_docker_ports

IMAGE = "portbinding-test/empty:oracle"
SESSION_LABEL = "portbinding.session=oracle"
LABELS = ("--label", "portbinding.course=port-binding-lab", "--label", SESSION_LABEL)
TIMEOUT = 30
# The oracle is Docker's own -p handling. Pointed at rootless Podman, the same CLI sees host ports
# assigned at create time ("80" records a port, not "") and specs Docker accepts refused
# ("80/sctp", "8000-8010:80", "0"): measured, so the table here records Docker only.
pytestmark = pytest.mark.engines("docker", reason="the -p oracle is the Docker CLI + Docker Engine pair")

SPECS = [
    # the everyday forms
    "8888:8888",
    "80",
    "127.0.0.1:8888:8888",
    "0.0.0.0:8080:80",
    "127.0.0.1::80",
    "0.0.0.0::80",
    ":80",
    ":80:80",
    "8888:8888/udp",
    "80/sctp",
    # protocols: case-insensitive, empty means tcp, extra slashes are ignored
    "80/TCP",
    "80/Udp",
    "80/",
    "80//udp",
    "80/tcp/x",
    "80/icmp",
    "/tcp",
    # ranges
    "8000-8002:8000-8002",
    "80-82",
    "8000-8002:80-82/udp",
    "1.2.3.4:8000-8002:80-82",
    "8000-8010:80",
    "8000-8010:80/udp",
    "1234-1235:80",
    "127.0.0.1:1234-1235:80",
    "[::1]:1234-1235:80",
    "0.0.0.0:1234-1235:80/udp",
    "8000-8000:80",
    "80-80",
    "80-81-82",
    "80-81-82:80",
    "1-3:1-2",
    "80:8000-8010",
    "5-3",
    "80-",
    "-80",
    "80-x",
    "80--81",
    # port numbers
    "0",
    "0-0",
    "0:80",
    "80:0",
    "0-5:80",
    "65535",
    "65536",
    "70000",
    "080",
    "00000000000000000000000080",
    "+80",
    " 80",
    "80 ",
    "80_0",
    "\uff18\uff10",
    # empty parts
    "",
    "80:",
    "::80",
    ":::80",
    "::::80",
    # host addresses
    "0.0.0.0:80",
    "1.2.3.4:80",
    "localhost:80:80",
    "127.1:80:80",
    "256.1.1.1:80:80",
    "01.2.3.4:80:80",
    "80:80:80:80",
    "1.2.3.4:80:80:80",
    # IPv6, with and without brackets
    "[::1]:8080:80",
    "::1:8080:80",
    "[::1]::80",
    "::1::80",
    "[::1]:80",
    "::ffff:127.0.0.1:80:80",
    "0:0:0:0:0:0:0:1:80:80",
    "[::FFFF:7F00:1]:80:80",
    "1:2:3:4:5:6:7:::80:80",
    "1:2:3:4:5:6:7::8:80:80",
    "fe80::1%eth0:80:80",
    "[fe80::1%eth0]:80:80",
    "[127.0.0.1]:80:80",
    "[]:80:80",
    "[]::80",
    "[]:80",
    "[[::1]]:80:80",
    "[::1]x:80:80",
    "[:80:80",
    "]:80:80",
    # the long form the CLI rewrites to PUBLISHED:TARGET/PROTOCOL
    "target=80,published=8080",
    "target=80,protocol=UDP",
    "target=80,published=127.0.0.1:8080",
    "protocol=udp,target=80,published=9000-9001",
    "target=80,target=81",
    "target=80,mode=host",
    "target=80,published=",
    "target=80/udp",
    "target=80=1",
    "published=8080",
    "target=80,foo",
    "target=80,",
    "=",
]


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=TIMEOUT, check=False)


def _remove_oracle_containers() -> None:
    listed = _docker("ps", "-aq", "--filter", f"label={SESSION_LABEL}")
    ids = listed.stdout.split()
    if ids:
        _docker("rm", "-f", *ids)


@pytest.fixture(scope="session")
def empty_image(docker_client: object) -> Iterator[str]:
    """An empty image imported from an empty tar stream: enough for ``docker create``, no registry."""
    if shutil.which("docker") is None:
        message = "the docker CLI is not on PATH; the -p oracle needs it"
        if os.environ.get("PORTBINDING_REQUIRE_ENGINE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    empty_tar = io.BytesIO()
    with tarfile.open(fileobj=empty_tar, mode="w"):
        pass
    imported = subprocess.run(
        ["docker", "import", "-", IMAGE],
        input=empty_tar.getvalue(),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert imported.returncode == 0, f"docker import failed: {imported.stderr.decode(errors='replace')}"
    try:
        yield IMAGE
    finally:
        # Per-row cleanup can miss a container when a row times out; the label catches the rest.
        _remove_oracle_containers()
        _docker("rmi", "-f", IMAGE)


def test_oracle_image_accepts_a_plain_spec(empty_image: str) -> None:
    """The empty image can be created with a plain -p, so a refusal below is about the spec alone."""
    created = _docker("create", *LABELS, "-p", "8888:8888", empty_image, "/none")
    assert created.returncode == 0, f"docker create failed for a valid spec: {created.stderr}"
    _docker("rm", "-f", created.stdout.strip())


@pytest.mark.parametrize("spec", SPECS, ids=SPECS)
def test_parse_publish_agrees_with_docker_cli(spec: str, empty_image: str) -> None:
    """parse_publish accepts, refuses and records each -p value exactly as `docker create -p` does."""
    created = _docker("create", *LABELS, "-p", spec, empty_image, "/none")
    if created.returncode != 0:
        assert "No such image" not in created.stderr, f"the oracle image is missing: {created.stderr}"
        with pytest.raises(PortSpecError):
            parse_publish(spec)
        return
    container_id = created.stdout.strip()
    try:
        inspected = _docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", container_id)
    finally:
        _docker("rm", "-f", container_id)
    assert inspected.returncode == 0, f"docker inspect failed: {inspected.stderr}"
    recorded = {
        key: [(binding["HostIp"], binding["HostPort"]) for binding in bindings]
        for key, bindings in json.loads(inspected.stdout).items()
    }
    try:
        ours = to_docker_ports(parse_publish(spec))
    except PortSpecError as error:
        pytest.fail(f"Docker accepts -p {spec!r} (recorded {recorded}) but parse_publish refused it: {error}")
    assert ours == recorded, f"-p {spec!r}: Docker recorded {recorded}, parse_publish gives {ours}"
    read_back = from_bindings(json.loads(inspected.stdout))
    expected = sorted(parse_publish(spec), key=lambda m: m.key)
    assert read_back == expected, (
        f"-p {spec!r}: what Docker recorded reads back as {read_back}, not {expected}"
    )
