"""The hub's and the grading queue's small rules, without users, engines or a hub running."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from portbinding import validate_server
from portbinding.grading.course import hand_over
from portbinding.grading.distributed import ClusterError, Ledger, _redact, _write_files
from portbinding.grading.worker import _trusted_config
from portbinding.hub import classroom
from portbinding.hub.config import HubSettings
from portbinding.hub.roster import (
    Credentials,
    Member,
    RosterError,
    check_password,
    hash_password,
    read_roster,
)
from portbinding.paths import course_material


def _roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


def test_roster_reads_an_lms_export_with_a_bom(tmp_path: Path) -> None:
    """Members in file order; a BOM and stray spaces and capitals in roles are fine."""
    path = _roster(
        tmp_path, "\ufeffid,name,role\nada, Ada Lovelace ,Student\nturing,Alan Turing,instructor\n"
    )
    assert read_roster(path) == [
        Member("ada", "Ada Lovelace", "student"),
        Member("turing", "Alan Turing", "instructor"),
    ], "the roster was misread"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("login,name,role\nada,Ada,student\n", "needs id, name and role"),
        ("id,name,role\nAda,Ada,student\nt,T,instructor\n", "cannot be a login"),
        ("id,name,role\nroot,Root,student\nt,T,instructor\n", "reserved"),
        ("id,name,role\nada,Ada,student\nada,Ada,student\nt,T,instructor\n", "appears twice"),
        ("id,name,role\nada,Ada,teacher\n", "not one of"),
        ("id,name,role\nada,Ada,student\n", "no instructor"),
        ("id,name,role\na+b,Ada,student\nt,T,instructor\n", "cannot be a login"),
    ],
)
def test_bad_rosters_are_refused_with_the_line(tmp_path: Path, text: str, says: str) -> None:
    """Each problem is named (with its line where there is one) before any account is made."""
    with pytest.raises(RosterError, match=says):
        read_roster(_roster(tmp_path, text))


def test_passwords_are_kept_as_scrypt_hashes_only(tmp_path: Path) -> None:
    """Issued passwords check; the store holds no plaintext; both files are 0600; re-issuing keeps them."""
    members = [Member("ada", "Ada", "student"), Member("t", "T", "instructor")]
    credentials = Credentials(tmp_path / "state" / "credentials.json")
    handout = tmp_path / "state" / "handout.csv"
    assert credentials.issue(members, handout) == ["ada", "t"], "everyone new gets a password"
    issued = dict(line.split(",") for line in handout.read_text().splitlines()[1:])
    stored = (tmp_path / "state" / "credentials.json").read_text()
    assert all(password not in stored for password in issued.values()), "a plaintext password is stored"
    assert credentials.check("ada", issued["ada"]) and not credentials.check("ada", issued["t"]), (
        "wrong check"
    )
    for path in (handout, tmp_path / "state" / "credentials.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is readable by others"
    assert credentials.issue(members, handout) == [], "existing passwords must be kept"
    assert credentials.check("ada", issued["ada"]), "re-issuing changed a password"
    assert credentials.issue(members[1:], handout) == [] and not credentials.check("ada", issued["ada"]), (
        "a member who left the roster can still log in"
    )


def test_password_hash_rejects_tampering() -> None:
    """A wrong password, a malformed or foreign hash: all refused, never an exception."""
    stored = hash_password("correct horse")
    assert check_password("correct horse", stored), "the right password is refused"
    assert not check_password("correct hors", stored), "a wrong password is accepted"
    assert not check_password("x", "md5$abc"), "a foreign scheme is accepted"
    assert not check_password("x", "scrypt$notanumber$8$1$AA==$AA=="), "a malformed hash is accepted"


def test_grading_hands_the_course_back_without_following_a_link(tmp_path: Path) -> None:
    """`portbinding hub grade` hands what root wrote to the course's owner, never a link's target."""
    if os.geteuid() != 0:
        pytest.fail("chown needs root (run under make test)")
    nobody = 65534
    course = tmp_path / "course"
    course.mkdir()
    os.chown(course, nobody, nobody)  # the instructor's folder
    (course / "gradebook.db").write_text("")  # written by root's grading
    outside = tmp_path / "outside.txt"
    outside.write_text("root's")
    (course / "link").symlink_to(outside)
    (course / "dirlink").symlink_to(tmp_path)
    hand_over(course)
    assert (course / "gradebook.db").stat().st_uid == nobody, "the course's own file was not handed back"
    assert outside.stat().st_uid == 0, "a symlink's target was chowned"
    assert tmp_path.stat().st_uid == 0, "a symlinked folder was chowned"


def test_a_worker_runs_only_its_own_course_config() -> None:
    """A task that brings another nbgrader_config.py (Python, run as root) is refused."""
    installed = (course_material() / "grader" / "nbgrader_config.py").read_text()
    assert _trusted_config(installed) == installed, "the course's own config is refused"
    with pytest.raises(ClusterError, match="differs from the course config"):
        _trusted_config(installed + "\nimport os; os.system('id')\n")


def test_task_files_stay_inside_their_folder(tmp_path: Path) -> None:
    """A task naming ../ paths cannot write outside the scratch course."""
    with pytest.raises(ClusterError, match="outside its folder"):
        _write_files(tmp_path / "course", {"../../escaped": "eA=="})
    assert not (tmp_path / "escaped").exists(), "a file escaped the folder"


def test_ledger_merges_a_submission_attempt_once(tmp_path: Path) -> None:
    """Seen after add; the next attempt of the same submission is a new number; survives reloading."""
    ledger = Ledger(tmp_path / "merged.json")
    assert ledger.next_attempt("abc") == 1, "a new submission starts at attempt 1"
    ledger.add("abc:1", {"student": "s"})
    again = Ledger(tmp_path / "merged.json")
    assert again.seen("abc:1") and not again.seen("abc:2"), json.loads((tmp_path / "merged.json").read_text())
    assert again.next_attempt("abc") == 2, "a regrade must be a new attempt"


def test_broker_passwords_stay_out_of_messages() -> None:
    """The broker URL in an error message has no password."""
    assert _redact("redis://:s3cret@10.0.0.1:6379/0") == "redis://***@10.0.0.1:6379/0", "password shown"
    assert _redact("redis://10.0.0.1:6379/0") == "redis://10.0.0.1:6379/0", "a URL without one changed"


def test_every_hub_server_runs_validate_off_its_event_loop(tmp_path: Path) -> None:
    """Students and instructors load portbinding.validate_server, as `portbinding lab` does; only
    instructors load the formgrader."""
    settings = HubSettings(name="units", state_base=str(tmp_path))
    settings.state.mkdir(parents=True)
    classroom._write_jupyter_config(settings)
    for role, formgrader in (("student", False), ("instructor", True)):
        config = json.loads((settings.jupyter_dir(role) / "jupyter_server_config.json").read_text())
        extensions = config["ServerApp"]["jpserver_extensions"]
        assert extensions.get(validate_server.MODULE) is True, (role, extensions)
        assert extensions.get("nbgrader.server_extensions.formgrader") is formgrader, (role, extensions)
