"""Unit tests for portbinding.ports: the -p/--publish syntax as the Docker CLI reads it.

tests/engine/test_ports_oracle.py checks the same behaviour against the real CLI.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portbinding.dockerjson import PortBinding, PortMap
from portbinding.errors import PortSpecError
from portbinding.ports import (
    PortMapping,
    bracket_host,
    from_bindings,
    parse_publish,
    to_docker_ports,
    validate_port,
)

VALID = [
    ("8888:8888", [PortMapping(8888, "tcp", "", 8888)]),
    ("80", [PortMapping(80, "tcp", "", None)]),
    ("127.0.0.1:8888:8888", [PortMapping(8888, "tcp", "127.0.0.1", 8888)]),
    ("127.0.0.1::80", [PortMapping(80, "tcp", "127.0.0.1", None)]),
    (":80", [PortMapping(80, "tcp", "", None)]),
    ("::80", [PortMapping(80, "tcp", "", None)]),
    ("::::80", [PortMapping(80, "tcp", "::", None)]),
    ("5353:53/udp", [PortMapping(53, "udp", "", 5353)]),
    ("80/TCP", [PortMapping(80, "tcp", "", None)]),
    ("80/Sctp", [PortMapping(80, "sctp", "", None)]),
    ("80/", [PortMapping(80, "tcp", "", None)]),
    ("80//udp", [PortMapping(80, "tcp", "", None)]),
    ("80/tcp/x", [PortMapping(80, "tcp", "", None)]),
    ("[::1]:8080:80", [PortMapping(80, "tcp", "::1", 8080)]),
    ("::1:8080:80", [PortMapping(80, "tcp", "::1", 8080)]),
    ("[::FFFF:7F00:1]:80:80", [PortMapping(80, "tcp", "::FFFF:7F00:1", 80)]),
    ("[127.0.0.1]:80:80", [PortMapping(80, "tcp", "127.0.0.1", 80)]),
    ("[]:80:80", [PortMapping(80, "tcp", "", 80)]),
    ("080", [PortMapping(80, "tcp", "", None)]),
    ("0:80", [PortMapping(80, "tcp", "", 0)]),
    ("80:0", [PortMapping(0, "tcp", "", 80)]),
    (
        "8000-8002:8000-8002",
        [PortMapping(8000 + i, "tcp", "", 8000 + i) for i in range(3)],
    ),
    ("80-82", [PortMapping(80 + i, "tcp", "", None) for i in range(3)]),
    ("8000-8010:80", [PortMapping(80, "tcp", "", 8000, 8010)]),
    ("8000-8000:80", [PortMapping(80, "tcp", "", 8000)]),
    ("80-81-82", [PortMapping(80, "tcp", "", None), PortMapping(81, "tcp", "", None)]),
    ("target=80,published=8080", [PortMapping(80, "tcp", "", 8080)]),
    ("target=80,protocol=UDP", [PortMapping(80, "udp", "", None)]),
    ("target=80,published=127.0.0.1:8080", [PortMapping(80, "tcp", "127.0.0.1", 8080)]),
]

INVALID = [
    ("", "names no container port"),
    ("80:", "names no container port"),
    ("/tcp", "names no container port"),
    ("published=8080", "target port"),
    ("80/icmp", "'icmp'"),
    ("70000", "ports run from 1 to 65535"),
    ("65536:80", "ports run from 1 to 65535"),
    ("+80", "digits only"),
    (" 80", "digits only"),
    ("80_0", "digits only"),
    ("\uff18\uff10", "digits only"),
    ("80-", "not a port range"),
    ("-80", "not a port range"),
    ("80--81", "not a port range"),
    ("5-3", "first port must not be larger"),
    ("1-3:1-2", "same length"),
    ("80:8000-8010", "same length"),
    ("localhost:80:80", "'localhost'"),
    ("127.1:80:80", "not an IP address"),
    ("01.2.3.4:80:80", "not an IP address"),
    ("fe80::1%eth0:80:80", "not an IP address"),
    ("0.0.0.0:80", "where the host port belongs"),
    ("[::1]:80", "not a bracketed IP address"),
    ("[[::1]]:80:80", "not a bracketed IP address"),
    ("target=80,foo", "name=value"),
    ("=", "name=value"),
]


@pytest.mark.parametrize(("spec", "expected"), VALID, ids=[spec for spec, _ in VALID])
def test_valid_spec_gives_the_mappings_docker_records(spec: str, expected: list[PortMapping]) -> None:
    """Each valid -p value parses to the mappings Docker creates for it."""
    assert parse_publish(spec) == expected


@pytest.mark.parametrize(("spec", "fragment"), INVALID, ids=[spec for spec, _ in INVALID])
def test_invalid_spec_raises_a_learner_message(spec: str, fragment: str) -> None:
    """Each value Docker refuses raises PortSpecError that says what is wrong and what to do."""
    with pytest.raises(PortSpecError) as caught:
        parse_publish(spec)
    assert fragment in caught.value.message, f"message should mention {fragment!r}: {caught.value.message}"
    assert caught.value.hint, "every PortSpecError needs a next step"


def test_out_of_range_port_message_names_the_value_and_shows_the_correct_form() -> None:
    """A too-large port is quoted back with the valid range and a -p HOST:CONTAINER example."""
    with pytest.raises(PortSpecError) as caught:
        parse_publish("70000:8888")
    text = str(caught.value)
    assert "'70000' is not a port number: ports run from 1 to 65535" in text
    assert "Next step:" in text, f"str() should carry the hint: {text}"
    assert "-p 8888:8888" in text, f"hint should show the correct form: {text}"


def test_ip_where_the_host_port_belongs_suggests_adding_a_host_port() -> None:
    """`-p 0.0.0.0:80` is refused with a hint showing both ways to write what was meant."""
    with pytest.raises(PortSpecError) as caught:
        parse_publish("0.0.0.0:80")
    assert "0.0.0.0:8888:80" in caught.value.hint, "hint should show IP:HOST:CONTAINER"
    assert "0.0.0.0::80" in caught.value.hint, "hint should show IP::CONTAINER for any free port"


def test_ipv6_host_address_in_brackets_is_unwrapped() -> None:
    """Brackets only delimit the address: Docker records ::1 without them."""
    assert parse_publish("[::1]:8080:80")[0].host_ip == "::1"


def test_key_is_dockers_port_and_protocol_name() -> None:
    """The key is the container side as Docker names it."""
    assert PortMapping(53, "udp", "", 5353).key == "53/udp"


CANONICAL = [
    (PortMapping(8888, "tcp", "", 8888), "8888:8888"),
    (PortMapping(80, "tcp", "", None), "80"),
    (PortMapping(53, "udp", "", 5353), "5353:53/udp"),
    (PortMapping(80, "tcp", "127.0.0.1", None), "127.0.0.1::80"),
    (PortMapping(80, "tcp", "::1", 8080), "[::1]:8080:80"),
    (PortMapping(80, "sctp", "", 8000, 8010), "8000-8010:80/sctp"),
]


@pytest.mark.parametrize(("mapping", "spec"), CANONICAL, ids=[spec for _, spec in CANONICAL])
def test_to_spec_writes_the_canonical_publish_value(mapping: PortMapping, spec: str) -> None:
    """to_spec writes the shortest usual form, bracketing IPv6 addresses."""
    assert mapping.to_spec() == spec


def test_to_docker_ports_gives_the_sdk_shape_with_empty_and_range_host_ports() -> None:
    """Host ports are strings: "" for any free port, "8000-8010" for a host range."""
    mappings = [*parse_publish("127.0.0.1::80"), *parse_publish("8000-8010:81/udp")]
    assert to_docker_ports(mappings) == {"80/tcp": [("127.0.0.1", "")], "81/udp": [("", "8000-8010")]}


def test_to_docker_ports_collects_several_bindings_of_one_container_port() -> None:
    """Two -p values for the same container port give two bindings, as `docker run` makes."""
    mappings = [*parse_publish("127.0.0.1:8888:8888"), *parse_publish("[::1]:8888:8888")]
    assert to_docker_ports(mappings) == {"8888/tcp": [("127.0.0.1", "8888"), ("::1", "8888")]}


@pytest.mark.parametrize(
    "fields",
    [
        (70000, "tcp", "", None, None),
        (80, "TCP", "", None, None),
        (80, "tcp", "localhost", None, None),
        (80, "tcp", "[::1]", None, None),
        (80, "tcp", "", -1, None),
        (80, "tcp", "", None, 8010),
        (80, "tcp", "", 8010, 8000),
        (80, "tcp", "", 8000, 8000),
    ],
    ids=str,
)
def test_port_mapping_refuses_fields_docker_could_not_record(
    fields: tuple[int, str, str, int | None, int | None],
) -> None:
    """A PortMapping can only hold what a -p value can express, so to_spec always round-trips."""
    with pytest.raises(PortSpecError):
        PortMapping(*fields)


@pytest.mark.parametrize("value", [1, 8888, 65535])
def test_validate_port_returns_a_usable_port(value: int) -> None:
    """Ports 1 to 65535 pass through unchanged."""
    assert validate_port(value, what="host port") == value


@pytest.mark.parametrize("value", [0, -1, 65536, 70000])
def test_validate_port_refuses_zero_and_out_of_range_naming_what(value: int) -> None:
    """0 and values outside 1-65535 raise PortSpecError naming the port's role."""
    with pytest.raises(PortSpecError) as caught:
        validate_port(value, what="host port")
    assert "host port" in caught.value.message, caught.value.message
    assert str(value) in caught.value.message, caught.value.message


def _check_round_trip_of_accepted(spec: str) -> None:
    try:
        mappings = parse_publish(spec)
    except PortSpecError:
        return
    for mapping in mappings:
        assert parse_publish(mapping.to_spec()) == [mapping], f"{spec!r} -> {mapping.to_spec()!r}"
    recorded = as_engine_json(to_docker_ports(mappings))
    assert from_bindings(recorded) == sorted(mappings, key=lambda m: m.key), (
        f"{spec!r}: read back from {recorded}"
    )


def as_engine_json(ports: dict[str, list[tuple[str, str]]]) -> PortMap:
    """to_docker_ports' shape as the engine records it in HostConfig.PortBindings."""
    return {
        key: [PortBinding(HostIp=ip, HostPort=port) for ip, port in pairs] for key, pairs in ports.items()
    }


@given(st.text())
@example("\uff18\uff10")
@example("8_0")
@example("80\n")
def test_arbitrary_text_raises_nothing_but_port_spec_error(spec: str) -> None:
    """Any string either parses or raises PortSpecError; accepted ones round-trip through to_spec."""
    _check_round_trip_of_accepted(spec)


@given(st.text(alphabet="0123456789:.-/[]abcdefptu", max_size=40))
@example("[::1]:8080:80/udp")
@example("1-3:1-2")
def test_port_like_text_raises_nothing_but_port_spec_error(spec: str) -> None:
    """Text made of port-spec characters either parses or raises PortSpecError, and round-trips."""
    _check_round_trip_of_accepted(spec)


ports = st.integers(min_value=0, max_value=65535)
host_ips = st.one_of(
    st.just(""),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda address: address.exploded),
    st.ip_addresses(v=6).map(lambda address: str(address).upper()),
)


@st.composite
def mappings(draw: st.DrawFn) -> PortMapping:
    host_port = draw(st.none() | ports)
    host_port_end = None
    if host_port is not None and host_port < 65535 and draw(st.booleans()):
        host_port_end = draw(st.integers(min_value=host_port + 1, max_value=65535))
    return PortMapping(
        draw(ports), draw(st.sampled_from(["tcp", "udp", "sctp"])), draw(host_ips), host_port, host_port_end
    )


@given(mappings())
def test_valid_mapping_round_trips_through_its_spec(mapping: PortMapping) -> None:
    """parse_publish(m.to_spec()) gives back exactly m."""
    assert parse_publish(mapping.to_spec()) == [mapping], f"spec was {mapping.to_spec()!r}"


def test_a_host_range_for_one_container_port_is_kept_as_docker_keeps_it() -> None:
    """-p 1234-1235:80: the engine picks one of the two, so the range stays whole, there and back."""
    [mapping] = parse_publish("1234-1235:80")
    assert (mapping.host_port, mapping.host_port_end) == (1234, 1235), mapping
    assert to_docker_ports([mapping]) == {"80/tcp": [("", "1234-1235")]}, "the engine must be given the range"
    assert from_bindings({"80/tcp": [{"HostIp": "", "HostPort": "1234-1235"}]}) == [mapping], (
        "read back whole"
    )
    assert mapping.to_spec() == "1234-1235:80", mapping.to_spec()


def test_bindings_read_back_leave_out_unpublished_ports_and_keep_any_free_port() -> None:
    """Podman's null bindings publish nothing; an empty host port means any free port."""
    read = from_bindings({"80/tcp": None, "81/udp": [{"HostIp": "::1", "HostPort": ""}], "82/tcp": []})
    assert read == [PortMapping(81, "udp", "::1", None), PortMapping(82, "tcp", "", None)], read


def test_remapping_one_side_keeps_the_other() -> None:
    mapping = PortMapping(8888, "tcp", "127.0.0.1", 8000, 8010)
    assert mapping.with_container_port(9999) == PortMapping(9999, "tcp", "127.0.0.1", 8000, 8010)
    assert mapping.with_host_port(8005) == PortMapping(8888, "tcp", "127.0.0.1", 8005), "a range becomes one"
    assert mapping.with_host_port(None, host_ip="") == PortMapping(8888, "tcp", "", None)


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("[::1]", "[::1]"), ("localhost", "localhost"), ("", "")],
)
def test_bracket_host_puts_ipv6_addresses_in_brackets_once(host: str, shown: str) -> None:
    assert bracket_host(host) == shown, f"{host!r} should be shown as {shown!r}"
