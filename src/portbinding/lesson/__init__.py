"""What lesson cells call, so that a cell reads like work and not like plumbing.

- :func:`terminal` -- a command as typed in a terminal, run against the lesson's engine, shown
  with its real output (``portbinding.lesson.terminal``);
- :func:`ask_rung` -- the learner names a rung's command, the lesson checks it fits and runs it
  (``portbinding.lesson.ladder``);
- :func:`reveal` and :func:`check_commitment` -- predict, then observe; commit, then check
  (``portbinding.lesson.predict``);
- :class:`WireTable` and :func:`engine_row` -- what happens on the wire for each engine kind,
  with the learner's own row marked (``portbinding.lesson.wire``);
- :func:`own_addresses`, :func:`docker_proxies` -- this machine's view (``portbinding.lesson.hostview``);
- :func:`jupyter_link` -- the fixed notebook in the browser, token from ``docker logs``;
- :func:`loopback_publish_safety` -- is ``-p 127.0.0.1:…`` private on this engine and version?
- :func:`draw_path` -- lesson 01's picture of a request's path, from live state;
- :func:`your_record`, :func:`end_challenge` -- a lesson's closing challenge, from the learner's side;
- :class:`ReverseProxy` -- lesson 05's weighted reverse proxy (lesson 07 puts nginx in its place);
- :func:`check_contract` -- lesson 06's production runtime contract, judged on a running service;
- :func:`require_networks`, :func:`project_name` -- lesson 07: stop plainly where the engine has no
  networks; the session's Compose project (``terminal()`` runs ``docker network`` and Compose
  lines through ``portbinding.lesson.services``);
- :func:`wait_listening` -- until a started container's server listens (or it exited);
- :func:`health`, :func:`wait_health`, :func:`wait_exited`, :func:`wait_listeners`,
  :func:`race_to_ready` -- pollers with
  deadlines (``portbinding.lesson.watch``).
"""

from __future__ import annotations

from portbinding.lesson.contract import Clause, check_contract
from portbinding.lesson.draw import draw_path
from portbinding.lesson.hostview import docker_proxies, own_addresses
from portbinding.lesson.jupyter import JupyterLink, jupyter_link
from portbinding.lesson.ladder import Asked, ask_rung, try_fix
from portbinding.lesson.predict import Reaction, check_commitment, reveal
from portbinding.lesson.record import end_challenge, record_text, your_record
from portbinding.lesson.rollout import ReverseProxy, WeightedRouter
from portbinding.lesson.safety import loopback_publish_safety
from portbinding.lesson.services import project_name, require_networks
from portbinding.lesson.terminal import Shown, terminal
from portbinding.lesson.watch import Race, health, race_to_ready, wait_exited, wait_health, wait_listeners
from portbinding.lesson.wire import ROWS, EngineRow, WireTable, engine_row
from portbinding.widgets._live import Settled, wait_listening

__all__ = [
    "ROWS",
    "Asked",
    "Clause",
    "EngineRow",
    "JupyterLink",
    "Race",
    "Reaction",
    "ReverseProxy",
    "Settled",
    "Shown",
    "WeightedRouter",
    "WireTable",
    "ask_rung",
    "check_commitment",
    "check_contract",
    "docker_proxies",
    "draw_path",
    "end_challenge",
    "engine_row",
    "health",
    "jupyter_link",
    "loopback_publish_safety",
    "own_addresses",
    "project_name",
    "race_to_ready",
    "record_text",
    "require_networks",
    "reveal",
    "terminal",
    "try_fix",
    "wait_exited",
    "wait_health",
    "wait_listeners",
    "wait_listening",
    "your_record",
]
