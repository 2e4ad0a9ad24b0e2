"""The classifier, rule by rule: evidence written by hand in, cause, rule and fix out (no engine).

One row per rule of ``portbinding.diagnose.classify.RULES`` (and per way a rule decides), plus
the edge cases learners met: a dual-stack ``::`` listener without IPv6, ``--port`` naming a port
nothing uses, a stopped container, a non-HTTP service, a silent one, a refusal instead of a reset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from portbinding.diagnose import CAUSE_LAYER, CAUSES, RULE_NAMES, RULES, Diagnosis, Evidence, classify
from portbinding.diagnose.evidence import InsideOutcome
from portbinding.diagnose.ladder import Expect
from portbinding.diagnose.peerevidence import LocalRef, NameUse, PeerEvidence, UpstreamEvidence
from portbinding.grading.feedback import TWELVE_FACTOR_HINTS
from portbinding.widgets.portmap import HOP_OF
from portbinding.widgets.probe_light import CAUSE_HINTS
from tests.support.evidence import BANNER, ECHO, HTTP, JUPYTER, answer, evidence, host_probe

NOTEBOOK_LINE = "docker run -d -p 127.0.0.1:49000:8888 web"


@dataclass(frozen=True)
class Row:
    id: str
    evidence: Evidence
    cause: str
    rule: str
    expect: Expect | None = None
    fix_has: tuple[str, ...] = ()  # words the fix (summary, run line, commands, config) must contain
    check: Callable[[Diagnosis], bool] | None = field(default=None)


def _peer(
    *,
    local: str = "refused",
    by_name: str = "reply",
    shared: tuple[str, ...] = ("appnet",),
    mentions: tuple[str, ...] = ("API=http://localhost:8888",),
    networks: tuple[str, ...] = ("appnet",),
    address: str | None = "172.20.0.2",
    uses: tuple[NameUse, ...] = (),
    server_names: tuple[str, ...] = ("web",),
    service: str | None = None,
) -> PeerEvidence:
    return PeerEvidence(
        "client",
        networks,
        shared,
        address,
        mentions,
        answer("127.0.0.1:8888", outcome=local),  # type: ignore[arg-type]
        None
        if address is None
        else answer(f"{address}:8888", HTTP if by_name == "reply" else "", outcome=by_name),  # type: ignore[arg-type]
        uses,
        server_names,
        service,
    )


def _use(name: str, outcome: InsideOutcome, *, word: str | None = None) -> NameUse:
    """The peer's configuration names ``name`` for port 8888; from inside it, that got ``outcome``."""
    reply = HTTP if outcome == "reply" else ""
    seen = replace(
        answer(f"{name}:8888", reply, outcome=outcome, of="172.20.0.2:8888"), target=f"{name}:8888"
    )
    return NameUse(name, 8888, word or f"API=http://{name}:8888/", seen)


ON_APPNET = {"appnet": "172.20.0.2"}
NGINX_REFUSED = (
    "2026/11/30 05:58:03 [error] 8#8: *8 connect() failed (111: Connection refused) while connecting to "
    'upstream, client: 172.20.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://172.20.0.3:8000/"'
)


def _behind_the_proxy() -> Evidence:
    """The API behind the proxy, seen from the proxy: it listens on 127.0.0.1 only."""
    return evidence(
        port=8000, ports=(), host=None, listening=("127.0.0.1:8000",), networks={"appnet": "172.20.0.3"},
        peer=_peer(mentions=(), address="172.20.0.3", by_name="refused", server_names=("api",)),
        run="docker run -d --name api -e BIND_HOST=127.0.0.1 web", container="api",
    )  # fmt: skip


# fmt: off
TABLE: tuple[Row, ...] = (
    # ---------------------------------------------------------------- rung 1: state
    Row(
        "restarting",
        evidence(
            status="restarting",
            restart_count=4,
            restart_policy="always",
            log_tail=["error: GREETING is not set (run with -e GREETING=hello)"],
        ),
        "crash_loop",
        "crash_loop",
        fix_has=("-e GREETING=hello", "--restart", "restarted 4 times"),
    ),
    Row(
        "up a second after a restart, nothing listening",
        evidence(
            restart_count=2,
            restart_policy="always",
            running_for_s=0.8,
            listening=(),
            answers=(),
            host="reset",
        ),
        "crash_loop",
        "crash_loop",
    ),
    Row(
        "stopped by docker stop (SIGTERM)",
        evidence(status="exited", exit_code=143),
        "stopped",
        "stopped",
        fix_has=("docker start web", "SIGTERM"),
    ),
    Row(
        "killed after the stop timeout (SIGKILL)",
        evidence(status="exited", exit_code=137),
        "stopped",
        "stopped",
        fix_has=("docker start web",),
    ),
    Row(
        "a server that shut down cleanly on SIGTERM (exit 0)",
        evidence(
            status="exited",
            exit_code=0,
            log_tail=["[C ServerApp] received signal 15, stopping", "[I ServerApp] Shutting down"],
        ),
        "stopped",
        "stopped",
        fix_has=("docker start web", "clean shutdown"),
    ),
    Row(
        "exit 0 with nothing said: it finished, not served",
        evidence(status="exited", exit_code=0, log_tail=["done."]),
        "crashed",
        "crashed",
        fix_has=("finished on its own", "foreground"),
    ),
    Row(
        "created, never started",
        evidence(status="created", exit_code=0),
        "stopped",
        "stopped",
        fix_has=("docker start web",),
    ),
    Row(
        "exit 137 because of memory is a crash",
        evidence(status="exited", exit_code=137, oom_killed=True),
        "crashed",
        "crashed",
        fix_has=("OOMKilled",),
    ),
    Row(
        "crashed, the log names the variable",
        evidence(
            status="exited",
            log_tail=[
                "Traceback ...",
                "ValueError: MODEL_PATH is not set: run with -e MODEL_PATH=/app/model.json.",
            ],
        ),
        "crashed",
        "crashed",
        fix_has=("-e MODEL_PATH=/app/model.json web",),
    ),
    Row(
        "crashed binding ::1 without IPv6",
        evidence(
            status="exited",
            log_tail=["httpd: bind: Cannot assign requested address"],
            run="docker run -d -p 127.0.0.1:49000:80 web httpd -f -p [::1]:80",
        ),
        "crashed",
        "crashed",
        fix_has=("'[::]:80'",),
    ),
    Row(
        "crashed on a bad option: the error line, not the usage text printed after it",
        evidence(
            status="exited",
            log_tail=[
                "nc: invalid option -- 'k'",
                "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.",
                "",
                "Usage: nc [-iN] [-wN] [-l] [-p PORT] [-f FILE|IPADDR PORT] [-e PROG]",
                "\t-e PROG\tRun PROG after connect",
            ],
        ),
        "crashed",
        "crashed",
        fix_has=("nc: invalid option -- 'k'",),
    ),
    # ---------------------------------------------------------------- rung 2: published
    Row(
        "no port at all",
        evidence(port=None, ports=(), listening=(), answers=(), host=None),
        "not_published",
        "no_port",
    ),
    Row(
        "--network host ignores -p",
        evidence(
            network_mode="host",
            ports=(),
            requested="18089:80",
            port=80,
            listening=("0.0.0.0:80",),
            host="ok",
            extras={"network": "host"},
            run="docker run -d -p 18089:80 web",
        ),
        "host_network",
        "host_network",
        fix_has=("docker run -d -p 18089:80 web",),
        check=lambda d: "--network" not in (d.fix.run_line or ""),
    ),
    Row(
        "--network host, no port known: the host's own listeners are not taken for the container's",
        evidence(
            network_mode="host",
            port=None,
            ports=(),
            listening=(),
            answers=(),
            host=None,
            extras={"network": "host"},
            run="docker run -d web",
        ),
        "host_network",
        "host_port_unknown",
        fix_has=("--port",),
        check=lambda d: "-p 127.0.0.1" not in d.fix.summary and not d.fix.commands,
    ),
    Row(
        "--network host with the same number on both sides is fine",
        evidence(
            network_mode="host", ports=(), requested="80:80", port=80, listening=("127.0.0.1:80",), host="ok"
        ),
        "ok",
        "reachable",
    ),
    Row(
        "published on a remote engine's loopback",
        evidence(
            engine_remote=True, publish_host="10.0.0.9", ports=("8888 -> 127.0.0.1:49000",), host="refused"
        ),
        "unusable_host_address",
        "unusable_host_address",
        fix_has=("ssh -N -L 49000:127.0.0.1:49000",),
    ),
    Row(
        "-p points at a port nothing listens on, the app is on the one asked",
        evidence(
            ports=("9999 -> 127.0.0.1:49000",),
            listening=("0.0.0.0:8888",),
            answers=(answer("127.0.0.1:8888", JUPYTER),),
            run="docker run -d -p 127.0.0.1:49000:9999 web",
        ),
        "wrong_container_port",
        "published_elsewhere",
        fix_has=("-p 127.0.0.1:49000:8888",),
    ),
    Row(
        "--port 9999: nothing there, the app is already published on 8888",
        evidence(
            port=9999,
            port_origin="asked",
            listening=("0.0.0.0:8888",),
            answers=(answer("127.0.0.1:8888", JUPYTER),),
        ),
        "wrong_container_port",
        "asked_port_unused",
        fix_has=("8888",),
        check=lambda d: d.fix.run is None and d.fix.line is None and not d.fix.commands,
    ),
    Row(
        "listening but not published",
        evidence(ports=(), port_origin="exposed", host=None, run="docker run -d web"),
        "not_published",
        "not_published",
        fix_has=("-p 127.0.0.1:8888:8888",),
    ),
    Row(
        "not published, and loopback behind it: a note for the next rung",
        evidence(ports=(), host=None, listening=("127.0.0.1:8888",), run="docker run -d web"),
        "not_published",
        "not_published",
        check=lambda d: any("next rung" in note for note in d.notes),
    ),
    Row(
        "not published, and the host port the fix would use is taken: the line uses a free one",
        evidence(ports=(), host=None, run="docker run -d web", taken={8888: 41147}),
        "not_published",
        "not_published",
        fix_has=("-p 127.0.0.1:41147:8888", "8888 is taken"),
    ),
    Row(
        "crashed, and its own host port went to another container since: the line uses a free one",
        evidence(
            status="exited",
            log_tail=["ValueError: MODEL_PATH is not set: run with -e MODEL_PATH=/app/model.json."],
            run="docker run -d -p 8000:8000 web",
            requested="8000:8000",
            taken={8000: 41148},
        ),
        "crashed",
        "crashed",
        fix_has=("-p 41148:8000", "-e MODEL_PATH=/app/model.json", "8000 is taken"),
        # Not "published: nothing" alone: the learner did type -p, and would go looking for a missing one.
        check=lambda d: "published: nothing now (not running; it asked for -p 8000:8000)" in d.explain(),
    ),
    # ---------------------------------------------------------------- rung 3: listening
    Row(
        "nothing listens at all",
        evidence(listening=(), answers=(), host="reset"),
        "still_starting",
        "nothing_listens",
    ),
    Row(
        "Jupyter moved to 8889",
        evidence(
            listening=("0.0.0.0:8888", "0.0.0.0:8889"),
            answers=(answer("127.0.0.1:8888", HTTP), answer("127.0.0.1:8889", JUPYTER)),
            log_tail=["[W ServerApp] The port 8888 is already in use, trying another port."],
        ),
        "port_retried",
        "port_retried",
        fix_has=("-p 127.0.0.1:49000:8889", "port_retries"),
    ),
    Row(
        "Jupyter moved, too busy to answer the probe: the log and the listener say where",
        evidence(
            listening=("0.0.0.0:8888", "0.0.0.0:8889"),
            answers=(answer("127.0.0.1:8888", HTTP), answer("127.0.0.1:8889", outcome="silent")),
            log_tail=["[W ServerApp] The port 8888 is already in use, trying another port."],
        ),
        "port_retried",
        "port_retried",
        expect="jupyter",
        fix_has=("-p 127.0.0.1:49000:8889",),
    ),
    Row(
        "nothing on the port yet, seconds after the start",
        evidence(
            running_for_s=1.5,
            listening=("127.0.0.1:39000",),
            answers=(answer("127.0.0.1:39000", outcome="silent"),),
            host="reset",
        ),
        "still_starting",
        "nothing_on_port_yet",
    ),
    Row(
        "the app listens on another port",
        evidence(
            ports=("9999 -> 127.0.0.1:49000",),
            port=9999,
            answers=(answer("127.0.0.1:8888", JUPYTER),),
            run="docker run -d -p 127.0.0.1:49000:9999 web",
            host="reset",
        ),
        "wrong_container_port",
        "nothing_on_port",
        fix_has=("-p 127.0.0.1:49000:8888",),
    ),
    Row(
        "loopback only, run by a command-line flag",
        evidence(
            listening=("127.0.0.1:8888",),
            host="reset",
            run="docker run -d -p 127.0.0.1:49000:8888 web serve --host 127.0.0.1",
        ),
        "loopback_only",
        "loopback_only",
        fix_has=("serve --host 0.0.0.0",),
    ),
    Row(
        "loopback only, set by an environment variable",
        evidence(
            listening=("127.0.0.1:8888",),
            host="reset",
            run="docker run -d -p 127.0.0.1:49000:8888 -e HOST=127.0.0.1 web",
        ),
        "loopback_only",
        "loopback_only",
        fix_has=("-e HOST=0.0.0.0",),
    ),
    Row(
        "loopback only, Jupyter",
        evidence(listening=("127.0.0.1:8888",), host="reset", answers=(answer("127.0.0.1:8888", JUPYTER),)),
        "loopback_only",
        "loopback_only",
        fix_has=("--ServerApp.ip=0.0.0.0",),
    ),
    Row(
        "::1 with IPv6 switched on",
        evidence(
            listening=("[::1]:80",),
            port=80,
            ports=("80 -> 127.0.0.1:49000",),
            answers=(answer("[::1]:80", HTTP),),
            host="reset",
            run="docker run -d -p 127.0.0.1:49000:80 web httpd -p [::1]:80",
        ),
        "loopback_only",
        "loopback_only",
        fix_has=("'[::]:80'",),
    ),
    Row(
        "a specific address that traffic does not arrive on",
        evidence(
            listening=("172.19.0.2:8888",),
            networks={"bridge": "172.17.0.2", "backend": "172.19.0.2"},
            host="reset",
            answers=(
                answer("172.19.0.2:8888", HTTP),
                answer("172.17.0.2:8888", outcome="refused", forwarded=True),
            ),
            run="docker run -d -p 127.0.0.1:49000:8888 web serve --bind 172.19.0.2:8888",
        ),
        "wrong_address",
        "wrong_address",
        fix_has=("--bind 0.0.0.0:8888",),
    ),
    Row(
        "bound to the forwarded address itself is fine",
        evidence(listening=("172.17.0.2:8888",), answers=(answer("172.17.0.2:8888", HTTP),)),
        "ok",
        "reachable",
    ),
    Row(
        "an IPv6 address only",
        evidence(listening=("[fd00::5]:8888",), host="reset", answers=(answer("[fd00::5]:8888", HTTP),)),
        "ipv6_only",
        "ipv6_only",
    ),
    Row(
        ":: with IPV6_V6ONLY: IPv4 refused, [::1] answers",
        evidence(
            listening=("[::]:8888",),
            host="reset",
            answers=(
                answer("127.0.0.1:8888", outcome="refused", of="[::]:8888"),
                answer("[::1]:8888", HTTP, of="[::]:8888"),
                answer("172.17.0.2:8888", outcome="refused", forwarded=True),
            ),
        ),
        "ipv6_only",
        "ipv6_only_wildcard",
    ),
    Row(
        "dual-stack :: without IPv6 in the container is reachable",
        evidence(
            listening=("[::]:8888",),
            answers=(
                answer("127.0.0.1:8888", HTTP, of="[::]:8888"),
                answer("[::1]:8888", outcome="no_address", of="[::]:8888"),
            ),
        ),
        "ok",
        "reachable",
        check=lambda d: (
            "Errno" not in str(d.evidence.inside)
            and "IPv6 is switched off" in d.evidence.inside["[::1]:8888"]
        ),
    ),
    # ---------------------------------------------------------------- rung 4: inside
    Row(
        "another service holds the port, Jupyter is on 9000",
        evidence(
            listening=("0.0.0.0:8888", "0.0.0.0:9000"),
            answers=(answer("127.0.0.1:8888", HTTP), answer("127.0.0.1:9000", JUPYTER)),
        ),
        "wrong_service",
        "wrong_service",
        fix_has=("-p 127.0.0.1:49000:9000",),
    ),
    Row(
        "HTTP asked, a banner answers",
        evidence(answers=(answer("127.0.0.1:8888", BANNER),)),
        "wrong_service",
        "wrong_service",
        expect="http",
    ),
    Row(
        "HTTP asked, a silent service: not clearly wrong",
        evidence(host="timeout", answers=(answer("127.0.0.1:8888", outcome="silent"),)),
        "still_starting",
        "unreachable_otherwise",
        expect="http",
    ),
    # ---------------------------------------------------------------- rung 5: host or peer
    Row(
        "localhost from another container",
        evidence(ports=(), host=None, peer=_peer()),
        "peer_localhost",
        "peer_localhost",
        fix_has=("web:8888",),
    ),
    Row(
        "localhost from another container, no shared network",
        evidence(ports=(), host=None, peer=_peer(by_name="refused", shared=())),
        "peer_localhost",
        "peer_localhost",
        fix_has=("network create", "network connect appnet client"),
    ),
    Row(
        "localhost from a Compose service: the exact word, in the Compose file's terms",
        evidence(ports=(), host=None, peer=_peer(service="client", mentions=("API=http://localhost:8888/v1",))),
        "peer_localhost",
        "peer_localhost",
        fix_has=("API=http://web:8888/v1", "docker compose up -d client", "environment:"),
    ),
    Row(
        "the other container reaches it by name",
        evidence(ports=(), host=None, peer=_peer(mentions=())),
        "ok",
        "peer_reaches",
    ),
    Row(
        "on two different user-defined networks",
        evidence(ports=(), host=None, networks=ON_APPNET, peer=_peer(
            mentions=(), shared=(), networks=("other",), address=None, uses=(_use("web", "unresolved"),),
        )),
        "not_same_network",
        "not_same_network",
        fix_has=("docker network connect appnet client", "web:8888"),
    ),
    Row(
        "both on the default bridge only, by name: names do not resolve there",
        evidence(ports=(), host=None, peer=_peer(
            mentions=(), shared=(), networks=("bridge",), address="172.17.0.2",
            uses=(_use("web", "unresolved"),), server_names=(),
        )),
        "not_same_network",
        "not_same_network",
        fix_has=("network create appnet", "network connect appnet web", "network connect appnet client"),
    ),
    Row(
        "both on the default bridge only, by address: it connects",
        evidence(ports=(), host=None,
                 peer=_peer(mentions=(), shared=(), networks=("bridge",), address="172.17.0.2")),
        "ok",
        "peer_reaches",
    ),
    Row(
        "a typo in the name, on a shared network",
        evidence(ports=(), host=None, networks=ON_APPNET, peer=_peer(
            mentions=(), uses=(_use("wbe", "unresolved"),), server_names=("web", "web-1"),
        )),
        "name_unresolved",
        "name_unresolved",
        fix_has=("API=http://web:8888/", "'wbe'", "web, web-1"),
    ),
    Row(
        "one name fails, another one in use resolves: judged by what it reaches",
        evidence(ports=(), host=None, networks=ON_APPNET, peer=_peer(
            mentions=(), uses=(_use("old-web", "unresolved"), _use("web", "reply")),
        )),
        "ok",
        "peer_reaches",
    ),
    Row(
        "configured to reach its database at its own localhost (no --from)",
        evidence(local_refs=(LocalRef("DATABASE_URL=redis://localhost:6379/0", 6379, False, ("db",)),)),
        "peer_localhost",
        "calls_localhost",
        fix_has=("DATABASE_URL=redis://db:6379/0", "nothing listens on port 6379"),
    ),
    Row(
        "a proxy's 502: the API behind it listens on 127.0.0.1 (seen from the proxy)",
        evidence(
            host=host_probe("unexpected_response", status=502),
            log_tail=[NGINX_REFUSED],
            upstream=UpstreamEvidence("172.20.0.3:8000", "refused", NGINX_REFUSED, 8000, "api", "running",
                                      _behind_the_proxy()),
        ),
        "upstream_down",
        "upstream_down",
        fix_has=("refuses the proxy's connections", "BIND_HOST=0.0.0.0", "docker rm -f api"),
        check=lambda d: any("loopback_only" in note for note in d.notes),
    ),
    Row(
        "a proxy's 502: no container answers to the upstream's name",
        evidence(
            host=host_probe("unexpected_response", status=502),
            networks=ON_APPNET,
            upstream=UpstreamEvidence("api:8000", "unresolved",
                                      "api could not be resolved (3: Host not found)", 8000),
        ),
        "upstream_down",
        "upstream_down",
        fix_has=("does not resolve", "network connect --alias api appnet CONTAINER"),
    ),
    Row(
        "a 200 through a proxy with an old error in its log: reachable",
        evidence(
            upstream=UpstreamEvidence("api:8000", "refused", NGINX_REFUSED, 8000, "api", "running"),
        ),
        "ok",
        "reachable",
    ),
    Row(
        "HTTP answers through the published port; the inside lines say which request they made",
        evidence(
            answers=(
                answer("127.0.0.1:8888", HTTP, of="0.0.0.0:8888"),
                answer("172.17.0.2:8888", outcome="refused"),
            )
        ),
        "ok",
        "reachable",
        check=lambda d: "inside, 127.0.0.1:8888 (GET /api): HTTP/1.0 200 OK" in d.explain()
        and "(GET /api): refused" not in d.explain(),
    ),
    Row(
        "reachable, but Docker calls it unhealthy: the HEALTHCHECK is said to be what fails",
        evidence(health="unhealthy"),
        "ok",
        "reachable",
        check=lambda d: any("unhealthy" in note and "HEALTHCHECK" in note for note in d.notes),
    ),
    Row(
        "reachable on one published port, while another published port has nothing behind it",
        evidence(
            port=8080,
            ports=("8080 -> 0.0.0.0:18088", "9090 -> 0.0.0.0:18089"),
            listening=("0.0.0.0:8080",),
            run="docker run -d -p 18088:8080 -p 18089:9090 web",
        ),
        "ok",
        "reachable",
        check=lambda d: any("9090" in note and "18089" in note and "--port 9090" in note for note in d.notes),
    ),
    Row(
        "reachable, though the inside could not be examined: not called 'nothing listens'",
        evidence(look="none", listening=(), answers=()),
        "ok",
        "reachable",
        check=lambda d: "nothing yet" not in d.explain() and "not examined" in d.explain(),
    ),
    Row(
        "a non-HTTP service that keeps the connection: ok, not HTTP",
        evidence(
            port=7000,
            ports=("7000 -> 127.0.0.1:49000",),
            listening=("[::]:7000",),
            answers=(answer("127.0.0.1:7000", ECHO, of="[::]:7000"),),
            host=host_probe("ok", kind="tcp"),
        ),
        "ok",
        "reachable",
        check=lambda d: d.expect == "tcp" and any("not HTTP" in note for note in d.notes),
    ),
    Row(
        "a non-HTTP service, but the proxy hangs up: not reachable",
        evidence(
            port=7000,
            ports=("7000 -> 127.0.0.1:49000",),
            listening=("0.0.0.0:7000",),
            answers=(answer("127.0.0.1:7000", ECHO),),
            host=host_probe("empty_reply", kind="tcp"),
        ),
        "still_starting",
        "unreachable_otherwise",
    ),
    Row(
        "refused, not reset, on loopback: no userland proxy",
        evidence(host="refused"),
        "still_starting",
        "unreachable_otherwise",
        check=lambda d: any("userland proxy" in note for note in d.notes),
    ),
)
# fmt: on


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_each_rule_names_its_cause_and_fix(row: Row) -> None:
    found = classify(row.evidence, row.expect)
    assert (found.cause, found.rule) == (row.cause, row.rule), (
        f"{row.id}: got {found.cause}/{found.rule}\n{found.explain()}"
    )
    text = " ".join(
        [found.fix.summary, found.fix.run_line or "", *found.fix.commands, found.fix.config_change or ""]
    )
    for words in row.fix_has:
        assert words in text, f"{row.id}: the fix lacks {words!r}: {text}"
    if row.check is not None:
        assert row.check(found), f"{row.id}: the extra check failed\n{found.explain()}"


def test_the_table_has_a_row_for_every_rule_and_every_cause() -> None:
    rules = {row.rule for row in TABLE}
    assert rules == set(RULE_NAMES), (
        f"rules without a row: {set(RULE_NAMES) - rules}; unknown: {rules - set(RULE_NAMES)}"
    )
    assert {row.cause for row in TABLE} == set(CAUSES), set(CAUSES) - {row.cause for row in TABLE}
    assert len(RULES) == len({rule.__name__ for rule in RULES}), "a rule is listed twice"


def test_every_cause_has_a_rung_a_hop_and_a_hint() -> None:
    """The vocabulary is total: no cause without its rung, its place in the port map, its widget hint."""
    for cause in CAUSES:
        assert cause in CAUSE_LAYER and cause in HOP_OF and cause in CAUSE_HINTS, cause


def test_a_fix_never_proposes_the_line_that_is_already_running() -> None:
    """Nothing listens on the asked port and no listener elsewhere serves: a remap would change nothing."""
    ev = evidence(
        ports=("8888 -> 127.0.0.1:49000",),
        port=7777,
        port_origin="asked",
        listening=("127.0.0.1:9000",),
        answers=(answer("127.0.0.1:9000", outcome="silent"),),
        host=None,
    )
    found = classify(ev)
    running = ev.run.to_cli() if ev.run else ""
    assert found.fix.line != running and running not in found.fix.commands, found.explain()


def test_rungs_hold_up_to_the_broken_one_and_carry_the_commands() -> None:
    found = classify(evidence(listening=("127.0.0.1:8888",), host="reset"))
    rungs = found.rungs()
    assert [rung.holds for rung in rungs] == [True, True, False, None, None], [r.holds for r in rungs]
    commands = [item.command for rung in rungs for item in rung.observations]
    assert "docker port web" in commands, commands
    assert any(command.startswith("docker exec web cat /proc/net/tcp") for command in commands), commands
    assert any(command.startswith("curl -v") for command in commands), commands


def test_the_commands_follow_the_engine_and_the_way_inside() -> None:
    """Podman's CLI for a Podman engine; a helper container where the image has no tools."""
    found = classify(
        replace(
            evidence(listening=("127.0.0.1:8888",), host="reset"),
            engine_kind="podman",
            look="helper",
            tools=(),
        )
    )
    commands = [item.command for rung in found.rungs() for item in rung.observations]
    assert "podman port web" in commands, commands
    assert any("podman run --rm --network container:web" in command for command in commands), commands


def test_every_twelve_factor_hint_is_for_a_cause_the_diagnosis_names() -> None:
    """ex03's per-cause hints are looked up by the diagnosis' cause: a misspelt key never shows."""
    unknown = set(TWELVE_FACTOR_HINTS) - set(CAUSES)
    assert not unknown, f"hints for causes the diagnosis never names: {sorted(unknown)}"
