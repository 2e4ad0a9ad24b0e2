"""`portbinding challenge` without an engine: bad input is refused with exit 2 and a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portbinding.challenge.attempt import Attempt
from portbinding.challenge.store import save
from portbinding.cli import EXIT_BAD_INPUT, EXIT_OK, main


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PORTBINDING_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["challenge", "hint", "../../etc"], "not a challenge id"),
        (["challenge", "check", "abcdef"], "There is no challenge abcdef"),
        (["challenge", "look", "abcdef", "state"], "There is no challenge abcdef"),
        (["challenge", "end", "abcdef"], "There is no challenge abcdef"),
    ],
)
def test_a_wrong_id_is_bad_input(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_BAD_INPUT, argv
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["challenge", "new", "--cause", "gremlins"],
        ["challenge", "new", "--image", "nginx"],
        ["challenge", "new", "--seed", "seven"],
        ["challenge", "commit", "abcdef", "--layer", "attic", "--cause", "crashed"],
        ["challenge", "look", "abcdef", "basement"],
        ["challenge"],
    ],
)
def test_nonsense_options_are_refused_by_the_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_BAD_INPUT, argv
    err = capsys.readouterr().err
    assert any(words in err for words in ("invalid choice", "invalid int", "required")), err


def test_list_shows_challenges_in_progress(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index, ended in enumerate((False, True)):
        a = Attempt(
            id=f"{index:06x}",
            learner="ada",
            seed=index,
            cause="crashed",
            service="churn-model",
            variant="v",
            host_port=21000 + index,
            url=f"http://127.0.0.1:{21000 + index}/health",
            container=f"pbl-{index}",
            image="i",
            started_at=1.0,
        )
        if ended:
            a.ended(at=2.0, via="cli")
        save(a, data_dir)
    assert main(["challenge", "list", "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)["challenges"]
    assert [c["id"] for c in shown] == ["000000"], f"an ended challenge is listed without --all: {shown}"
    assert main(["challenge", "list", "--all"]) == EXIT_OK
    assert "(ended)" in capsys.readouterr().out
    assert "crashed" not in json.dumps(shown), "the list names a challenge's cause"
