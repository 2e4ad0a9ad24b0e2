"""A learner's Compose file, read as data and checked against the course policy (ex04).

The file is never handed to Compose. It is parsed here, within limits, into a
:class:`ComposePlan` -- one :class:`~portbinding.command.RunSpec` per service, in start order --
that the judge runs as hardened graded containers on a network made for the one check
(:mod:`portbinding.grading.compose_judge`). What the course allows is exactly what ex04 needs:

* ``services:`` (at most :data:`MAX_SERVICES`), each with ``image:`` (a course image),
  ``environment:`` (plain values), ``ports:`` (short syntax), ``expose:`` and ``depends_on:``
  (a list, or conditions ``service_started`` / ``service_healthy``); ``version:`` and ``name:``
  at the top are read and ignored (the grader names the project);
* nothing else: no ``network_mode`` (``host`` least of all), ``networks``, ``volumes``,
  ``privileged``, ``devices``, ``cap_add``, ``user``, ``command``, ``entrypoint``, ``build``,
  ``healthcheck`` (a command run in the container), ``container_name`` -- each refused with its
  reason, and any other key as "not needed here".

Reading YAML is an attack surface of its own: the text is capped in bytes, events, nesting and
scalar length before anything is built; anchors and aliases (``&a`` / ``*a``, the "billion
laughs" bomb) are refused, as are tags (``!!python/object``) and duplicate keys. Values are built
from the parser's nodes by this module, never by a YAML constructor, so the YAML 1.1 reading of
``- 2222:22`` -- the base-60 number 133342, as PyYAML and docker-compose v1 read it -- is seen
for what it is and reported with the fix (quote it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from portbinding.command import COURSE_IMAGES, RunSpec
from portbinding.errors import PolicyError, PortSpecError
from portbinding.images import split_image_ref
from portbinding.ports import PortMapping, parse_publish

MAX_COMPOSE_BYTES = 16_000
MAX_EVENTS = 2_000
MAX_DEPTH = 8
MAX_SCALAR_CHARS = 500
MAX_SERVICES = 4
MAX_ENVIRONMENT = 20
MAX_PORTS = 4
CONDITIONS = ("service_started", "service_healthy")
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,30}")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SEXAGESIMAL = re.compile(r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+")
_TOP_LEVEL = ("version", "name", "services")
_SERVICE_KEYS = ("image", "environment", "ports", "expose", "depends_on")
_REFUSED_KEYS = {
    "network_mode": "changes the service's network (network_mode: host shares the grading machine's network: "
    "ports: would be ignored, and nothing would separate it from the machine)",
    "networks": "the services of one file already share a network where they find each other by name; the "
    "grader makes it",
    "volumes": "would share folders of the grading machine with the container",
    "privileged": "gives the container full control of the grading machine",
    "devices": "gives the container access to the grading machine's devices",
    "cap_add": "gives the container extra privileges (Linux capabilities)",
    "security_opt": "would weaken the container's security profile",
    "user": "the grader chooses the user (never root)",
    "pid": "would share the grading machine's processes with the container",
    "ipc": "would share a namespace of the grading machine",
    "sysctls": "changes kernel settings",
    "command": "replaces what the image runs; the course images start their own server",
    "entrypoint": "replaces the program the image starts",
    "build": "the grader runs the course images only; it builds nothing from a Compose file",
    "healthcheck": "runs a command of your choosing in the container; the course images bring their own",
    "container_name": "the grader names the containers (a fixed name could collide with another check's)",
    "extra_hosts": "changes name resolution; the services find each other by service name",
    "dns": "changes name resolution; the services find each other by service name",
}


class ComposeRefused(PolicyError):
    """A Compose file the course policy does not run (the message says what, where and why)."""


@dataclass(frozen=True)
class ServicePlan:
    """One service as the grader will run it: its spec (no name, no network yet) and its order."""

    name: str
    spec: RunSpec
    depends_on: tuple[tuple[str, str], ...] = ()  # (service, condition)
    expose: tuple[int, ...] = ()


@dataclass(frozen=True)
class ComposePlan:
    """The services of a learner's file, in an order that starts each after what it depends on."""

    services: tuple[ServicePlan, ...]
    notes: tuple[str, ...] = field(default=())

    def service(self, name: str) -> ServicePlan | None:
        return next((item for item in self.services if item.name == name), None)


def read_compose(text: str) -> ComposePlan:
    """Parse and check ``text``; raises :class:`ComposeRefused` (or PortSpecError) in the learner's words."""
    if not isinstance(text, str):
        raise ComposeRefused("The Compose file should be text (a string), got " + type(text).__name__ + ".")
    if len(text.encode("utf-8", "replace")) > MAX_COMPOSE_BYTES:
        raise ComposeRefused(
            f"The Compose file is longer than {MAX_COMPOSE_BYTES} bytes: ex04 needs two short services.",
            hint="keep the two services the exercise describes",
        )
    _screen(text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ComposeRefused(f"The Compose file is not valid YAML: {_short(error)}") from None
    document = _value(root, "the file", depth=0) if root is not None else None
    if not isinstance(document, dict):
        raise ComposeRefused("The Compose file should be a mapping with a services: key at the top.")
    for key in document:
        if key not in _TOP_LEVEL:
            why = _REFUSED_KEYS.get(key, "is not needed here")
            raise ComposeRefused(f"The top-level key {key}: is not allowed in ex04: {_reason(why)}.")
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeRefused("The Compose file has no services: mapping (each service under services:).")
    if len(services) > MAX_SERVICES:
        raise ComposeRefused(
            f"The file defines {len(services)} services; the grader runs at most {MAX_SERVICES} "
            "(ex04 needs two)."
        )
    plans = {name: _service(name, body) for name, body in services.items()}
    return ComposePlan(_ordered(plans))


# ------------------------------------------------------------------------------ reading YAML safely


def _screen(text: str) -> None:
    """Walk the parser's events before building anything: sizes, nesting, no aliases, no tags."""
    depth = 0
    try:
        for count, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
            if count > MAX_EVENTS:
                raise ComposeRefused(f"The Compose file has more than {MAX_EVENTS} YAML elements.")
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ComposeRefused(
                    "The Compose file uses YAML anchors or aliases (&name / *name). ex04 does not need them, "
                    "and the grader does not expand them (a few nested aliases can make a file of a few "
                    "hundred bytes expand to gigabytes: the 'billion laughs' attack)."
                )
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise ComposeRefused(f"The Compose file uses the YAML tag {tag[:40]!r}; plain values only.")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ComposeRefused(f"The Compose file nests deeper than {MAX_DEPTH} levels.")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_SCALAR_CHARS:
                raise ComposeRefused(
                    f"A value in the Compose file is longer than {MAX_SCALAR_CHARS} characters."
                )
    except yaml.YAMLError as error:
        raise ComposeRefused(f"The Compose file is not valid YAML: {_short(error)}") from None


@dataclass(frozen=True)
class Scalar:
    """A scalar as YAML 1.1 resolved it, with the text it was written as."""

    value: Any
    text: str
    quoted: bool

    @property
    def sexagesimal(self) -> bool:
        """``2222:22`` unquoted: YAML 1.1 reads a base-60 integer (133342)."""
        return not self.quoted and isinstance(self.value, int) and bool(_SEXAGESIMAL.fullmatch(self.text))


def _value(node: yaml.Node, where: str, *, depth: int) -> Any:
    """Plain Python data from a node: dicts, lists and :class:`Scalar` leaves (no constructor runs)."""
    if isinstance(node, yaml.MappingNode):
        found: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _value(key_node, where, depth=depth + 1)
            if not isinstance(key, Scalar) or not isinstance(key.value, str):
                raise ComposeRefused(f"In {where}, a key is not a plain name.")
            if key.value in found:
                raise ComposeRefused(f"In {where}, the key {key.value}: appears twice.")
            found[key.value] = _value(value_node, f"{where} > {key.value}", depth=depth + 1)
        return found
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, where, depth=depth + 1) for item in node.value]
    assert isinstance(node, yaml.ScalarNode)
    quoted = node.style in ("'", '"', "|", ">")  # the parser has already undone quotes and escapes
    return Scalar(node.value if quoted else _resolve(node), node.value, quoted)


def _resolve(node: yaml.ScalarNode) -> Any:
    """What YAML 1.1 makes of an unquoted scalar (the resolver's tag, converted by hand)."""
    tag = node.tag
    text = node.value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return text.lower() in ("yes", "true", "on", "y")
    if tag == "tag:yaml.org,2002:int":
        digits = text.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        digits = digits.lstrip("+-")
        if ":" in digits:
            total = 0
            for part in digits.split(":"):
                total = total * 60 + int(part)
            return sign * total
        if digits.startswith("0x"):
            return sign * int(digits, 16)
        if digits.startswith("0b"):
            return sign * int(digits[2:], 2)
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits, 8)
        return sign * int(digits)
    if tag == "tag:yaml.org,2002:float":
        return text  # nothing in ex04 is a float; kept as written
    return text


# ------------------------------------------------------------------------------ a service


def _service(name: str, body: Any) -> ServicePlan:
    if not _SERVICE_NAME.fullmatch(name) or name in ("localhost", "host"):
        raise ComposeRefused(
            f"{name[:40]!r} is not a service name the grader runs: lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 31 characters (and not localhost or host).",
        )
    where = f"services > {name}"
    if not isinstance(body, dict):
        raise ComposeRefused(f"{where} should be a mapping (image:, environment:, ports:, ...).")
    for key in body:
        if key in _REFUSED_KEYS:
            raise ComposeRefused(f"{where} > {key}: is not allowed in ex04: it {_REFUSED_KEYS[key]}.")
        if key not in _SERVICE_KEYS:
            raise ComposeRefused(
                f"{where} > {key}: is not needed in ex04 (the grader reads {', '.join(_SERVICE_KEYS)})."
            )
    image = _text(body.get("image"), f"{where} > image")
    repository, _ = split_image_ref(image)
    if image not in COURSE_IMAGES and repository not in COURSE_IMAGES:
        raise ComposeRefused(
            f"{where} > image: {image[:80]!r} is not a course image: expected one of "
            f"{', '.join(COURSE_IMAGES)}."
        )
    env = tuple(_environment(body.get("environment"), f"{where} > environment"))
    publish = tuple(_ports(body.get("ports"), f"{where} > ports"))
    expose = tuple(_expose(body.get("expose"), f"{where} > expose"))
    depends = tuple(_depends(body.get("depends_on"), f"{where} > depends_on"))
    spec = RunSpec(image=image, publish=publish, env=env, detach=True)
    return ServicePlan(name, spec, depends, expose)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, Scalar) or value.value is None or isinstance(value.value, bool):
        raise ComposeRefused(f"{where} should be a plain value.")
    return str(value.value) if value.quoted or not isinstance(value.value, str) else value.text


def _environment(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, list):
        pairs = []
        for item in value:
            key, has, text = _text(item, where).partition("=")
            if not has:
                raise ComposeRefused(
                    f"{where}: {key!r} has no value; write KEY=VALUE (or a KEY: VALUE mapping)."
                )
            pairs.append((key, text))
    elif isinstance(value, dict):
        pairs = [(key, _env_value(item, where)) for key, item in value.items()]
    else:
        raise ComposeRefused(f"{where} should be a mapping (KEY: value) or a list of KEY=value.")
    if len(pairs) > MAX_ENVIRONMENT:
        raise ComposeRefused(f"{where} sets more than {MAX_ENVIRONMENT} variables.")
    for key, text in pairs:
        if not _ENV_KEY.fullmatch(key):
            raise ComposeRefused(f"{where}: {key[:40]!r} is not an environment variable name.")
        if "\x00" in text:
            raise ComposeRefused(f"{where} > {key}: the value holds a NUL character.")
        yield key, text


def _env_value(item: Any, where: str) -> str:
    if isinstance(item, Scalar) and item.value is None:
        return ""  # KEY: with nothing after it
    if not isinstance(item, Scalar):
        raise ComposeRefused(f"{where}: each value should be a plain value, not a list or a mapping.")
    if isinstance(item.value, bool):
        return "true" if item.value else "false"  # Compose v2 writes booleans this way too
    return str(item.value) if item.quoted or not isinstance(item.value, str) else item.text


def _ports(value: Any, where: str) -> Iterator[PortMapping]:
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_PORTS:
        raise ComposeRefused(f'{where} should be a list of at most {MAX_PORTS} "HOST:CONTAINER" entries.')
    count = 0
    for item in value:
        if isinstance(item, dict):
            raise ComposeRefused(f'{where}: write each port in the short form, "127.0.0.1:8050:50".')
        if not isinstance(item, Scalar):
            raise ComposeRefused(f"{where}: each entry should be a plain value.")
        if item.sexagesimal:
            raise ComposeRefused(
                f"{where}: - {item.text} is not quoted, and YAML 1.1 (docker-compose v1, PyYAML, many other "
                f"tools) reads {item.text} as the base-60 number {item.value}, not as HOST:CONTAINER. "
                f'Quote it: - "{item.text}" (Compose v2 reads it as text, but quoting works everywhere).',
                hint="quote every ports: entry",
            )
        text = str(item.value) if not isinstance(item.value, str) else item.value
        try:
            mappings = parse_publish(text)
        except PortSpecError as error:
            raise ComposeRefused(f"{where}: {error.message}", hint=error.hint) from None
        count += len(mappings)
        if count > MAX_PORTS:
            raise ComposeRefused(
                f"{where}: - {text[:60]} publishes {len(mappings)} ports; the grader publishes at most "
                f"{MAX_PORTS} per service (ex04 needs one)."
            )
        yield from mappings


def _expose(value: Any, where: str) -> Iterator[int]:
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_PORTS:
        raise ComposeRefused(f"{where} should be a list of at most {MAX_PORTS} container ports.")
    for item in value:
        text = _text(item, where).removesuffix("/tcp")
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ComposeRefused(f"{where}: {text[:20]!r} is not a container port.")
        yield int(text)


def _depends(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            yield _text(item, where), "service_started"
        return
    if not isinstance(value, dict):
        raise ComposeRefused(f"{where} should list services, or map each to a condition.")
    for name, body in value.items():
        condition = body.get("condition") if isinstance(body, dict) else None
        wanted = (
            _text(condition, f"{where} > {name} > condition") if condition is not None else "service_started"
        )
        if wanted not in CONDITIONS:
            raise ComposeRefused(
                f"{where} > {name} > condition: {wanted[:40]!r} is not one of {', '.join(CONDITIONS)}."
            )
        yield name, wanted


def _ordered(plans: dict[str, ServicePlan]) -> tuple[ServicePlan, ...]:
    """Each service after the ones it depends on; unknown names and cycles are refused."""
    for plan in plans.values():
        for other, _ in plan.depends_on:
            if other not in plans:
                raise ComposeRefused(
                    f"services > {plan.name} > depends_on names {other!r}, which is not a service."
                )
    done: list[ServicePlan] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if any(item.name == name for item in done):
            return
        if name in visiting:
            raise ComposeRefused(f"depends_on goes round in a circle: {' -> '.join((*path, name))}.")
        visiting.add(name)
        for other, _ in plans[name].depends_on:
            visit(other, (*path, name))
        visiting.discard(name)
        done.append(plans[name])

    for name in plans:
        visit(name, ())
    return tuple(done)


def _reason(why: str) -> str:
    return why if why.startswith("is ") else f"it {why}"


def _short(error: yaml.YAMLError) -> str:
    return " ".join(str(error).split())[:300]
