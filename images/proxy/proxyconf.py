#!/usr/bin/env python3
"""nginx as a reverse proxy, configured from the environment (12-factor) and re-routed live.

``start-proxy``: renders /tmp/nginx/nginx.conf from LISTEN_PORT and UPSTREAMS, checks it with
``nginx -t`` and becomes nginx (in the foreground, logging to stdout/stderr).
``route NAME:PORT=PERCENT ...``: renders the same file with a new split and reloads nginx
gracefully (``nginx -s reload``): requests in flight finish on the old routes.

UPSTREAMS is ``api:8000`` or ``api-v1:8000=90 api-v2:8000=10`` (percentages; the last one takes
the rest). Names are resolved at request time through the container's own resolver (Docker's
embedded DNS on a user-defined network), so a name that does not resolve, or an upstream that
refuses, is a 502 from the proxy -- and says why in its error log -- instead of a proxy that
will not start. Everything nginx writes goes under /tmp: the image runs as a plain user and
works with a read-only root file system.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

HOME = Path("/tmp/nginx")
CONF = HOME / "nginx.conf"
RELOAD_WAIT_S = 10.0
_UPSTREAM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9.-]{0,62}):(\d{1,5})(?:=(\d{1,3}))?$")

TEMPLATE = """\
# Rendered by start-proxy / route from UPSTREAMS={upstreams!r}; do not edit by hand.
worker_processes 1;
pid {home}/nginx.pid;
error_log stderr warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    log_format routed '$remote_addr "$request" $status upstream=$upstream_addr '
                      'upstream_status=$upstream_status route=$route';
    access_log /dev/stdout routed;
    # The container's own resolver: names are looked up per request, never cached past 1 s.
    resolver {resolvers} valid=1s ipv6=off;
    resolver_timeout 2s;
    split_clients "$request_id" $route {{
{split}
    }}
    server {{
        listen {port};
        # The proxy's own liveness: says nothing about the services behind it.
        location = /proxy-health {{
            default_type text/plain;
            return 200 "proxy up\\n";
        }}
        location / {{
            proxy_pass http://$route;
            proxy_connect_timeout 2s;
            proxy_read_timeout 10s;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def parse_upstreams(text: str) -> list[tuple[str, int, int | None]]:
    """``api-v1:8000=90 api-v2:8000=10`` as (name, port, percent); a clear error otherwise."""
    found = []
    for word in text.replace(",", " ").split():
        match = _UPSTREAM.match(word)
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise ValueError(f"{word!r} is not NAME:PORT or NAME:PORT=PERCENT (e.g. api:8000=90)")
        found.append((match.group(1), int(match.group(2)), int(match.group(3)) if match.group(3) else None))
    if not found:
        raise ValueError("no upstream given: set UPSTREAMS, e.g. UPSTREAMS=api:8000")
    given = [p for _, _, p in found if p is not None]
    if sum(given) > 100 or (len(given) == len(found) and sum(given) != 100 and len(found) > 1):
        raise ValueError(f"the percentages add up to {sum(given)}: they must make 100")
    return found


def split_lines(upstreams: list[tuple[str, int, int | None]]) -> str:
    """``split_clients`` lines: each weighted upstream its share, the last one the rest (``*``)."""
    lines = []
    for index, (name, port, percent) in enumerate(upstreams):
        last = index == len(upstreams) - 1
        share = "*" if last else f"{percent if percent is not None else 100 // len(upstreams)}%"
        lines.append(f"        {share} {name}:{port};")
    return "\n".join(lines)


def resolvers() -> str:
    """The nameservers this container uses (/etc/resolv.conf), as nginx's resolver wants them."""
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        text = ""
    found = [
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("nameserver") and len(line.split()) > 1
    ]
    found = [f"[{ip}]" if ":" in ip else ip for ip in found]
    return " ".join(found) or "127.0.0.11"


def render(upstreams_text: str, port: int) -> str:
    upstreams = parse_upstreams(upstreams_text)
    return TEMPLATE.format(
        upstreams=upstreams_text, home=HOME, resolvers=resolvers(), split=split_lines(upstreams), port=port
    )


def write(upstreams_text: str, port: int) -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    draft = HOME / "nginx.conf.new"
    draft.write_text(render(upstreams_text, port))
    check = subprocess.run(
        ["nginx", "-e", "stderr", "-t", "-q", "-c", str(draft)], capture_output=True, text=True, timeout=10
    )
    if check.returncode != 0:
        sys.exit(f"ERROR: nginx rejected the configuration:\n{check.stderr.strip()}")
    draft.replace(CONF)


def listen_port() -> int:
    try:
        return int(os.environ.get("LISTEN_PORT", "8080"))
    except ValueError:
        sys.exit(f"ERROR: LISTEN_PORT must be a number, got {os.environ['LISTEN_PORT']!r}")


def start() -> None:
    upstreams = os.environ.get("UPSTREAMS", "api:8000")
    try:
        write(upstreams, listen_port())
    except ValueError as exc:
        sys.exit(f"ERROR: UPSTREAMS={upstreams!r}: {exc}")
    print(
        f"proxy listening on 0.0.0.0:{listen_port()}, routing to {upstreams} (resolver {resolvers()})",
        flush=True,
    )
    os.execvp("nginx", ["nginx", "-e", "stderr", "-c", str(CONF)])


def workers() -> set[int]:
    """The PIDs of nginx's worker processes now (children of the master in the pid file)."""
    try:
        master = int((HOME / "nginx.pid").read_text().strip())
    except (OSError, ValueError):
        return set()
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def route(words: list[str]) -> None:
    text = " ".join(words)
    try:
        write(text, listen_port())
    except ValueError as exc:
        sys.exit(f"ERROR: {exc}")
    old = workers()
    reload = subprocess.run(
        ["nginx", "-e", "stderr", "-s", "reload", "-c", str(CONF)], capture_output=True, text=True, timeout=10
    )
    if reload.returncode != 0:
        sys.exit(f"ERROR: nginx did not reload: {reload.stderr.strip()}")
    # The reload is a signal: the master starts new workers, the old ones finish what they serve
    # and leave. Return once they have, so the next request is routed the new way.
    deadline = time.monotonic() + RELOAD_WAIT_S
    while old & workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    if old & workers():
        print(f"routing to {text}; old workers still finishing requests after {RELOAD_WAIT_S:.0f} s")
        return
    print(f"routing to {text} (nginx reloaded: requests in flight finished on the old routes)")


if __name__ == "__main__":
    if Path(sys.argv[0]).name == "route":
        route(sys.argv[1:])
    else:
        start()
