"""The class list: a roster CSV (id, name, role) and the credentials the hub checks.

The roster is what an instructor exports from their LMS: one row per person, ``id`` the login
(and the Unix user the hub creates), ``name`` shown in the gradebook and the LMS export,
``role`` ``student`` or ``instructor``. It holds no passwords. ``issue_passwords`` makes a
random password for each person who has none yet, keeps only its scrypt hash in the hub's
root-only state folder, and writes the plaintext once to a root-only file for the instructor
to hand out (and delete): no password is ever in git, in the roster or in a log.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from portbinding.errors import PortBindingError

Role = Literal["student", "instructor"]
ROLES: tuple[Role, ...] = ("student", "instructor")
# A login that is also a safe Unix user name and nbgrader student id: no dots, no uppercase
# (nbgrader's exchange file names split on '+'), short enough for useradd.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# Names the hub must never hand to a learner: system accounts and the course's own users.
RESERVED_IDS = frozenset(
    {"root", "daemon", "bin", "sys", "nobody", "admin", "jovyan", "pblpodman", "www-data", "docker"}
)
# scrypt's interactive-login parameters (RFC 7914 §2 suggests N=2**14, r=8, p=1).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PASSWORD_BYTES = 12  # 16 URL-safe characters


class RosterError(PortBindingError):
    """The roster file cannot be used as it is."""

    bad_input = True


@dataclass(frozen=True)
class Member:
    """One person in the class."""

    id: str
    name: str
    role: Role

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"


def read_roster(path: Path) -> list[Member]:
    """The roster's members, in file order; RosterError naming the line of the first problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # LMS exports often start with a BOM
    except OSError as exc:
        raise RosterError(
            f"Cannot read the roster {path}: {exc.strerror or exc}.",
            hint="pass the CSV your LMS exported, with the columns id,name,role",
        ) from exc
    rows = list(csv.DictReader(text.splitlines()))
    header = [h.strip().lower() for h in (csv.DictReader(text.splitlines()).fieldnames or [])]
    if not {"id", "name", "role"} <= set(header):
        raise RosterError(
            f"The roster {path} has the columns {header or 'none'}; it needs id, name and role.",
            hint="start it with the line `id,name,role`, then one per person: `ada,Ada Lovelace,student`",
        )
    members: list[Member] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        values = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        member_id, name, role = values["id"], values["name"], values["role"].lower()
        where = f"{path}, line {line}"
        if not ID_PATTERN.match(member_id):
            raise RosterError(
                f"{where}: the id {member_id!r} cannot be a login.",
                hint="ids are lowercase letters, digits, '-' and '_', start with a letter, at most 31 long",
            )
        if member_id in RESERVED_IDS:
            raise RosterError(f"{where}: the id {member_id!r} is reserved.", hint="choose another id")
        if member_id in seen:
            raise RosterError(f"{where}: the id {member_id!r} appears twice.", hint="keep one row per person")
        if role not in ROLES:
            raise RosterError(f"{where}: the role {role!r} is not one of {', '.join(ROLES)}.")
        if not name or any(ord(ch) < 32 for ch in name):
            raise RosterError(f"{where}: the name of {member_id!r} is empty or has control characters.")
        seen.add(member_id)
        members.append(Member(member_id, name, role))  # role: checked against ROLES above
    if not any(m.is_instructor for m in members):
        raise RosterError(
            f"The roster {path} has no instructor.",
            hint="add a row with the role `instructor`: that account gets the formgrader",
        )
    return members


def write_roster(path: Path, members: list[Member]) -> None:
    """Write ``members`` as a roster CSV (tests and `portbinding hub` examples use it)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "role"])
        writer.writerows([m.id, m.name, m.role] for m in members)


# ------------------------------------------------------------------------------ credentials


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64): what the hub keeps instead of the password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` result (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class Credentials:
    """The hub's password hashes: a root-only JSON file ``{id: hash}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def save(self, hashes: dict[str, str]) -> None:
        _write_private(self.path, json.dumps(hashes, indent=1, sort_keys=True) + "\n")

    def check(self, member_id: str, password: str) -> bool:
        stored = self.load().get(member_id)
        return stored is not None and check_password(password, stored)

    def issue(self, members: list[Member], handout: Path) -> list[str]:
        """A new password for each member without one; the plaintexts go to ``handout`` (0600) only.

        Returns the ids that got one. Existing passwords are kept, so running it again after
        adding students to the roster issues passwords to the new ones only.
        """
        hashes = self.load()
        issued: dict[str, str] = {}
        for member in members:
            if member.id not in hashes:
                issued[member.id] = secrets.token_urlsafe(PASSWORD_BYTES)
                hashes[member.id] = hash_password(issued[member.id])
        # Forget people who left the roster: their logins stop working.
        hashes = {m.id: hashes[m.id] for m in members}
        self.save(hashes)
        if issued:
            lines = ["id,password"] + [f"{member_id},{password}" for member_id, password in issued.items()]
            _write_private(handout, "\n".join(lines) + "\n")
        return list(issued)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, never briefly readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
