"""The fix for each cause: an exact run line to paste where one exists, else the change to make.

Every fix starts from the run line that recreates the container (``Evidence.run``) and changes
only what the cause needs: a ``-p`` added or pointed at another container port, an environment
variable or a command-line address rebound to every interface, ``--network host`` dropped. A
fix never proposes the line that is already running (the classifier checks), and a line that
reuses the container's name comes after ``docker rm -f NAME``.
"""

from __future__ import annotations

import re

from portbinding.diagnose.diagnosis import Fix
from portbinding.diagnose.evidence import Evidence
from portbinding.diagnose.ladder import Expect
from portbinding.diagnose.runline import RunLine
from portbinding.ports import PortMapping, bracket_host

# "-e NAME=value" in a log line; the value stops before closing punctuation: "(... -e X=1)."
_ENV_HINT = re.compile(r"-e\s+([A-Za-z_][A-Za-z0-9_]*)=([^\s)\]'\",;]+)")
_LOOPBACK_VALUES = ("127.0.0.1", "localhost", "::1")
# A log line that says what went wrong. Command-line tools print the complaint first and their
# usage text after it (busybox, getopt), so the last line is often only the end of the usage.
_COMPLAINT = re.compile(
    r"error|invalid|unrecognized|unknown option|can't|cannot|could not|couldn't|not found|no such|"
    r"not set|fatal|failed|denied|refused|panic",
    re.IGNORECASE,
)
_SIGNALS = {130: "SIGINT (Ctrl-C)", 137: "SIGKILL", 143: "SIGTERM"}


def with_line(ev: Evidence, line: RunLine, summary: str, *, config_change: str | None = None) -> Fix:
    """A fix that runs ``line``, removing the old container first when it would be in the way.

    In the way: the line reuses its name, or the old one still holds a host port (a second
    container cannot publish it: "port is already allocated").
    """
    program = ev.commands().program
    swapped = [m.host_port for m in line.spec.publish if m.host_port in ev.taken]
    if swapped:
        line = line.with_spec(
            publish=tuple(
                m.with_host_port(ev.taken[m.host_port]) if m.host_port in ev.taken else m
                for m in line.spec.publish
            )
        )
        moved = "; ".join(
            f"host port {port} is taken now, so the line uses {ev.taken[port]}" for port in swapped
        )
        summary = f"{summary} Here {moved}."
    text = line.to_cli(program=program)
    in_way = bool(line.spec.name) or (ev.running and bool(ev.ports))
    first = (f"{program} rm -f {ev.container}",) if in_way else ()
    return Fix(summary, run=line.to_spec(), config_change=config_change, line=text, commands=(*first, text))


# ------------------------------------------------------------------------------ state


def crash(ev: Evidence, *, loop: bool = False) -> Fix:
    """From the logs: an environment variable they ask for, an address that does not exist, memory."""
    logs = ev.log_tail
    said = " ".join(last_complaint(logs).split()) or "(no output)"
    how = (
        f"It crashed and was restarted {ev.restart_count} times by --restart {ev.restart_policy}, which "
        "hides the crash: `docker ps` shows it Up for a second at a time."
        if loop
        else f"The app exited (code {ev.exit_code})."
    )
    line = ev.run
    for text in logs:
        match = _ENV_HINT.search(text)
        if match and line is not None:
            env = dict(line.spec.env)
            env[match.group(1)] = match.group(2).rstrip(".")
            return with_line(
                ev,
                line.with_spec(env=tuple(env.items())),
                f"{how} Its log says: {said} -- set {match.group(1)} as it suggests.",
            )
    if ev.oom_killed:
        return Fix(
            f"{how} The kernel killed it for using more memory than its limit (OOMKilled).",
            config_change="a higher --memory limit, or an app that needs less",
        )
    if any("assign requested address" in text.lower() for text in logs) and line is not None:
        rebound = _rebind_anything(line)
        if rebound is not None:
            return with_line(
                ev,
                rebound,
                f"{how} It tried to listen on an address this container does not have (its log: {said}); "
                "::1 does not exist where IPv6 is switched off. Listen on every interface instead.",
            )
    if ev.exit_code == 0 and not loop:
        return Fix(
            f"The app finished on its own (exit code 0, last log line: {said}): it ran to its end instead of "
            "serving. A server must stay in the foreground: check the command (a daemonizing option, a "
            "script that starts the server in the background and returns).",
            config_change="a command that keeps the server in the foreground",
        )
    return Fix(
        f"{how} Read the last log lines: {said}; fix what they name, then run it again.",
        config_change="whatever setting the log names as missing or wrong",
    )


def last_complaint(logs: list[str]) -> str:
    """The last log line that names a problem, else the last line (blank lines skipped)."""
    lines = [line for line in logs if line.strip()]
    return next((line for line in reversed(lines) if _COMPLAINT.search(line)), lines[-1] if lines else "")


def stopped(ev: Evidence) -> Fix:
    """Start it again; the app did not fail, something stopped it (or it never started)."""
    cli = ev.commands()
    if ev.status == "paused":
        command = f"{cli.program} unpause {ev.container}"
        return Fix("The container is paused (docker pause): unpause it.", commands=(command,))
    if ev.status == "created":
        return Fix("The container was created but never started: start it.", commands=(cli.start(),))
    signal = _SIGNALS.get(
        ev.exit_code or 0, "a clean shutdown (exit code 0) after a stop signal, as its log says"
    )
    return Fix(
        f"It exited by {signal}: it was stopped from outside (docker stop, docker kill, a restart of the "
        "engine or the machine), not crashed. Start it again; nothing in its configuration needs to change.",
        commands=(cli.start(),),
    )


# ------------------------------------------------------------------------------ published


def publish(ev: Evidence, port: int | None) -> Fix:
    if port is None:
        return Fix(
            "Nothing listens inside yet and nothing is published: find the app's port (EXPOSE in its "
            "Dockerfile, or its docs) and publish it with -p HOST:CONTAINER."
        )
    summary = (
        f"Publish the container port with -p: -p 127.0.0.1:{port}:{port} (127.0.0.1 publishes it on "
        "this machine's loopback only -- on Docker Engine before 28.3.3 hosts on your network could still "
        "route to it; drop it to share it on the network)."
    )
    if ev.run is None:
        return Fix(summary)
    mapping = PortMapping(port, "tcp", "127.0.0.1", port)
    return with_line(ev, ev.run.with_spec(publish=(*ev.run.spec.publish, mapping)), summary)


def host_network(ev: Evidence, port: int) -> Fix:
    """Drop --network host and publish; a loopback bind would then be unreachable, so rebind it too."""
    published = [m for m in ev.requested if m.host_port]
    host_ports = ", ".join(str(m.host_port) for m in published) or "the one you chose"
    where = (
        f"the server is on this machine's port {port}, not on {host_ports}"
        if ev.on_port()
        else f"-p is ignored, and nothing listens on this machine's port {port} either"
    )
    summary = (
        f"With --network host there is no port mapping: {where}. Drop --network host so that -p works (or "
        f"keep it and connect to port {port})."
    )
    if ev.run is None:
        return Fix(summary)
    line = ev.run.replace(network=None)
    if not line.spec.publish:
        line = line.with_spec(publish=(PortMapping(port, "tcp", "127.0.0.1", port),))
    if any(item.is_loopback for item in ev.on_port()):
        line = _rebind_anything(line) or line
    return with_line(ev, line, summary)


def host_port_unknown(ev: Evidence) -> Fix:
    """--network host and no port to go by (no -p, no EXPOSE): only the learner knows which it is."""
    return Fix(
        "With --network host there is no port mapping: the server listens directly on one of this machine's "
        "ports, and which one is the container's cannot be told from this machine's own listeners. Name it "
        f"(its log or its docs say which): `portbinding diagnose {ev.container} --port PORT`. Or drop "
        "--network host and publish it with -p HOST:CONTAINER."
    )


def unusable_address(ev: Evidence, port: int) -> Fix:
    mapped = ev.mapped()
    where = ", ".join(sorted({m.host_ip for m in mapped}))
    host_port = mapped[0].host_port if mapped else port
    tunnel = f"ssh -N -L {host_port}:127.0.0.1:{host_port} YOU@{ev.publish_host}"
    summary = (
        f"The port is published only on {where} of the engine's machine ({ev.publish_host}), which this "
        f"machine cannot reach. Either forward it over SSH ({tunnel}, then open 127.0.0.1:{host_port}) or "
        "publish it on an address you can reach (-p HOST:CONTAINER publishes on every address: only on a "
        "network you trust)."
    )
    if ev.run is None:
        return Fix(summary)
    publish = tuple(
        m.with_host_port(m.host_port, host_ip="")
        if m.container_port == port and m.host_ip in {p.host_ip for p in mapped}
        else m
        for m in ev.run.spec.publish
    )
    return with_line(ev, ev.run.with_spec(publish=publish), summary)


# ------------------------------------------------------------------------------ listening


def remap(ev: Evidence, wrong: int, right: int | None, *, reason: str = "") -> Fix:
    if right is None or ev.run is None:
        return Fix(f"Nothing listens on container port {wrong}: check which port the app uses.")
    publish = tuple(
        m.with_container_port(right) if m.container_port == wrong else m for m in ev.run.spec.publish
    )
    if reason == "wrong_service":
        summary = (
            f"Container port {wrong} is another service; yours listens on {right}. Keep the host port, "
            f"change the container port: -p HOST:{right}."
        )
    else:
        summary = (
            f"The app listens on container port {right}, not {wrong}: keep the host port and change the "
            f"container side of -p to {right}."
        )
    return with_line(ev, ev.run.with_spec(publish=publish), summary)


def use_port(ev: Evidence, asked: int, actual: int) -> Fix:
    """The run line is right; the port asked about is not the app's."""
    mapped = [p for p in ev.ports if p.container_port == actual]
    where = f", published at {mapped[0].host_ip or '0.0.0.0'}:{mapped[0].host_port}" if mapped else ""
    return Fix(
        f"Nothing listens on container port {asked} and nothing is published for it: the app listens on "
        f"{actual}{where}. Use that; the run line needs no change."
    )


def retried(ev: Evidence, wanted: int, actual: int, port: int) -> Fix:
    summary = (
        f"Port {port} was taken inside the container, so Jupyter moved to {actual} (its log says 'already in "
        f"use, trying another port'). Publish {actual}, or free {port}."
    )
    config = "c.ServerApp.port_retries = 0  # fail loudly instead of moving"
    if ev.run is None:
        return Fix(summary, config_change=config)
    publish = tuple(
        m.with_container_port(actual) if m.container_port == wanted else m for m in ev.run.spec.publish
    )
    return with_line(ev, ev.run.with_spec(publish=publish), summary, config_change=config)


def starting(ev: Evidence) -> Fix:
    since = f" (it started {ev.running_for_s:.1f} s ago)" if ev.running_for_s is not None else ""
    long_ago = ev.running_for_s is not None and ev.running_for_s > 60
    summary = (
        f"Wait for readiness{since}: poll until it answers (portbinding.probe.wait_until_ready), or add a "
        "HEALTHCHECK and wait for `healthy` -- a running container is not a ready server."
    )
    if long_ago:
        summary += " After this long, read its logs too: it may be waiting for something, or not be a server."
    return Fix(summary, run=ev.run.to_spec() if ev.run else None)


def rebind(ev: Evidence, address: str, wanted: Expect) -> Fix:
    """Make the server listen on every interface instead of ``address`` (loopback or specific)."""
    loopback = address in _LOOPBACK_VALUES or address.startswith("127.")
    every = "::" if ":" in address and address != "::ffff:127.0.0.1" else "0.0.0.0"
    what = "127.0.0.1 (the container's own loopback)" if loopback and ":" not in address else address
    line = ev.run
    if line is not None:
        env = dict(line.spec.env)
        names = [
            name
            for name, value in env.items()
            if _mentions(value, address) or (loopback and value in _LOOPBACK_VALUES)
        ]
        if names:
            for name in names:
                env[name] = (
                    _replace_address(env[name], address, every) if _mentions(env[name], address) else every
                )
            return with_line(
                ev,
                line.with_spec(env=tuple(env.items())),
                f"Bind every interface: set {names[0]}={env[names[0]]} instead of "
                f"{dict(line.spec.env)[names[0]]}.",
                config_change=f"{names[0]}={env[names[0]]}",
            )
        command = _rebind_words(line.command, address, every) or (
            _rebind_words(line.command, "localhost", "0.0.0.0") if loopback else None
        )
        if command is not None:
            return with_line(
                ev,
                line.with_spec(command=command),
                f"The command tells the server to listen on {what}: listen on every interface "
                f"({bracket_host(every)}) instead.",
                config_change=f"bind address {every} instead of {address}",
            )
        if wanted == "jupyter":
            kept = tuple(arg for arg in line.spec.command if not arg.startswith(("--ip=", "--ServerApp.ip=")))
            return with_line(
                ev,
                line.with_spec(command=(*kept, "--ServerApp.ip=0.0.0.0")),
                "Make Jupyter listen on every interface inside the container: pass --ServerApp.ip=0.0.0.0 "
                "after the image name, or set it in the image's config and rebuild.",
                config_change='c.ServerApp.ip = ""  # in jupyter_server_config.py: every interface',
            )
    return Fix(
        f"Make the app listen on {every} (every interface) instead of {what}: find its bind or host setting.",
        config_change=f"bind address {every} instead of {address}",
    )


def ipv6_only(ev: Evidence, address: str) -> Fix:
    return Fix(
        f"The server listens on IPv6 only ({bracket_host(address)}), and the engine forwards published "
        "traffic to the container's IPv4 address. Listen on 0.0.0.0, or on :: without IPV6_V6ONLY "
        "(dual-stack).",
        config_change="bind 0.0.0.0, or :: with IPV6_V6ONLY off",
    )


# ------------------------------------------------------------------------------ inside, host


def other_service(ev: Evidence, port: int, wanted: Expect) -> Fix:
    return Fix(
        f"Port {port} in this container answers, but not as {wanted}: publish the port where your service "
        "listens, or run the image that provides it."
    )


def nothing_to_fix(ev: Evidence) -> Fix:
    target = ev.host.result.target if ev.host else ev.container
    return Fix(f"Nothing to fix: {target} answers.", run=ev.run.to_spec() if ev.run else None)


# ------------------------------------------------------------------------------ rebinding words


def _address_pattern(address: str) -> re.Pattern[str]:
    if address == "localhost":
        return re.compile(r"(?<![\w.-])localhost(?![\w.-])")
    if ":" in address:  # IPv6: in brackets (before :port), or bare
        escaped = re.escape(address)
        return re.compile(rf"\[{escaped}\]|(?<![\w:]){escaped}(?![\w:])")
    return re.compile(rf"(?<![\d.]){re.escape(address)}(?![\d.])")


def _mentions(text: str, address: str) -> bool:
    return bool(_address_pattern(address).search(text))


def _replace_address(text: str, address: str, every: str) -> str:
    def swap(match: re.Match[str]) -> str:
        return f"[{every}]" if match.group(0).startswith("[") else every

    return _address_pattern(address).sub(swap, text)


def _rebind_words(words: tuple[str, ...], address: str, every: str) -> tuple[str, ...] | None:
    """``words`` with ``address`` replaced by ``every`` wherever it appears; None if it nowhere does."""
    if not any(_mentions(word, address) for word in words):
        return None
    return tuple(_replace_address(word, address, every) for word in words)


def _rebind_anything(line: RunLine) -> RunLine | None:
    """``line`` with any loopback address in its command rebound to every interface."""
    for address, every in (("::1", "::"), ("127.0.0.1", "0.0.0.0"), ("localhost", "0.0.0.0")):
        command = _rebind_words(line.command, address, every)
        if command is not None:
            return line.with_spec(command=command)
    return None
