"""The process engine follows Dockerfiles: the course's own, and a lesson's build on top of one."""

from __future__ import annotations

from pathlib import Path

import pytest

from portbinding.images import IMAGES
from portbinding.process.recipes import RecipeError, find, from_dockerfile, recipes, unavailable


def test_every_course_image_and_tag_has_a_recipe() -> None:
    catalogue = recipes()
    runnable = {tag for image in IMAGES if not image.not_on_process_engine for tag in image.tags}
    assert runnable <= set(catalogue), f"missing recipes: {runnable - set(catalogue)}"


def test_images_that_are_not_python_servers_are_left_out_with_a_reason() -> None:
    """nginx and Redis cannot run as local processes: no recipe, and the engine says why."""
    catalogue = recipes()
    for reference in ("portbinding/proxy:1.0", "portbinding/redis"):
        assert find(reference, catalogue) is None, f"{reference} should have no recipe"
        why = unavailable(reference)
        assert "process engine cannot run" in why and "Docker or Podman" in why, why
    assert unavailable("portbinding/scoring-api:1.0") == "", "the scoring API runs on the process engine"


def test_a_course_image_runs_what_its_dockerfile_says() -> None:
    api = recipes()["portbinding/scoring-api:2.0"]
    assert api.cmd == ("python3", "/app/app.py")
    assert api.env["API_VERSION"] == "2.0", "the image's build argument reaches its ENV"
    assert api.exposed == (8000,)
    assert [dest for _, dest in api.copies] == ["/app/app.py"]


def test_an_untagged_reference_means_latest_as_in_docker() -> None:
    catalogue = recipes()
    assert find("portbinding/notebook", catalogue) is catalogue["portbinding/notebook:latest"]
    assert find("portbinding/nope", catalogue) is None


def test_a_build_on_a_course_image_inherits_it_and_a_later_copy_wins(tmp_path: Path) -> None:
    (tmp_path / "jupyter_server_config.py").write_text("c.ServerApp.ip = ''\n")
    text = "FROM portbinding/notebook-loopback:1.0\nCOPY jupyter_server_config.py /etc/jupyter/\n"
    fixed = from_dockerfile(text, tmp_path, tags=("fixed:1",), catalogue=recipes())
    assert fixed.entrypoint == ("start-notebook",)
    targets = [(source, dest) for source, dest in fixed.copies if dest.endswith("jupyter_server_config.py")]
    assert targets[-1] == (tmp_path / "jupyter_server_config.py", "/etc/jupyter/jupyter_server_config.py")


def test_entrypoint_resets_the_base_images_cmd(tmp_path: Path) -> None:
    text = 'FROM portbinding/scoring-api:1.0\nENTRYPOINT ["python3", "-m", "http.server"]\n'
    built = from_dockerfile(text, tmp_path, tags=("x:1",), catalogue=recipes())
    assert built.entrypoint == ("python3", "-m", "http.server") and built.cmd == ()


def test_run_on_a_course_image_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot run commands"):
        from_dockerfile(
            "FROM portbinding/notebook:1.0\nRUN pip install x\n", tmp_path, tags=("x:1",), catalogue=recipes()
        )


def test_a_copy_from_outside_the_context_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such file in the build context"):
        from_dockerfile("FROM portbinding/notebook:1.0\nCOPY ../../etc/passwd /x\n", tmp_path, tags=("x:1",))
