"""The exercise images, run on the real engine: each behaves as its lesson needs."""

from __future__ import annotations

import io
import time

import pytest
from docker.models.containers import Container

from portbinding.builder import BuiltImage, build_images, image_status, list_images, source_digest
from portbinding.command import parse_run
from portbinding.diagnose import look_inside
from portbinding.engine import Engine
from portbinding.images import IMAGES, SOURCE_LABEL, ImageDef
from portbinding.probe import is_jupyter, probe_http, wait_until, wait_until_ready


@pytest.mark.engines(
    "docker",
    "podman",
    reason="checks images built by Docker; the process engine runs the image folders, it builds nothing",
)
def test_every_image_is_built_tagged_and_labelled(engine: Engine, course_images: list[BuiltImage]) -> None:
    """Each image definition ends up tagged with all its tags and carries the course labels."""
    assert {b.image for b in course_images} == set(IMAGES), "build_images skipped a definition"
    for image in IMAGES:
        for tag in image.tags:
            found = engine.client.images.get(tag)
            labels = found.labels
            assert labels.get("portbinding.image") == image.name, f"{tag} labels: {labels}"
            assert labels.get("portbinding.image.version"), f"{tag} has no version label"
            assert labels.get("portbinding.image.scenario"), f"{tag} has no scenario label"
            assert labels.get(SOURCE_LABEL) == source_digest(image), f"{tag} is not labelled with its files"


@pytest.mark.engines(
    "docker",
    "podman",
    reason="checks images built by Docker; the process engine runs the image folders, it builds nothing",
)
def test_images_run_as_a_non_root_user_and_expose_their_port(engine: Engine) -> None:
    """No exercise image runs as root, and each EXPOSEs the port its app uses."""
    for image in IMAGES:
        config = engine.client.images.get(image.reference).attrs["Config"]
        assert config.get("User") not in ("", "root", "0", None), f"{image.reference} runs as root"
        assert config.get("ExposedPorts"), f"{image.reference} exposes no port"


@pytest.mark.engines(
    "docker",
    "podman",
    reason="checks images built by Docker; the process engine runs the image folders, it builds nothing",
)
def test_an_image_built_from_another_copy_of_the_course_is_outdated(
    engine: Engine, course_images: list[BuiltImage]
) -> None:
    """The build labels what it was built from; a label this copy's files disagree with is outdated."""
    statuses = list_images(engine.client)
    assert all(s.present and not s.outdated for s in statuses), [s for s in statuses if s.outdated]
    definition = next(image for image in IMAGES if image.name == "crash-before-listen")
    older = f"pbl-test-outdated:{engine.session}"
    engine.client.images.build(
        fileobj=io.BytesIO(f"FROM {definition.reference}\nLABEL {SOURCE_LABEL}=0123\n".encode()),
        tag=older,
        labels=engine.labels,
        rm=True,
    )
    try:
        status = image_status(engine.client, ImageDef(definition.name, (older,)))
        assert (status.present, status.outdated, status.word) == (True, True, "outdated"), status
    finally:
        engine.client.images.remove(older, force=True)


@pytest.mark.engines("docker", reason="builds images, which only Docker does for the course")
def test_a_second_build_is_a_no_op(engine: Engine) -> None:
    """With nothing changed, every image is reported up to date and keeps its id."""
    again = build_images(engine.client)
    assert all(b.cached for b in again), [b.image.reference for b in again if not b.cached]


def test_loopback_notebook_answers_inside_but_not_through_the_published_port(
    engine: Engine, host_port: int
) -> None:
    """notebook-loopback: GET /api answers inside; the host sees a reset, an empty reply or a refusal."""
    container = engine.run(
        parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8888 portbinding/notebook-loopback:1.0")
    )
    inside = wait_until(
        lambda: _jupyter_inside(engine, container), timeout=30, alive=lambda: engine.is_running(container)
    )
    assert inside, "Jupyter never answered GET /api inside the container"
    outside = probe_http(f"http://127.0.0.1:{host_port}/api", timeout=2)
    assert outside.outcome in ("reset", "empty_reply", "refused"), (
        f"expected the published port to fail, got {outside.outcome}: {outside.detail}"
    )


def _jupyter_inside(engine: Engine, container: Container) -> bool:
    """Whether Jupyter's GET /api answers from inside the container, on any listener."""
    _, answers, _ = look_inside(engine, container)
    return any(a.is_jupyter for a in answers)


def test_fixed_notebook_answers_through_the_published_port(engine: Engine, host_port: int) -> None:
    """notebook: Jupyter's GET /api answers {"version": ...} at the published host port."""
    container = engine.run(parse_run(f"docker run -d -p {host_port}:8888 portbinding/notebook:1.0"))
    result = wait_until_ready(engine, container, 8888, path="/api", timeout=30)
    assert result.ok and is_jupyter(result), f"the fixed notebook did not answer: {result.detail}"


def test_crash_before_listen_exits_non_zero_with_its_error_in_the_logs(
    engine: Engine, host_port: int
) -> None:
    """crash-before-listen: exits with status 3 and says which setting is missing."""
    container = engine.run(
        parse_run(f"docker run -d -p {host_port}:8000 portbinding/crash-before-listen:1.0")
    )
    assert wait_until(lambda: not engine.is_running(container), timeout=20), "it should have exited by now"
    state = engine.state(container)
    assert state["ExitCode"] == 3, f"exit code {state['ExitCode']}"
    assert "MODEL_PATH is not set" in engine.logs(container), engine.logs(container)


def test_slow_start_is_unreachable_before_its_delay_and_reachable_after(
    engine: Engine, host_port: int
) -> None:
    """slow-start: nothing answers during STARTUP_DELAY; /health answers soon after."""
    started = time.monotonic()
    container = engine.run(
        parse_run(f"docker run -d -p {host_port}:8000 -e STARTUP_DELAY=3 portbinding/slow-start:1.0")
    )
    early = probe_http(f"http://127.0.0.1:{host_port}/health", timeout=1)
    assert not early.ok, f"answered before its delay: {early.detail}"
    assert time.monotonic() - started < 3, "the early probe came too late to prove anything"
    ready = wait_until_ready(engine, container, 8000, path="/health", timeout=30)
    assert ready.ok, f"never became ready: {ready.detail}"
    assert time.monotonic() - started >= 3, "it answered before its delay had passed"


@pytest.mark.parametrize("bind_host, reachable", [("0.0.0.0", True), ("127.0.0.1", False)])
def test_scoring_api_binds_where_its_environment_says(
    engine: Engine, host_port: int, bind_host: str, reachable: bool
) -> None:
    """scoring-api: BIND_HOST=0.0.0.0 is reachable through -p, 127.0.0.1 is not; POST /score scores."""
    container = engine.run(
        parse_run(f"docker run -d -p {host_port}:8000 -e BIND_HOST={bind_host} portbinding/scoring-api:1.0")
    )
    result = wait_until_ready(engine, container, 8000, path="/health", timeout=8 if reachable else 4)
    assert result.ok is reachable, f"BIND_HOST={bind_host}: {result.outcome} {result.detail}"


def test_scoring_api_scores_a_json_payload_and_explains_bad_input(engine: Engine, host_port: int) -> None:
    """POST /score returns a score in [0, 1] and the model version; a bad body gets a 400 with a reason."""
    import json
    import urllib.error
    import urllib.request

    container = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:2.0"))
    ready = wait_until_ready(engine, container, 8000, path="/health", timeout=15)
    assert ready.ok, f"the scoring API never answered: {ready.detail}"
    url = f"http://127.0.0.1:{host_port}/score"
    body = json.dumps({"features": {"tenure_months": 3, "monthly_spend": 90, "support_tickets": 4}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        scored = json.loads(response.read())
    assert 0.0 <= scored["score"] <= 1.0 and scored["model_version"] == "2.0", scored
    headers = {"Content-Type": "application/json"}
    bad = urllib.request.Request(url, data=b'{"features": "nope"}', headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=5)
    assert refused.value.code == 400, refused.value.code
    reason = json.loads(refused.value.read())["error"]
    assert "features" in reason, f"the 400 does not say what is wrong with the body: {reason}"
