"""Containers unlike the course's, for the diagnosis to meet: built offline, run through the real CLI.

The image is ``FROM scratch`` holding only a static busybox -- no shell on PATH, no ``cat``, no
python3 -- built the way the course builds its own (no registry): Debian's ``busybox-static``
package is downloaded with apt (kept in the course's cache folder), ``/bin/busybox`` extracted on
the host, and the image built from a three-file context. It is kept between sessions with a
fingerprint label, like the course images: rebuilding it is cheap, but the download is the one
network step, and a kept image costs nothing (its containers are what must not outlive a test).

Learner lines are run with the docker CLI exactly as a learner would type them -- ``--restart``,
``--network host`` and ``--sysctl`` included -- with the course labels added so every container
is swept, and each fixed host port swapped for a free one.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from portbinding.engine import Engine, free_port
from portbinding.images import CONTEXT_LABEL
from portbinding.paths import cache_dir
from portbinding.ports import PortMapping, parse_publish

BUSYBOX = "portbinding-test/busybox:1.35"
PACKAGE = "busybox-static"
INDEX = "<h1>busybox httpd</h1>\n"
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY www /www
ENTRYPOINT ["/bin/busybox"]
CMD ["httpd", "-f", "-v", "-h", "/www", "-p", "127.0.0.1:80"]
"""
HTTPD = "httpd -f -v -h /www"  # then -p [ADDRESS:]PORT


def busybox_binary() -> bytes:
    """Debian's static busybox, from the package (downloaded once into the course's cache)."""
    folder = cache_dir() / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(f"{PACKAGE}_*.deb"))
    if not found:
        for command in (
            ["apt-get", "download", PACKAGE],
            ["apt-get", "update", "-q"],
            ["apt-get", "download", PACKAGE],
        ):
            done = subprocess.run(
                command, cwd=folder, capture_output=True, text=True, timeout=300, check=False
            )
            if command[1] == "download" and done.returncode == 0:
                break
        found = sorted(folder.glob(f"{PACKAGE}_*.deb"))
        assert found, f"could not download Debian's {PACKAGE} with apt-get: {done.stderr.strip()[-300:]}"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(found[-1]), tmp], check=True, timeout=60)
        return (Path(tmp) / "bin" / "busybox").read_bytes()


def _context(binary: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data, mode in (
            ("Dockerfile", DOCKERFILE.encode(), 0o644),
            ("busybox", binary, 0o755),
            ("www/index.html", INDEX.encode(), 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_busybox(client: docker.DockerClient) -> str:
    """The busybox test image, built unless an image with the same context is already there."""
    context = _context(busybox_binary())
    fingerprint = hashlib.sha256(context).hexdigest()
    try:
        if client.images.get(BUSYBOX).labels.get(CONTEXT_LABEL) == fingerprint:
            return BUSYBOX
    except docker.errors.ImageNotFound:
        pass
    client.images.build(
        fileobj=io.BytesIO(context), custom_context=True, tag=BUSYBOX, labels={CONTEXT_LABEL: fingerprint},
        rm=True, forcerm=True, pull=False,
    )  # fmt: skip
    return BUSYBOX


def unique_name(what: str) -> str:
    return f"pbl-foreign-{what}-{uuid.uuid4().hex[:6]}"


def _labels(engine: Engine) -> list[str]:
    words: list[str] = []
    for key, value in engine.labels.items():
        words += ["--label", f"{key}={value}"]
    return words


# docker run options that take a value (the ones these tests and the fixes use).
_VALUED = frozenset({"-p", "--publish", "-e", "--env", "--name", "--network", "--restart", "--sysctl",
                     "--label", "-v", "--volume", "--user", "--entrypoint", "--ip"})  # fmt: skip


def _free_host_ports(words: list[str]) -> list[str]:
    """Every fixed host port in the line's ``-p`` values replaced by a free one (options only: what
    follows the image is the container's own command, whose ``-p`` is none of docker's business)."""
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("-"):
            return out + words[index:]  # the image, then its command
        out.append(word)
        if word in _VALUED and index + 1 < len(words):
            value = words[index + 1]
            if word in ("-p", "--publish"):
                mapping = parse_publish(value)[0]
                if mapping.host_port:
                    mapping = PortMapping(
                        mapping.container_port, mapping.protocol, mapping.host_ip, free_port()
                    )
                value = mapping.to_spec()
            out.append(value)
            index += 1
        index += 1
    return out


def cli(engine: Engine, line: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one learner command (``docker run ...``, ``docker start NAME``, ...) against ``engine``.

    ``run`` and ``create`` get the session's labels (so the session sweep removes what they
    start) and free host ports; anything else runs as typed.
    """
    words = shlex.split(line)
    if words[1] in ("run", "create"):
        words = [words[0], words[1], *_labels(engine), *_free_host_ports(words[2:])]
    env = {**os.environ, "DOCKER_HOST": engine.info.url}
    done = subprocess.run(words, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    assert done.returncode == 0, f"`{shlex.join(words)}` failed ({done.returncode}): {done.stderr.strip()}"
    return done


@pytest.fixture(scope="session")
def busybox(docker_client: docker.DockerClient) -> str:
    """The busybox test image on the course engine (built, or confirmed up to date)."""
    return build_busybox(docker_client)
