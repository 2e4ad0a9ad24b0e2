"""Fixtures for the class tests: root (users, cgroups, the grading sandbox) and a folder under /srv."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def hub_base() -> Iterator[Path]:
    """``/srv/portbinding-hub-test-<id>``: open to the students the tests create; removed afterwards."""
    if os.geteuid() != 0:
        pytest.fail("a class hub creates Unix users and cgroups: run the hub tests as root (make test)")
    run = os.environ.get("PORTBINDING_RUN_ID", secrets.token_hex(6))
    base = Path("/srv") / f"portbinding-hub-test-{run}"
    base.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
