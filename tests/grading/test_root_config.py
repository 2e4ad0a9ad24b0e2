"""Root never runs the course's nbgrader_config.py: it grades on the package's config, with the
course's few settings read as data (``portbinding.grading.rootconfig``).

The hostile case: after the hand-over the instructor's account owns the config; a line in it
that would write a file when executed must never run as root during ``portbinding grade``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config.loader import PyFileConfigLoader

from portbinding.grading.course import Course, nbgrader_env, release_student_versions, run_nbgrader
from portbinding.grading.rootconfig import (
    DEFAULTS,
    grading_config,
    read_course_settings,
)
from tests.grading.test_grade_limits import CAUSE_ONLY, EX01, _submit
from tests.support.checkout import REPO

PORTBINDING = str(Path(sys.executable).parent / "portbinding")
INSTRUCTOR_UID = 65534


def _hostile_config(marker: Path) -> str:
    """The shipped config, plus what an instructor account (or whoever took it over) could add."""
    shipped = (REPO / "grader" / "nbgrader_config.py").read_text()
    return shipped + (
        f"\nopen({str(marker)!r}, 'w').write('root ran the course config')\n"
        "c.Execute.timeout = 170\n"
        "c.CourseDirectory.course_id = __import__('os').getcwd()\n"
        "c.LimitOutput.max_lines = True\n"
        "c.Autograde.autograde_preprocessors = ['nbgrader.preprocessors.Execute']\n"
        "c.Exchange.root = '/tmp/elsewhere'\n"
    )


def test_the_shipped_config_reads_as_the_defaults_with_nothing_left_out() -> None:
    """grader/nbgrader_config.py, parsed: its course id and timeout, and no line reported ignored."""
    settings = read_course_settings(REPO / "grader")
    assert settings.values == DEFAULTS, settings
    assert settings.ignored == (), settings.ignored


def test_the_package_config_matches_what_the_shipped_config_sets() -> None:
    """Every setting grader/nbgrader_config.py makes (run here, as the repository's own file) is the
    package's too, with the same value: the instructor's nbgrader and root's grading agree."""
    shipped = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "grader")).load_config()
    ours = grading_config(read_course_settings(REPO / "grader"))
    for section, traits in shipped.items():
        for trait, value in traits.items():
            if (section, trait) == ("CourseDirectory", "root"):
                continue  # the scratch course's, given on the command line
            assert ours.get(section, {}).get(trait) == value, f"{section}.{trait}: {value!r} vs {ours}"


def test_a_hostile_config_is_read_without_running_a_line(tmp_path: Path) -> None:
    """Literal course settings are taken; code, non-literals, wrong types and the sandbox's own
    settings are left out, each reported; the file's code never ran."""
    marker = tmp_path / "ran"
    (tmp_path / "nbgrader_config.py").write_text(_hostile_config(marker))
    settings = read_course_settings(tmp_path)
    assert not marker.exists(), "reading the course settings executed the config"
    assert settings.values[("Execute", "timeout")] == 170, settings
    assert settings.values[("CourseDirectory", "course_id")] == "port-binding-lab", settings
    assert ("LimitOutput", "max_lines") not in settings.values, "a bool is not an int setting"
    ignored = "\n".join(settings.ignored)
    for reported in ("course_id", "max_lines", "Exchange.root"):
        assert reported in ignored, f"{reported} not reported as left out: {ignored}"
    config = grading_config(settings)
    assert config["Autograde"]["autograde_preprocessors"][0].endswith("SandboxedExecute"), config


@pytest.fixture(scope="module")
def hostile_course(
    grading_host: Any, srv_base: Path
) -> tuple[Course, Path, subprocess.CompletedProcess[str]]:
    """ex01 with an instructor-owned config that writes a marker when run, graded by root."""
    root = srv_base / "hostile-config"
    (root / "source").mkdir(parents=True)
    shutil.copy2(REPO / "grader" / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(REPO / "grader" / "source" / EX01, root / "source" / EX01)
    run_nbgrader(["generate_assignment", EX01, "--force"], cwd=root)  # the honest config, still root's
    course = Course(root)
    _submit(course, "carol", CAUSE_ONLY)
    marker = srv_base / "hostile-config-ran"
    (root / "nbgrader_config.py").write_text(_hostile_config(marker))
    os.chown(root / "nbgrader_config.py", INSTRUCTOR_UID, INSTRUCTOR_UID)
    result = subprocess.run(
        [PORTBINDING, "grade", EX01, "--course", str(root), "--json"],
        env=nbgrader_env(), cwd=root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return course, marker, result


def test_root_grades_without_running_an_instructor_writable_config(
    hostile_course: tuple[Course, Path, subprocess.CompletedProcess[str]],
) -> None:
    """The submission is graded in the sandbox as usual, the config's code never ran, and grade
    warns that the config is not root's."""
    _, marker, result = hostile_course
    assert result.returncode == 0, result.stderr[-2000:]
    assert not marker.exists(), f"root executed the course's config: {marker.read_text()}"
    outcome = json.loads(result.stdout)["submissions"][0]
    assert (outcome["status"], outcome["score"]) == ("graded", 1.0), outcome
    assert f"can be changed by uid {INSTRUCTOR_UID}" in result.stderr, result.stderr[-2000:]
    assert "Exchange.root" in result.stderr, "a left-out line must be reported"


def test_doctor_warns_about_an_instructor_writable_course_config(
    hostile_course: tuple[Course, Path, subprocess.CompletedProcess[str]],
) -> None:
    """`portbinding doctor` in the course folder says plain nbgrader must not run there as root."""
    course, marker, _ = hostile_course
    result = subprocess.run(
        [PORTBINDING, "doctor", "--json"],
        env=nbgrader_env(), cwd=course.root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    warning = json.loads(result.stdout)["course_config_warning"] or ""
    assert f"uid {INSTRUCTOR_UID}" in warning and "never as root" in warning, warning
    assert not marker.exists(), "doctor executed the course's config"


def test_releasing_the_student_versions_runs_no_course_python(
    hostile_course: tuple[Course, Path, subprocess.CompletedProcess[str]],
) -> None:
    """`portbinding exercises` (nbgrader generate_assignment in a scratch course) may run as root too."""
    course, marker, _ = hostile_course
    released = release_student_versions(course, [EX01])
    assert f"{EX01}.ipynb" in released[EX01], sorted(released[EX01])
    assert not marker.exists(), "releasing the student versions executed the course's config"
