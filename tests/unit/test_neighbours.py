"""Reading addresses out of configuration words and proxy logs, and changing only the host in them."""

from __future__ import annotations

import pytest

from portbinding.diagnose.neighbours import _last_upstream_error, hosts_in
from portbinding.diagnose.peerfixes import swap_host


@pytest.mark.parametrize(
    ("word", "found"),
    [
        ("DATABASE_URL=redis://db:6379/0", [("db", 6379)]),
        ("DATABASE_URL=postgres://app:s3cret@database:5432/app", [("database", 5432)]),
        ("UPSTREAMS=api-v1:8000=90 api-v2:8000=10", [("api-v1", 8000), ("api-v2", 8000)]),
        ("API=http://[fd00::2]:80/", [("fd00::2", 80)]),
        ("DB_HOST=db", [("db", None)]),
        ("--ServerApp.ip=0.0.0.0", []),
        ("GREETING=hello:world", []),
    ],
)
def test_hosts_and_ports_are_read_from_configuration_words(
    word: str, found: list[tuple[str, int | None]]
) -> None:
    assert hosts_in(word) == found, word


@pytest.mark.parametrize(
    ("word", "old", "new", "changed"),
    [
        ("DATABASE_URL=redis://localhost:6379/0", "localhost", "db", "DATABASE_URL=redis://db:6379/0"),
        ("API=http://127.0.0.1:8000/score", "localhost", "api", "API=http://api:8000/score"),
        ("DATABASE_URL=redis://databse:6379/0", "databse", "db", "DATABASE_URL=redis://db:6379/0"),
        ("DB_HOST=databse", "databse", "db", "DB_HOST=db"),
        # Only the host changes: a user name or a path that contains the same letters stays.
        (
            "URL=redis://localhostuser@localhost:6379/localhost",
            "localhost",
            "db",
            "URL=redis://localhostuser@db:6379/localhost",
        ),
    ],
)
def test_a_fix_changes_only_the_host_in_the_word(word: str, old: str, new: str, changed: str) -> None:
    assert swap_host(word, old, new) == changed


def test_nginx_upstream_errors_are_read_last_first() -> None:
    """The most recent upstream error decides; the address and port come from its upstream field."""
    logs = [
        "2026/11/30 05:58:03 [error] 8#8: *8 api could not be resolved (3: Host not found), client: x",
        '172.20.0.1 "GET / HTTP/1.1" 502 upstream=- upstream_status=- route=api:8000',
        "2026/11/30 05:59:10 [error] 8#8: *9 connect() failed (111: Connection refused) while connecting to "
        'upstream, client: 172.20.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://172.20.0.3:8000/"',
    ]
    found = _last_upstream_error(logs)
    assert found is not None and found[1:] == ("refused", None, "172.20.0.3", 8000), found
    found = _last_upstream_error(logs[:2])
    assert found is not None and found[1:] == ("unresolved", "api", None, None), found
    assert _last_upstream_error(["GET / 200"]) is None, "no upstream error, no upstream"
