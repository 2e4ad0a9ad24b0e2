"""The two notebook images differ in one line of configuration, and nothing else may drift."""

from __future__ import annotations

import re
from pathlib import Path

from portbinding.paths import images_dir


def _dockerfile_body(folder: Path) -> list[str]:
    """The Dockerfile without its leading comment and with the labels' values blanked."""
    lines = (folder / "Dockerfile").read_text().splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return [re.sub(r'(portbinding\.image(?:\.scenario)?)="[^"]*"', r'\1=""', line) for line in lines]


def test_notebook_images_differ_only_in_their_bind_address_and_labels() -> None:
    """Same files, same build steps; the config files differ only in ServerApp.ip (and comments)."""
    fixed, broken = images_dir() / "notebook", images_dir() / "notebook-loopback"
    names = {p.name for p in fixed.iterdir() if p.name != "README.md"}
    assert names == {p.name for p in broken.iterdir() if p.name != "README.md"}, (
        "the folders hold different files"
    )
    for name in names - {"Dockerfile", "jupyter_server_config.py", "wheels"}:
        assert (fixed / name).read_bytes() == (broken / name).read_bytes(), (
            f"{name} differs between the images"
        )
    assert _dockerfile_body(fixed) == _dockerfile_body(broken), "the Dockerfiles' build steps differ"

    def settings(folder: Path) -> list[str]:
        text = (folder / "jupyter_server_config.py").read_text()
        return [line for line in text.splitlines() if line.startswith("c.")]

    diff = set(settings(fixed)) ^ set(settings(broken))
    assert diff == {'c.ServerApp.ip = ""', 'c.ServerApp.ip = "127.0.0.1"'}, diff
