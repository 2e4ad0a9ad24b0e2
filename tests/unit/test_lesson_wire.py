"""The wire table and the engine rows, without an engine: cells, recognition, rendering, safety words."""

from __future__ import annotations

from typing import Any

import pytest

from portbinding.discovery import EngineInfo
from portbinding.engine import Engine
from portbinding.lesson.hostview import _option, _serves
from portbinding.lesson.safety import loopback_publish_safety, version_tuple
from portbinding.lesson.wire import PATHS, ROW, ROWS, SITUATIONS, WireTable, engine_row


class _Reports:
    """Stands in for an engine's client where no such engine exists here (Docker Desktop, Podman 5):
    only ``info()`` is asked, for the operating system it reports."""

    def __init__(self, **info: str) -> None:
        self._info = info

    def info(self) -> dict[str, str]:
        return self._info


def _engine(
    kind: str, version: str, *, rootless: bool = False, url: str = "tcp://far:2375", **info: str
) -> Engine:
    details = EngineInfo(url, "test", kind, version, "1.41", rootless, "127.0.0.1", "test")  # type: ignore[arg-type]
    client: Any = _Reports(**info)
    return Engine(client, details, owner="tests")


def test_every_row_has_a_cell_for_every_situation_and_path_and_its_sources() -> None:
    """No hole in the table, and every row says where its facts come from."""
    for row in ROWS:
        assert row.sources, f"{row.key} cites nothing"
        for situation in SITUATIONS:
            for path in PATHS:
                assert row.says(situation, path), f"{row.key}: {situation} via {path} is empty"


def test_docker_with_its_proxy_resets_on_loopback_and_refuses_on_the_hosts_address() -> None:
    """The course's founding observation, as the table states it for the default Docker Engine."""
    row = ROW["docker-proxy"]
    assert row.cell("loopback_only", "loopback").outcome == "reset"
    assert row.cell("loopback_only", "host_ip").outcome == "refused"
    assert row.cell("loopback_only", "tcp").outcome == "reset", "a bare connect is accepted by docker-proxy"
    assert row.cell("not_published", "container_ip").outcome == "answers", "the bridge IP answers on Linux"
    assert ROW["docker-noproxy"].cell("loopback_only", "loopback").outcome == "refused"
    assert ROW["desktop"].cell("not_published", "container_ip").outcome == "unreachable"


def test_crashed_and_unpublished_refuse_on_every_engine() -> None:
    """Nothing holds the host port any more (or ever): no forwarder, no rule -- refused everywhere."""
    for row in ROWS:
        for situation in ("crashed", "not_published"):
            for path in ("loopback", "host_ip", "tcp"):
                assert row.cell(situation, path).outcome == "refused", f"{row.key}: {situation} via {path}"


@pytest.mark.parametrize(
    "kind, version, rootless, info, key",
    [
        ("process", "0.1.0", False, {}, "process"),
        ("podman", "4.3.1", True, {}, "podman4"),
        ("podman", "5.2.0", True, {}, "podman5"),
        ("podman", "4.9.0", False, {}, "podman-rootful"),
        ("docker", "27.4.0", False, {"OperatingSystem": "Docker Desktop"}, "desktop"),
        (
            "docker",
            "27.4.0",
            False,
            {"OperatingSystem": "Ubuntu", "KernelVersion": "6.6.22-linuxkit"},
            "desktop",
        ),
        ("docker", "20.10.24", False, {"OperatingSystem": "Debian GNU/Linux 12"}, "docker-proxy"),
    ],
)
def test_the_learners_row_is_recognised_from_what_the_engine_reports(
    kind: str, version: str, rootless: bool, info: dict[str, str], key: str
) -> None:
    """Kind, version, rootless and the reported OS pick the row; a remote dockerd is assumed default."""
    found = engine_row(_engine(kind, version, rootless=rootless, **info))
    assert found.row is not None and found.row.key == key, f"expected {key}, got {found}"
    assert found.why, "the learner is told how the row was recognised"


def test_rootless_docker_has_no_row_and_says_why() -> None:
    found = engine_row(_engine("docker", "27.0.0", rootless=True, OperatingSystem="Ubuntu"))
    assert found.row is None and "RootlessKit" in found.why, found


def test_the_table_marks_the_learners_row_in_words_and_as_a_table() -> None:
    """Colour is never the only signal: the row says 'your engine', and the HTML is a real table."""
    table = WireTable("loopback_only", engine=_engine("podman", "4.3.1", rootless=True))
    text, markup = str(table), table._repr_html_()
    marked = [line for line in text.splitlines() if "YOUR ENGINE" in line]
    assert len(marked) == 1 and "rootless Podman 4" in marked[0], text
    assert "<caption" in markup and 'scope="row"' in markup and "your engine" in markup, markup[:400]


def test_dockerds_own_options_are_read_as_dockerd_reads_them() -> None:
    argv = ["dockerd", "-H", "unix:///run/a.sock", "--userland-proxy=false", "--config-file", "/x.json"]
    assert _option(argv, "--userland-proxy", boolean=True) == "false"
    assert _option(argv, "--config-file") == "/x.json"
    assert _option(["dockerd", "--userland-proxy"], "--userland-proxy", boolean=True) == "true", "bare: true"
    assert _serves(argv, "/run/a.sock") and not _serves(argv, "/var/run/docker.sock")
    assert _serves(["dockerd"], "/var/run/docker.sock"), "no -H: dockerd's default socket"


@pytest.mark.parametrize(
    "version, words",
    [
        ("20.10.24+dfsg1", "older than 28.0"),
        ("28.2.2", "CVE-2025-54388"),
        ("28.3.3", "keeps the container to this machine"),
        ("29.0.1", "keeps the container to this machine"),
        ("28.1.0", "keeps the container to this machine"),
    ],
)
def test_loopback_publishing_is_called_private_only_where_the_version_makes_it_so(
    version: str, words: str
) -> None:
    """Before 28.0 a neighbour could route in, 28.2.0-28.3.2 after a firewalld reload; 28.3.3: safe."""
    said = loopback_publish_safety(_engine("docker", version, OperatingSystem="Debian"))
    assert words in said, f"Docker {version}: {said}"
    assert version_tuple(version) is not None


def test_desktop_and_rootless_podman_are_not_affected() -> None:
    for engine in (
        _engine("docker", "27.0.0", OperatingSystem="Docker Desktop"),
        _engine("podman", "5.1.0", rootless=True),
    ):
        said = loopback_publish_safety(engine)
        assert "keeps the container to this machine" in said, said
