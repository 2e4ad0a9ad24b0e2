"""Evidence from around a container: the peer meant to reach it, its own localhost, a proxy's upstream.

Plain data like the rest of :mod:`portbinding.diagnose.evidence` (which re-exports these), kept
apart so each module stays one idea: what one container shows about itself there, what its
neighbours show here. Gathered by :mod:`portbinding.diagnose.neighbours`, read by
:mod:`portbinding.diagnose.peerrules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # evidence imports this module: the types are for annotations only
    from portbinding.diagnose.evidence import Evidence, InsideAnswer


@dataclass(frozen=True)
class NameUse:
    """A host name the peer's configuration uses for this container's port, tried from inside the peer.

    ``word`` is where it was found (``DATABASE_URL=redis://databse:6379/0``); ``answer`` is the
    lookup and connection made from the peer's namespace with its own resolver: ``unresolved``
    when the name does not resolve there, else the connection's outcome and ``resolved`` address.
    """

    name: str
    port: int
    word: str
    answer: InsideAnswer | None = None

    @property
    def resolves(self) -> bool:
        return self.answer is not None and self.answer.outcome not in ("unresolved", "not_probed", "error")


@dataclass(frozen=True)
class PeerEvidence:
    """Seen from the container that is meant to reach this one (multi-container set-ups)."""

    name: str
    networks: tuple[str, ...]  # the peer's networks
    shared: tuple[str, ...]  # user-defined networks both containers are on (names resolve there)
    address: str | None  # this container's address on a shared network, as a name lookup would give
    mentions_localhost: tuple[str, ...]  # the peer's env/command words that point at localhost
    via_localhost: InsideAnswer | None
    via_name: InsideAnswer | None
    names_used: tuple[NameUse, ...] = ()  # the host names its configuration uses for this port
    server_names: tuple[str, ...] = ()  # the names that reach this container on the shared networks
    service: str | None = None  # the peer's Compose service, if Compose made it

    @property
    def only_default_bridge(self) -> bool:
        """Both on Docker's default bridge and nothing else in common: addresses work, names do not."""
        return not self.shared and self.address is not None

    def best_name(self, fallback: str) -> str:
        """The name the peer should use: a Compose service name (an alias), else the container's."""
        return self.server_names[0] if self.server_names else fallback


@dataclass(frozen=True)
class LocalRef:
    """The container's own configuration points at ``localhost:PORT`` -- which is itself.

    ``listening``: something does listen on that port inside it (then localhost is right);
    ``candidates``: containers on its user-defined networks that offer that port, by the name it
    should use instead (a Compose service name where there is one).
    """

    word: str
    port: int
    listening: bool
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpstreamEvidence:
    """What a reverse proxy says about the service behind it (a 502 comes with a log line).

    ``target`` is the upstream as the proxy names it (``api:8000``, or the address it tried);
    ``reason`` what the proxy met there; ``line`` the proxy's log line. ``container`` is the
    container found behind that name or address on the proxy's networks (None: none is), and
    ``evidence`` its own, gathered as seen from the proxy -- classified, it says why.
    """

    target: str
    reason: Literal["refused", "unresolved", "timeout", "reset", "other"]
    line: str
    port: int | None
    container: str | None = None
    status: str | None = None
    evidence: Evidence | None = None


__all__ = ["LocalRef", "NameUse", "PeerEvidence", "UpstreamEvidence"]
