"""Drawing challenges: pure, seeded, varied, and refusing what cannot be drawn."""

from __future__ import annotations

import pytest

from portbinding.challenge.draw import HOST_PORTS, VARIANTS, draw, first_free
from portbinding.challenge.ladder import CHALLENGE_CAUSES, LAYER_OF
from portbinding.challenge.services import SERVICE_NAMES
from portbinding.errors import UnknownName


def always_free(port: int) -> bool:
    return True


def test_the_same_seed_draws_the_same_challenge() -> None:
    """A seed is a challenge: an instructor can hand one out and a test can replay it."""
    first = draw(1234, is_free=always_free)
    again = draw(1234, is_free=always_free)
    assert first == again, f"seed 1234 drew {first} then {again}"


def test_twenty_seeds_give_at_least_six_cause_image_pairs() -> None:
    """Two learners rarely get the same challenge: 20 seeds spread over causes and images."""
    pairs = {(d.cause, d.service) for d in (draw(seed, is_free=always_free) for seed in range(20))}
    assert len(pairs) >= 6, f"only {len(pairs)} distinct (cause, image) pairs over 20 seeds: {sorted(pairs)}"


def test_every_cause_is_drawn_and_has_a_rung() -> None:
    """Every cause the issue lists can be drawn, and each belongs to a rung of the ladder."""
    drawn = {draw(seed, is_free=always_free).cause for seed in range(200)}
    assert drawn == set(CHALLENGE_CAUSES), f"never drawn: {set(CHALLENGE_CAUSES) - drawn}"
    assert all(cause in LAYER_OF for cause in CHALLENGE_CAUSES), "a cause without a rung"


@pytest.mark.parametrize("cause", CHALLENGE_CAUSES)
def test_a_forced_cause_is_respected(cause: str) -> None:
    """--cause C draws only challenges with that cause, on a service that can show it."""
    for seed in range(10):
        got = draw(seed, cause=cause, is_free=always_free)
        assert got.cause == cause, f"asked for {cause}, drew {got.cause} (seed {seed})"
        assert got.service in SERVICE_NAMES, f"unknown service {got.service}"


def test_a_choice_of_causes_draws_only_those_and_each_of_them() -> None:
    """A lesson can offer a few causes: Challenge(causes=[...]) draws among them only."""
    got = {draw(seed, cause=["crashed", "not_published"], is_free=always_free).cause for seed in range(30)}
    assert got == {"crashed", "not_published"}, f"drew {got}"


def test_a_forced_image_is_respected() -> None:
    """--image I draws only challenges on that image."""
    got = {draw(seed, image="scoring-api", is_free=always_free).service for seed in range(15)}
    assert got == {"scoring-api"}, f"asked for scoring-api, drew {got}"


def test_published_container_ports_differ_from_the_listening_one_only_for_wrong_ports() -> None:
    """The draw's numbers tell the truth about each variant: only a wrong -p points elsewhere."""
    for variant in VARIANTS:
        for seed in range(5):
            got = draw(seed, cause=variant.cause, image=variant.service, is_free=always_free)
            if got.container_port is None:
                assert got.cause == "not_published", f"{got.variant} publishes nothing"
                continue
            wrong = got.container_port != got.listens_on
            expected_wrong = got.cause in ("wrong_container_port", "port_retried", "wrong_service")
            assert wrong == expected_wrong, (
                f"{got.variant}: -p to {got.container_port}, listens on {got.listens_on}"
            )


def test_host_ports_are_in_the_challenge_range() -> None:
    ports = {draw(seed, is_free=always_free).host_port for seed in range(30)}
    assert all(port in HOST_PORTS for port in ports), f"out of range: {sorted(ports)}"
    assert len(ports) > 20, f"30 seeds shared only {len(ports)} host ports"


def test_a_taken_host_port_moves_to_the_next_free_one() -> None:
    """A port something else holds is never drawn: the next free one is."""
    taken = draw(77, is_free=always_free).host_port
    moved = draw(77, is_free=lambda port: port != taken).host_port
    assert moved == taken + 1 or (taken == HOST_PORTS.stop - 1 and moved == HOST_PORTS.start), (
        f"{taken} taken, drew {moved}"
    )
    assert first_free(HOST_PORTS.stop - 1, is_free=lambda p: p != HOST_PORTS.stop - 1) == HOST_PORTS.start


def test_a_start_up_delay_can_be_set_for_still_starting() -> None:
    got = draw(3, cause="still_starting", startup_delay=7, is_free=always_free)
    assert ("STARTUP_DELAY", "7") in got.env, f"the delay was not used: {got.env}"


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"cause": "gremlins"}, "no challenge cause called 'gremlins'"),
        ({"image": "nginx"}, "no challenge image called 'nginx'"),
        ({"cause": "port_retried", "image": "scoring-api"}, "port_retried on notebook"),
        ({"cause": ["crashed", "gremlins"]}, "no challenge cause called 'gremlins'"),
    ],
)
def test_what_cannot_be_drawn_is_refused_with_the_choices(kwargs: dict[str, str], needle: str) -> None:
    with pytest.raises(UnknownName) as caught:
        draw(1, is_free=always_free, **kwargs)  # type: ignore[arg-type]
    assert needle in str(caught.value), f"the message does not say {needle!r}: {caught.value}"


def test_port_taken_has_a_squatter_of_another_service_on_the_same_host_port() -> None:
    for seed in range(10):
        got = draw(seed, cause="port_taken", is_free=always_free)
        assert got.squatter is not None, "port_taken without anything holding the port"
        assert got.squatter.publish[0].host_port == got.host_port, "the squatter holds another port"
        assert got.source_image != got.squatter.image, "the squatter is the expected service itself"
