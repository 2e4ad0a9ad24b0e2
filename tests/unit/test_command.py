"""Unit tests for portbinding.command: a learner's docker run line, checked against the course policy."""

from __future__ import annotations

import contextlib
import shlex

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portbinding.command import COURSE_IMAGES, RunSpec, parse_run
from portbinding.errors import PolicyError, PortSpecError
from portbinding.ports import PortMapping

NOTEBOOK = "portbinding/notebook"
P8888 = PortMapping(8888, "tcp", "", 8888)

ACCEPTED = [
    ("docker run -p 8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    ("docker run -p8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    ("docker run -p=8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    ("docker run --publish 8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    ("docker run --publish=8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    (
        "docker run -p 127.0.0.1:8888:8888 portbinding/notebook",
        RunSpec(NOTEBOOK, publish=(PortMapping(8888, "tcp", "127.0.0.1", 8888),)),
    ),
    (
        "docker run -p 8000-8001:8000-8001 portbinding/notebook",
        RunSpec(NOTEBOOK, publish=(PortMapping(8000, "tcp", "", 8000), PortMapping(8001, "tcp", "", 8001))),
    ),
    ("docker run -dp 8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,), detach=True)),
    ("docker run -dp8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,), detach=True)),
    ("docker run -P portbinding/notebook", RunSpec(NOTEBOOK, publish_all=True)),
    ("docker run --publish-all portbinding/notebook", RunSpec(NOTEBOOK, publish_all=True)),
    ("docker run -d portbinding/notebook", RunSpec(NOTEBOOK, detach=True)),
    ("docker run --detach portbinding/notebook", RunSpec(NOTEBOOK, detach=True)),
    ("docker run --rm portbinding/notebook", RunSpec(NOTEBOOK, remove=True)),
    ("docker run -it portbinding/notebook", RunSpec(NOTEBOOK, interactive=True, tty=True)),
    ("docker run -i -t portbinding/notebook", RunSpec(NOTEBOOK, interactive=True, tty=True)),
    ("docker run --interactive --tty portbinding/notebook", RunSpec(NOTEBOOK, interactive=True, tty=True)),
    ("docker run -itd portbinding/notebook", RunSpec(NOTEBOOK, interactive=True, tty=True, detach=True)),
    ("docker run --name lab-notebook portbinding/notebook", RunSpec(NOTEBOOK, name="lab-notebook")),
    ("docker run --name=lab.1 portbinding/notebook", RunSpec(NOTEBOOK, name="lab.1")),
    ("docker run -e TOKEN=abc portbinding/notebook", RunSpec(NOTEBOOK, env=(("TOKEN", "abc"),))),
    (
        "docker run --env=A=b=c -eEMPTY= --env X_1=y portbinding/notebook",
        RunSpec(NOTEBOOK, env=(("A", "b=c"), ("EMPTY", ""), ("X_1", "y"))),
    ),
    ("podman run -p 8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    ("docker container run -p 8888:8888 portbinding/notebook", RunSpec(NOTEBOOK, publish=(P8888,))),
    ("docker run portbinding/notebook:1.0", RunSpec("portbinding/notebook:1.0")),
    (
        "docker run -d -p 8888:8888 portbinding/notebook-loopback --ServerApp.ip=''",
        RunSpec("portbinding/notebook-loopback", publish=(P8888,), detach=True, command=("--ServerApp.ip=",)),
    ),
    (
        "docker run -p 8888:8888 portbinding/notebook --ip='*'",
        RunSpec(NOTEBOOK, publish=(P8888,), command=("--ip=*",)),
    ),
    (
        "docker run -p 8888:8888 portbinding/notebook --ip=0.0.0.0",
        RunSpec(NOTEBOOK, publish=(P8888,), command=("--ip=0.0.0.0",)),
    ),
    ("docker run portbinding/notebook -p 1 --rm", RunSpec(NOTEBOOK, command=("-p", "1", "--rm"))),
    ("docker run --rm -- portbinding/notebook -d", RunSpec(NOTEBOOK, remove=True, command=("-d",))),
]


@pytest.mark.parametrize(("line", "expected"), ACCEPTED, ids=[line for line, _ in ACCEPTED])
def test_accepted_line_gives_the_run_spec(line: str, expected: RunSpec) -> None:
    """Each supported form of a docker run line parses to the RunSpec it means."""
    assert parse_run(line) == expected


@pytest.mark.parametrize(("line", "expected"), ACCEPTED, ids=[line for line, _ in ACCEPTED])
def test_accepted_line_round_trips_through_to_cli(line: str, expected: RunSpec) -> None:
    """The canonical line written by to_cli parses back to the same RunSpec."""
    assert parse_run(expected.to_cli()) == expected, expected.to_cli()


def test_argument_list_is_taken_as_words_without_splitting() -> None:
    """A list is used as the argument vector as-is: a word with spaces stays one word."""
    spec = parse_run(["docker", "run", "-p", "8888:8888", NOTEBOOK, "echo", "a b; c"])
    assert spec.command == ("echo", "a b; c")


def test_allowed_images_replaces_the_course_list() -> None:
    """A caller-supplied list is the only one allowed, with or without a tag on the line."""
    assert parse_run("docker run demo/app:2", allowed_images=["demo/app"]).image == "demo/app:2"
    with pytest.raises(PolicyError):
        parse_run(f"docker run {NOTEBOOK}", allowed_images=["demo/app"])


REFUSED = [
    ("--privileged", "--privileged"),
    ("-v /:/host", "-v"),
    ("--volume=/:/host", "--volume"),
    ("-dv /:/host", "-v"),
    ("--mount type=bind,src=/,dst=/host", "--mount"),
    ("--network host", "--network"),
    ("--net=host", "--net"),
    ("--pid host", "--pid"),
    ("--ipc host", "--ipc"),
    ("--uts host", "--uts"),
    ("--userns host", "--userns"),
    ("--cap-add ALL", "--cap-add"),
    ("--device /dev/sda", "--device"),
    ("--user 1000", "--user"),
    ("-u root", "-u"),
    ("--security-opt seccomp=unconfined", "--security-opt"),
    ("--volumes-from other", "--volumes-from"),
    ("--add-host db:10.0.0.1", "--add-host"),
    ("--dns 8.8.8.8", "--dns"),
    ("--entrypoint sh", "--entrypoint"),
    ("--cgroupns host", "--cgroupns"),
    ("--sysctl net.ipv4.ip_forward=1", "--sysctl"),
    ("--tmpfs /tmp", "--tmpfs"),
    ("--workdir /", "--workdir"),
    ("-w /", "-w"),
    ("--gpus all", "--gpus"),
    ("--runtime runc", "--runtime"),
    ("--init", "--init"),
    ("--env-file secrets.env", "--env-file"),
    ("--expose 8888", "--expose"),
    ("-h lab", "-h"),
    ("--rm=false", "--rm"),
]


@pytest.mark.parametrize(("options", "flag"), REFUSED, ids=[options for options, _ in REFUSED])
def test_refused_flag_raises_policy_error_naming_the_flag(options: str, flag: str) -> None:
    """Every option outside the course policy is refused, and the message names it."""
    with pytest.raises(PolicyError) as caught:
        parse_run(f"docker run {options} -p 8888:8888 {NOTEBOOK}")
    assert flag in str(caught.value), f"message should name {flag}: {caught.value}"
    assert caught.value.hint, "every refusal needs a next step"


def test_user_refusal_says_root_is_never_allowed() -> None:
    """--user is refused with the reason: not needed, and never root."""
    with pytest.raises(PolicyError) as caught:
        parse_run(f"docker run --user root {NOTEBOOK}")
    assert "root is never allowed" in caught.value.message


def test_unknown_image_is_refused_listing_the_course_images() -> None:
    """An image outside the course list is refused and the message lists every allowed image."""
    with pytest.raises(PolicyError) as caught:
        parse_run("docker run -p 8888:8888 ubuntu")
    assert "'ubuntu'" in caught.value.message
    for image in COURSE_IMAGES:
        assert image in caught.value.message, f"{image} missing from {caught.value.message}"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("docker", "'docker' on its own"),
        ("docker exec -it lab sh", "'docker exec'"),
        ("docker container exec lab sh", "'docker container exec'"),
        ("sudo docker run portbinding/notebook", "sudo"),
        ("kubectl run lab --image=portbinding/notebook", "'kubectl'"),
        ("docker run -p 8888:8888 'portbinding/notebook", "never closed"),
        ('docker run portbinding/notebook --ip="0.0.0.0', "never closed"),
        ("docker run portbinding/notebook \\", "backslash"),
        ("docker run -d -p 8888:8888", "no image"),
        ("docker run --rm --", "no image"),
        ("docker run portbinding/notebook -p", None),
        ("docker run -p", "-p needs a value"),
        ("docker run --name", "--name needs a value"),
        ("docker run -e TOKEN portbinding/notebook", "-e TOKEN has no value"),
        ("docker run -e 1X=y portbinding/notebook", "'1X'"),
        ("docker run --name x portbinding/notebook", "'x' is not a valid container name"),
        ("docker run --name -lab portbinding/notebook", "'-lab' is not a valid container name"),
        ("docker run portbinding/notebook: ", "not a valid image tag"),
        ("docker run localhost:5000/portbinding/notebook", "not one of the course images"),
        ("docker run docker.io/portbinding/notebook", "not one of the course images"),
        ("docker run PortBinding/notebook", "not one of the course images"),
    ],
)
def test_line_outside_the_policy_raises_a_learner_message(line: str, fragment: str | None) -> None:
    """Lines the course cannot run raise PolicyError saying what was expected and what to do."""
    if fragment is None:
        # The words after the image belong to the image's command, so this one is accepted.
        assert parse_run(line).command == ("-p",)
        return
    with pytest.raises(PolicyError) as caught:
        parse_run(line)
    assert fragment in caught.value.message, f"message should contain {fragment!r}: {caught.value.message}"
    assert caught.value.hint, "every PolicyError needs a next step"


def test_invalid_publish_value_raises_port_spec_error() -> None:
    """A -p value Docker would reject raises the ports module's PortSpecError."""
    with pytest.raises(PortSpecError, match="70000"):
        parse_run(f"docker run -p 70000:8888 {NOTEBOOK}")


@pytest.mark.parametrize(
    "line",
    [
        "docker run portbinding/notebook; rm -rf /",
        "docker run portbinding/notebook&& reboot",
        "docker run $(reboot)",
        "docker run `reboot`",
        "docker run portbinding/notebook|sh",
    ],
)
def test_shell_syntax_glued_to_the_image_is_an_unknown_image(line: str) -> None:
    """Shell operators are not interpreted: glued to the image they make an unknown image."""
    with pytest.raises(PolicyError, match="not one of the course images"):
        parse_run(line)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("docker run portbinding/notebook ; rm -rf /", (";", "rm", "-rf", "/")),
        ("docker run portbinding/notebook echo $(reboot)", ("echo", "$(reboot)")),
        ("docker run portbinding/notebook echo `reboot`", ("echo", "`reboot`")),
        ("docker run portbinding/notebook sh -c 'rm -rf / ; reboot'", ("sh", "-c", "rm -rf / ; reboot")),
        ("docker run portbinding/notebook '$HOME' \"$(id)\"", ("$HOME", "$(id)")),
    ],
)
def test_shell_syntax_after_the_image_stays_plain_quoted_words(line: str, command: tuple[str, ...]) -> None:
    """Shell syntax after the image is just command words, and to_cli quotes them safely."""
    spec = parse_run(line)
    assert spec.command == command
    assert shlex.split(spec.to_cli()) == spec.to_argv(), "to_cli must split back into to_argv"
    assert parse_run(spec.to_cli()) == spec


def test_environment_value_with_shell_syntax_is_quoted_by_to_cli() -> None:
    """An -e value such as $(reboot) is quoted, never expanded."""
    spec = parse_run(f"docker run -e 'X=$(reboot)' {NOTEBOOK}")
    assert spec.env == (("X", "$(reboot)"),)
    assert "'X=$(reboot)'" in spec.to_cli(), spec.to_cli()


def test_to_argv_writes_the_canonical_order() -> None:
    """Options come in a fixed order: flags, name, ports, env, then image and command."""
    spec = RunSpec(
        NOTEBOOK,
        name="lab",
        publish=(P8888,),
        publish_all=True,
        env=(("K", "V"),),
        detach=True,
        remove=True,
        interactive=True,
        tty=True,
        command=("start-notebook.sh", "--ip=0.0.0.0"),
    )
    assert spec.to_argv(program="podman") == [
        "podman",
        "run",
        "-d",
        "--rm",
        "-i",
        "-t",
        "--name",
        "lab",
        "-p",
        "8888:8888",
        "-P",
        "-e",
        "K=V",
        NOTEBOOK,
        "start-notebook.sh",
        "--ip=0.0.0.0",
    ]
    assert spec.to_cli() == (
        "docker run -d --rm -i -t --name lab -p 8888:8888 -P -e K=V portbinding/notebook "
        "start-notebook.sh --ip=0.0.0.0"
    )


def test_replace_returns_a_changed_copy() -> None:
    """replace changes only the named fields and leaves the original alone."""
    spec = RunSpec(NOTEBOOK, publish=(P8888,))
    changed = spec.replace(detach=True)
    assert changed == RunSpec(NOTEBOOK, publish=(P8888,), detach=True)
    assert not spec.detach, "the original must be unchanged"


@given(st.text())
@example("docker run -p")
@example("docker run '")
def test_arbitrary_text_raises_nothing_but_policy_or_port_spec_error(line: str) -> None:
    """Any text is either a RunSpec or a PolicyError/PortSpecError, never another exception."""
    with contextlib.suppress(PolicyError, PortSpecError):
        parse_run(line)


@given(st.text())
def test_text_after_docker_run_raises_nothing_but_policy_or_port_spec_error(rest: str) -> None:
    """Arbitrary options after `docker run` are parsed or refused, never crash the parser."""
    with contextlib.suppress(PolicyError, PortSpecError):
        parse_run("docker run " + rest)


WORDS = [
    "-d",
    "-it",
    "-dp",
    "-p",
    "-e",
    "--rm",
    "-P",
    "--name",
    "--",
    "8888:8888",
    "127.0.0.1::80",
    "K=V",
    "lab1",
    "-v",
    "'",
    "$(x)",
    ";",
    "=",
    NOTEBOOK,
    "portbinding/slow-start:1",
]


@given(st.lists(st.sampled_from(WORDS), max_size=8))
def test_lines_of_course_words_parse_or_refuse_and_round_trip(words: list[str]) -> None:
    """Lines built from typical words either raise the course's errors or round-trip through to_cli."""
    try:
        spec = parse_run("docker run " + " ".join(words))
    except (PolicyError, PortSpecError):
        return
    assert parse_run(spec.to_cli()) == spec, spec.to_cli()
    assert shlex.split(spec.to_cli()) == spec.to_argv()


publish_mappings = st.builds(
    PortMapping,
    st.integers(min_value=1, max_value=65535),
    st.sampled_from(["tcp", "udp", "sctp"]),
    st.sampled_from(["", "127.0.0.1", "::1", "0.0.0.0"]),
    st.none() | st.integers(min_value=0, max_value=65535),
)
run_specs = st.builds(
    RunSpec,
    image=st.sampled_from(COURSE_IMAGES) | st.sampled_from(COURSE_IMAGES).map(lambda image: image + ":1.0"),
    name=st.none() | st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", fullmatch=True),
    publish=st.lists(publish_mappings, max_size=3).map(tuple),
    publish_all=st.booleans(),
    env=st.lists(
        st.tuples(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True), st.text()), max_size=3
    ).map(tuple),
    detach=st.booleans(),
    remove=st.booleans(),
    interactive=st.booleans(),
    tty=st.booleans(),
    command=st.lists(st.text(), max_size=4).map(tuple),
)


@given(run_specs)
def test_valid_run_spec_round_trips_through_to_cli_and_to_argv(spec: RunSpec) -> None:
    """Any RunSpec the policy allows survives to_cli (shell quoting) and to_argv unchanged."""
    assert parse_run(spec.to_cli()) == spec, spec.to_cli()
    assert parse_run(spec.to_argv()) == spec


# ---------------------------------------------------------------- lesson 07: --network


def test_a_user_defined_network_and_aliases_are_read_when_networks_are_allowed() -> None:
    """--network NAME and --network-alias come through, and print back as typed."""
    spec = parse_run(
        "docker run -d --name api --network shop --network-alias scoring -e PORT=8000 "
        "portbinding/scoring-api:1.0",
        networks=True,
    )
    assert (spec.network, spec.aliases) == ("shop", ("scoring",)), spec
    assert parse_run(spec.to_cli(), networks=True) == spec, spec.to_cli()


def test_network_options_stay_refused_where_the_course_does_not_need_them() -> None:
    """Lessons 01-06 and the graded lines keep refusing --network and --add-host, with the reason."""
    for line in (
        "docker run -d --network shop portbinding/scoring-api:1.0",
        "docker run -d --network host portbinding/scoring-api:1.0",
        "docker run -d --add-host=host.docker.internal:host-gateway portbinding/scoring-api:1.0",
    ):
        with pytest.raises(PolicyError, match=r"not allowed|not one this course supports"):
            parse_run(line)


def test_lesson_07_may_show_host_networking_and_reach_the_host_by_name() -> None:
    """--network host (the tempting non-fix) and host.docker.internal's host-gateway, read back as typed."""
    spec = parse_run(
        "docker run -d --network host --add-host=host.docker.internal:host-gateway "
        "portbinding/scoring-api:1.0",
        networks=True,
    )
    assert spec.network == "host" and spec.host_gateway, spec
    assert parse_run(spec.to_cli(), networks=True) == spec, spec.to_cli()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (
            "docker run -d --network host --network-alias api portbinding/scoring-api:1.0",
            "names no --network",
        ),
        ("docker run -d --add-host=evil.example:1.2.3.4 portbinding/scoring-api:1.0", "only --add-host"),
        ("docker run -d --net=none portbinding/scoring-api:1.0", "without a network"),
        ("docker run -d --network container:db portbinding/scoring-api:1.0", "user-defined network"),
        ("docker run -d --network-alias db portbinding/redis:1.0", "names no --network"),
        (
            "docker run -d --network shop --network-alias 'db;x' portbinding/redis:1.0",
            "not a usable network alias",
        ),
    ],
)
def test_networks_that_remove_isolation_or_make_no_sense_are_refused(line: str, words: str) -> None:
    with pytest.raises(PolicyError, match=words):
        parse_run(line, networks=True)
