"""Lesson 07 on the real engine: services that talk by name, a real proxy, and each new diagnosis.

The course's own images play the parts (the scoring API, Redis from Debian, nginx from Debian),
started with the lines a learner types (``--network``, ``--network-alias``, ``-e DATABASE_URL``).
For every cause the diagnosis must name it from evidence, and where it prints commands, running
them as printed must make the path work: the diagnosis says ``ok`` and an independent request
(from this machine through the proxy, or from inside the API) gets through.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from docker.models.containers import Container

from portbinding.command import parse_run
from portbinding.diagnose import Diagnosis, diagnose
from portbinding.engine import Engine
from portbinding.networks import create_network
from portbinding.probe import probe_http, wait_until
from tests.support.foreign import cli

pytestmark = pytest.mark.engines(
    "docker",
    reason="user-defined networks with Docker's embedded DNS, nginx and Redis images (the process engine "
    "has no networks and runs Python servers only)",
)

API = "portbinding/scoring-api:1.0"
REDIS = "portbinding/redis:1.0"
PROXY = "portbinding/proxy:1.0"


def _name(what: str) -> str:
    return f"pbl-l07-{what}-{uuid.uuid4().hex[:6]}"


def _network(engine: Engine) -> str:
    name = _name("net")
    create_network(engine.client, name, labels=engine.labels)
    return name


def _run(engine: Engine, line: str) -> Container:
    return engine.run(parse_run(line, networks=True))


def _until(engine: Engine, name: str, wanted: Callable[[Diagnosis], bool], **options: object) -> Diagnosis:
    """Diagnose until ``wanted`` holds (servers take a moment to listen); the last diagnosis."""
    seen: list[Diagnosis] = []

    def attempt() -> bool:
        seen.append(diagnose(engine, name, **options))  # type: ignore[arg-type]
        return wanted(seen[-1])

    wait_until(attempt, timeout=25)
    return seen[-1]


def _cause(engine: Engine, name: str, cause: str, **options: object) -> Diagnosis:
    found = _until(engine, name, lambda d: d.cause == cause, **options)
    assert found.cause == cause, (
        f"{name}: expected {cause}, got {found.cause} ({found.rule})\n{found.explain()}"
    )
    return found


def _health_inside(engine: Engine, api: str) -> dict[str, object]:
    """GET /health from inside the API container: what its own database check says."""
    code = (
        "import json, urllib.request as u, urllib.error as e\n"
        "try: print(u.urlopen('http://127.0.0.1:8000/health', timeout=15).read().decode())\n"
        "except e.HTTPError as x: print(x.read().decode())"
    )
    # Generous: on a loaded machine (2 cores, shared) Python's start and the API's own lookup of a
    # name that does not resolve took more than 10 s together.
    result = engine.exec(engine.get(api), ["python3", "-c", code], timeout=25)
    return dict(json.loads(result.output.strip().splitlines()[-1]))


def _healthy(engine: Engine, api: str) -> bool:
    try:
        return _health_inside(engine, api).get("database") == "ok"
    except (ValueError, IndexError):
        return False  # not listening yet


# ------------------------------------------------------------------------------ names and networks


def test_an_api_calling_its_database_at_localhost_is_told_the_database_name(engine: Engine) -> None:
    """From the database's side (--from api) and from the API's own (no --from): localhost is itself."""
    net = _network(engine)
    db, api = _name("db"), _name("api")
    _run(engine, f"docker run -d --name {db} --network {net} --network-alias db {REDIS}")
    _run(
        engine,
        f"docker run -d --name {api} --network {net} -p 127.0.0.1::8000 "
        f"-e DATABASE_URL=redis://localhost:6379/0 {API}",
    )
    found = _cause(engine, db, "peer_localhost", peer=api, container_port=6379)
    assert found.rule == "peer_localhost", found.explain()
    assert found.fix.config_change == "DATABASE_URL=redis://db:6379/0", found.fix
    own = _cause(engine, api, "peer_localhost")
    assert own.rule == "calls_localhost", own.explain()
    assert "db" in own.evidence.local_refs[0].candidates, own.evidence.local_refs
    assert own.fix.commands, f"the API's own fix should be a run line to paste\n{own.explain()}"
    for command in own.fix.commands:
        cli(engine, command)
    assert wait_until(lambda: _healthy(engine, api), timeout=20), (
        f"after {own.fix.commands}, the API still cannot reach its database: {_health_inside(engine, api)}"
    )


def test_containers_on_two_different_networks_are_told_to_share_one(engine: Engine) -> None:
    """The database on one network, the API on another: the fix connects the API, then it works."""
    net_db, net_api = _network(engine), _network(engine)
    db, api = _name("db"), _name("api")
    _run(engine, f"docker run -d --name {db} --network {net_db} --network-alias db {REDIS}")
    _run(engine, f"docker run -d --name {api} --network {net_api} -e DATABASE_URL=redis://db:6379/0 {API}")
    found = _cause(engine, db, "not_same_network", peer=api, container_port=6379)
    peer = found.evidence.peer
    assert peer is not None and peer.names_used, found.explain()
    assert peer.names_used[0].answer is not None and peer.names_used[0].answer.outcome == "unresolved", (
        f"the name db should not resolve from {api} yet\n{found.explain()}"
    )
    assert found.fix.commands == (f"docker network connect {net_db} {api}",), found.fix
    for command in found.fix.commands:
        cli(engine, command)
    fixed = _cause(engine, db, "ok", peer=api, container_port=6379)
    assert fixed.rule == "peer_reaches", fixed.explain()
    assert wait_until(lambda: _healthy(engine, api), timeout=20), _health_inside(engine, api)


def test_the_default_bridge_has_no_names(engine: Engine) -> None:
    """Both on Docker's default bridge, the API asks for the database by name: not the same network."""
    db, api = _name("db"), _name("api")
    _run(engine, f"docker run -d --name {db} {REDIS}")
    _run(engine, f"docker run -d --name {api} -e DATABASE_URL=redis://{db}:6379/0 {API}")
    found = _cause(engine, db, "not_same_network", peer=api, container_port=6379)
    assert found.evidence.peer is not None and found.evidence.peer.only_default_bridge, found.explain()
    assert found.fix.commands[0] == "docker network create appnet", found.fix
    # Run as printed, under a name of this test's own (the engine is shared), made labelled so
    # the session's sweep removes it.
    mine = _name("appnet")
    create_network(engine.client, mine, labels=engine.labels)
    for command in found.fix.commands[1:]:
        cli(engine, command.replace("appnet", mine))
    assert wait_until(lambda: _healthy(engine, api), timeout=20), _health_inside(engine, api)


def test_a_misspelt_service_name_does_not_resolve_and_the_right_one_is_named(engine: Engine) -> None:
    """On a shared network, DATABASE_URL names ``databse``: unresolved, and the fix says ``db``."""
    net = _network(engine)
    db, api = _name("db"), _name("api")
    _run(engine, f"docker run -d --name {db} --network {net} --network-alias db {REDIS}")
    _run(engine, f"docker run -d --name {api} --network {net} -e DATABASE_URL=redis://databse:6379/0 {API}")
    found = _cause(engine, db, "name_unresolved", peer=api, container_port=6379)
    assert found.fix.config_change == "DATABASE_URL=redis://db:6379/0", found.fix
    assert "databse" in found.fix.summary and db in found.fix.summary, found.fix.summary
    said: list[dict[str, object]] = []

    def api_agrees() -> bool:
        try:
            said.append(_health_inside(engine, api))
        except (ValueError, IndexError):
            return False  # not listening yet
        return "does not resolve" in str(said[-1].get("database"))

    assert wait_until(api_agrees, timeout=30), f"the API's own words should agree: {said[-1:]}"


# ------------------------------------------------------------------------------ the proxy


def _proxy(engine: Engine, net: str, upstreams: str) -> tuple[str, str]:
    name = _name("proxy")
    container = _run(
        engine,
        f"docker run -d --name {name} --network {net} -p 127.0.0.1::8080 -e UPSTREAMS={upstreams} {PROXY}",
    )
    url = engine.url(container, 8080, "/health")
    assert url is not None, "the proxy's port is not published"
    assert wait_until(lambda: probe_http(url.replace("/health", "/proxy-health")).ok, timeout=20), (
        f"nginx never answered on {url}: {engine.logs(container)}"
    )
    return name, url


def test_the_proxy_routes_by_name_and_a_stopped_upstream_is_a_502_with_its_cause(engine: Engine) -> None:
    """200 through the proxy by service name; the API stopped, the proxy says 502 and the diagnosis
    finds the stopped container behind the name; `docker start` as printed brings back the 200."""
    net = _network(engine)
    api = _name("api")
    _run(engine, f"docker run -d --name {api} --network {net} --network-alias api {API}")
    proxy, url = _proxy(engine, net, "api:8000")
    assert wait_until(lambda: probe_http(url).http_status == 200, timeout=20), probe_http(url).detail
    engine.stop(engine.get(api), timeout=2)
    assert wait_until(lambda: probe_http(url).http_status == 502, timeout=10), probe_http(url).detail
    found = _cause(engine, proxy, "upstream_down", path="/health")
    upstream = found.evidence.upstream
    assert upstream is not None and upstream.container == api and upstream.status == "exited", found.explain()
    assert upstream.reason == "unresolved", f"a stopped container's name leaves the DNS\n{found.explain()}"
    assert f"docker start {api}" in found.fix.commands, found.fix
    for command in found.fix.commands:
        cli(engine, command)
    assert wait_until(lambda: probe_http(url).http_status == 200, timeout=20), probe_http(url).detail


def test_a_loopback_bound_api_behind_the_proxy_is_a_502_and_the_fix_rebinds_it(engine: Engine) -> None:
    """BIND_HOST=127.0.0.1 behind nginx: refused from the proxy, so 502; the upstream's own diagnosis
    (seen from the proxy) is loopback_only, and its run line, run as printed, brings back the 200."""
    net = _network(engine)
    api = _name("api")
    _run(engine, f"docker run -d --name {api} --network {net} -e BIND_HOST=127.0.0.1 {API}")
    proxy, url = _proxy(engine, net, f"{api}:8000")
    assert wait_until(lambda: probe_http(url).http_status == 502, timeout=20), probe_http(url).detail
    found = _cause(engine, proxy, "upstream_down", path="/health")
    upstream = found.evidence.upstream
    assert upstream is not None and upstream.reason == "refused" and upstream.container == api, (
        found.explain()
    )
    assert any("loopback_only" in note for note in found.notes), found.explain()
    assert any("BIND_HOST=0.0.0.0" in command for command in found.fix.commands), found.fix
    for command in found.fix.commands:
        cli(engine, command)
    assert wait_until(lambda: probe_http(url).http_status == 200, timeout=20), probe_http(url).detail


def test_a_rollout_shifts_traffic_through_the_real_proxy(engine: Engine) -> None:
    """v1 and v2 behind nginx: all on v1, then `route` splits 50/50 with a graceful reload, then all
    on v2 -- no request fails on the way."""
    net = _network(engine)
    v1, v2 = _name("v1"), _name("v2")
    _run(engine, f"docker run -d --name {v1} --network {net} --network-alias api-v1 {API}")
    _run(
        engine,
        f"docker run -d --name {v2} --network {net} --network-alias api-v2 portbinding/scoring-api:2.0",
    )
    proxy, url = _proxy(engine, net, "api-v1:8000")

    def versions(count: int) -> list[str]:
        seen = []
        for _ in range(count):
            result = probe_http(url)
            assert result.http_status == 200, f"a request failed during the rollout: {result.detail}"
            seen.append(json.loads(result.body_excerpt)["version"])
        return seen

    assert wait_until(lambda: probe_http(url).http_status == 200, timeout=20), probe_http(url).detail
    assert set(versions(10)) == {"1.0"}, "before the rollout, v1 only"
    routed = engine.exec(engine.get(proxy), ["route", "api-v1:8000=50", "api-v2:8000=50"], timeout=15)
    assert routed.exit_code == 0, routed.output
    mixed = versions(40)
    assert {"1.0", "2.0"} <= set(mixed), f"a 50/50 split served only {set(mixed)} in 40 requests"
    routed = engine.exec(engine.get(proxy), ["route", "api-v2:8000"], timeout=15)
    assert routed.exit_code == 0, routed.output
    assert set(versions(10)) == {"2.0"}, "after the rollout, v2 only"
