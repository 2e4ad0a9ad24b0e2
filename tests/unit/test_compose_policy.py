"""ex04's Compose policy: what a learner's file may ask for, read as data, and every refusal in words.

The hostile files here are the ones a class of students would try (and the YAML bombs a tool
would choke on); each must be refused before anything is built or run, quickly, with a message
that says what was refused and why.
"""

from __future__ import annotations

import time

import pytest

from portbinding.grading.compose_policy import MAX_SERVICES, ComposeRefused, read_compose

GOOD = """\
services:
  api:
    image: portbinding/scoring-api:1.0
    environment:
      PORT: "50"
      DATABASE_URL: redis://db:6379/0
    ports:
      - "127.0.0.1:8050:50"
    depends_on:
      db:
        condition: service_healthy
  db:
    image: portbinding/redis:1.0
    expose:
      - "6379"
"""


def test_a_good_file_becomes_run_specs_in_start_order() -> None:
    plan = read_compose(GOOD)
    assert [item.name for item in plan.services] == ["db", "api"], (
        "db must start before the api that waits for it"
    )
    api = plan.service("api")
    assert api is not None and dict(api.spec.env)["DATABASE_URL"] == "redis://db:6379/0", api
    assert [m.to_spec() for m in api.spec.publish] == ["127.0.0.1:8050:50"], api.spec.publish
    assert api.depends_on == (("db", "service_healthy"),), api.depends_on
    db = plan.service("db")
    assert db is not None and db.expose == (6379,) and not db.spec.publish, db


def test_the_unquoted_base_60_port_is_named_with_what_yaml_made_of_it() -> None:
    """`- 8050:50` unquoted is 483050 in YAML 1.1: refused with the number and the quoting fix."""
    with pytest.raises(ComposeRefused) as refused:
        read_compose(GOOD.replace('"127.0.0.1:8050:50"', "8050:50"))
    text = str(refused.value)
    assert "483050" in text and '"8050:50"' in text and "base-60" in text, text


def test_unquoted_ports_that_yaml_reads_as_text_are_fine() -> None:
    """`8080:80` has a part over 59, so even YAML 1.1 keeps it text; the file runs."""
    plan = read_compose(GOOD.replace('"127.0.0.1:8050:50"', "8080:80").replace('PORT: "50"', 'PORT: "80"'))
    api = plan.service("api")
    assert api is not None and api.spec.publish[0].host_port == 8080, api


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
CONDITION = "      db:\n        condition"


def _db(extra: str) -> str:
    """GOOD with ``extra`` (YAML lines) added to the db service."""
    return GOOD.replace("    expose:", f"    {extra}\n    expose:")


def _many(count: int, body: str) -> str:
    return "services:\n" + "".join(f"  s{i}: {body}\n" for i in range(count))


HOSTILE = [
    ("host network", _db("network_mode: host"), "network_mode: host"),
    ("a volume of /", _db("volumes:\n      - /:/host"), "folders"),
    ("privileged", _db("privileged: true"), "full control"),
    ("cap_add", _db("cap_add: [SYS_ADMIN]"), "capabilities"),
    ("devices", _db("devices: [/dev/sda]"), "devices"),
    ("a command", _db("command: sh -c 'id'"), "replaces what"),
    ("a foreign image", GOOD.replace("portbinding/redis:1.0", "redis:7"), "not a course image"),
    ("top-level volumes", GOOD + "volumes:\n  data: {}\n", "top-level key volumes"),
    ("a network of its own", GOOD + "networks:\n  default:\n    name: host\n", "top-level key networks"),
    ("a container name", _db("container_name: pbl-other-1"), "grader names"),
    ("billion laughs", LAUGHS, "billion laughs"),
    ("a python tag", "services: !!python/object/apply:os.system ['id']\n", "tag"),
    (
        "nesting",
        "services:" + "".join(f"\n{'  ' * (i + 1)}k{i}:" for i in range(12)) + " 1\n",
        "nests deeper",
    ),
    ("1000 services", _many(1000, "{}"), "YAML elements"),
    ("too many services", _many(MAX_SERVICES + 1, "{image: portbinding/redis:1.0}"), "at most"),
    ("a duplicate key", _db("image: portbinding/notebook:1.0"), "appears twice"),
    (
        "a service called localhost",
        GOOD.replace("  db:\n", "  localhost:\n").replace(CONDITION, CONDITION.replace("db", "localhost")),
        "not localhost",
    ),
    ("depends on itself", GOOD.replace(CONDITION, CONDITION.replace("db", "api")), "circle"),
    ("depends on nothing known", GOOD.replace(CONDITION, CONDITION.replace("db", "cache")), "not a service"),
    (
        "a port range flood",
        GOOD.replace('"127.0.0.1:8050:50"', '"127.0.0.1:8000-9000:8000-9000"'),
        "1001 ports",
    ),
    ("not YAML", "services: [unclosed\n", "not valid YAML"),
    ("a long value", GOOD.replace("redis://db:6379/0", "x" * 600), "longer than"),
    ("huge", "#" * 20_000, "longer than"),
]


@pytest.mark.parametrize(("name", "text", "words"), HOSTILE, ids=[row[0] for row in HOSTILE])
def test_hostile_files_are_refused_quickly_and_say_why(name: str, text: str, words: str) -> None:
    started = time.monotonic()
    with pytest.raises((ComposeRefused, ValueError)) as refused:
        read_compose(text)
    took = time.monotonic() - started
    assert words in str(refused.value), f"{name}: {refused.value}"
    assert took < 2.0, f"{name}: refusing took {took:.1f} s"


def test_environment_values_are_data_whatever_they_say() -> None:
    """Shell syntax and quotes in a value stay one value: nothing here runs them."""
    value = "$(reboot); `id` && rm -rf / \"'"
    quoted = "'" + value.replace("'", "''") + "'"  # YAML single quotes: '' is one quote
    plan = read_compose(GOOD.replace("redis://db:6379/0", quoted))
    api = plan.service("api")
    assert api is not None and dict(api.spec.env)["DATABASE_URL"] == value, api


def test_an_api_image_older_than_database_url_is_the_graders_fault_not_the_file() -> None:
    """A 200 with no word on the database, though the file gives DATABASE_URL, is a stale image
    (an upgraded course whose images were not rebuilt): said as the grading machine's problem."""
    from portbinding.grading.compose_judge import ComposeQuestion, _stale_image
    from portbinding.probe import ProbeResult

    api = read_compose(GOOD).service("api")
    assert api is not None, "the good file has an api service"
    question = ComposeQuestion(GOOD, "api", 50, database=True)

    def served(status: int, body: str) -> ProbeResult:
        return ProbeResult("ok", "an HTTP server answered", 1.0, http_status=status, body_excerpt=body)

    old = _stale_image(question, api, served(200, '{"status": "ok", "version": "1.0"}'), {"status": "ok"})
    assert old is not None and "images build" in old and "not in your file" in old, old
    reached = {"status": "ok", "database": "ok"}
    assert _stale_image(question, api, served(200, "{}"), reached) is None, "a reply that names it is current"
    down = {"database": "cannot connect"}
    assert _stale_image(question, api, served(503, "{}"), down) is None, "a 503 is the file's to fix"
    no_url = read_compose(GOOD.replace("      DATABASE_URL: redis://db:6379/0\n", "")).service("api")
    assert no_url is not None, "the file without DATABASE_URL has an api service"
    assert _stale_image(question, no_url, served(200, "{}"), {}) is None, "no DATABASE_URL: the file's miss"
