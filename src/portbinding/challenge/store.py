"""Where challenges live between CLI calls, and where each learner's records go.

Everything is under one data folder: ``$PORTBINDING_DATA_DIR`` if set, else
``$XDG_DATA_HOME/portbinding``, else ``~/.local/share/portbinding``:

    challenges/<id>.json   the state of a challenge in progress (the CLI and the widget share it)
    challenges.jsonl       this learner's attempt records, one JSON object a line

A record is appended whenever an attempt is solved or ended, a full snapshot each time; the
report keeps the last line per attempt. An instructor collects the learners' ``*.jsonl`` files
into one folder and runs ``portbinding progress FOLDER``.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from portbinding.challenge.attempt import Attempt
from portbinding.errors import PortBindingError

DATA_ENV = "PORTBINDING_DATA_DIR"
LEARNER_ENV = "PORTBINDING_LEARNER"
RECORDS_NAME = "challenges.jsonl"
_ID = re.compile(r"[0-9a-f]{6,32}")


def data_dir() -> Path:
    """The folder for challenge state and records (read when called, so tests can point it elsewhere)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "portbinding"


def learner() -> str:
    """Who is learning: ``$PORTBINDING_LEARNER``, else the login name."""
    if os.environ.get(LEARNER_ENV):
        return os.environ[LEARNER_ENV]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def state_path(challenge_id: str, folder: Path | None = None) -> Path:
    if not _ID.fullmatch(challenge_id):
        raise PortBindingError(
            f"{challenge_id!r} is not a challenge id: ids are hexadecimal, like 3f9a2c.",
            hint="`portbinding challenge list` shows your challenges and their ids",
        )
    return (folder or data_dir()) / "challenges" / f"{challenge_id}.json"


def save(attempt: Attempt, folder: Path | None = None) -> Path:
    """Write the attempt's state atomically (a crash mid-write never leaves half a file)."""
    path = state_path(attempt.id, folder)
    _write_atomic(path, json.dumps(attempt.to_dict(), indent=1))
    return path


def load(challenge_id: str, folder: Path | None = None) -> Attempt:
    """The attempt saved under ``challenge_id``; a clear error when there is none."""
    path = state_path(challenge_id, folder)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PortBindingError(
            f"There is no challenge {challenge_id} here ({path.parent}).",
            hint="`portbinding challenge list` shows your challenges; `portbinding challenge new` starts one",
        ) from None
    except ValueError as exc:
        raise PortBindingError(
            f"The state file {path} is damaged: {exc}", hint="end it and start a new one"
        ) from exc
    return Attempt.from_dict(data)


def saved(folder: Path | None = None) -> list[Attempt]:
    """Every challenge with a state file, oldest first."""
    found = []
    for path in sorted(((folder or data_dir()) / "challenges").glob("*.json")):
        try:
            found.append(Attempt.from_dict(json.loads(path.read_text())))
        except (ValueError, TypeError, OSError):
            continue  # a damaged file is reported when that challenge is asked for by id
    return sorted(found, key=lambda a: a.started_at)


def append_record(record: dict[str, Any], folder: Path | None = None) -> Path:
    """Append one attempt record to this learner's records file."""
    path = (folder or data_dir()) / RECORDS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
