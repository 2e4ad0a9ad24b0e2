"""Which laptop-engine row is the learner's, from what the engine and the machine report."""

from __future__ import annotations

from typing import Any

import pytest

from portbinding.discovery import EngineInfo
from portbinding.engine import Engine
from portbinding.laptops import ROWS, LaptopTable, laptop_row

WSL2 = "5.15.167.4-microsoft-standard-WSL2"


class _Reports:
    """A stand-in for an engine we cannot run here (Docker Desktop, WSL2): only its /info answer."""

    def __init__(self, info: dict[str, Any]) -> None:
        self._info = info

    def info(self) -> dict[str, Any]:
        return self._info


def _engine(
    kind: str,
    *,
    os_name: str = "Debian GNU/Linux 12",
    kernel: str = "6.1.0",
    url: str = "unix:///var/run/docker.sock",
) -> Engine:
    info = EngineInfo(url, "test", kind, "27.3.1", "1.47", False, "127.0.0.1", "local")  # type: ignore[arg-type]
    return Engine(_Reports({"OperatingSystem": os_name, "KernelVersion": kernel}), info)


@pytest.mark.parametrize(
    ("engine", "platform", "proc", "row"),
    [
        (_engine("docker"), "linux", "Linux version 6.1.0", "linux"),
        (_engine("docker", os_name="Docker Desktop", kernel="6.10.14-linuxkit"), "darwin", "", "desktop-vm"),
        (_engine("docker", os_name="Docker Desktop", kernel=WSL2), "win32", "", "desktop-windows"),
        (_engine("docker", os_name="Ubuntu 24.04", kernel=WSL2), "linux", "", "wsl2-engine"),
        (_engine("podman"), "linux", "", "podman"),
        (_engine("docker", url="ssh://me@server"), "darwin", "", "linux"),
    ],
    ids=["linux", "mac desktop", "windows desktop", "wsl2 engine", "podman", "remote engine"],
)  # fmt: skip
def test_the_learners_row_follows_what_the_engine_reports(
    engine: Engine, platform: str, proc: str, row: str
) -> None:
    placed = laptop_row(engine, platform=platform, proc_version=proc)
    assert placed.row is not None and placed.row.key == row, placed


def test_the_process_engine_has_no_row_and_says_so() -> None:
    placed = laptop_row(_engine("process"))
    assert placed.row is None and "process engine" in placed.why, placed


def test_the_table_marks_the_learners_row_in_words_and_cites_every_unmeasured_row() -> None:
    table = LaptopTable(
        _engine("docker"), placed=laptop_row(_engine("docker"), platform="linux", proc_version="")
    )
    text, page = table.text(), table._repr_html_()
    assert text.count("▶ your engine") == 1 and "▶ your engine: Docker Engine on Linux" in text, text
    assert "your engine" in page and "<caption>" in page and "scope='row'" in page, page[:300]
    for row in ROWS:
        assert row.sources and all(s.startswith("https://") for s in row.sources), row.key
        assert row.evidence == "measured" or row.key != "linux", "the Linux row is measured here"
