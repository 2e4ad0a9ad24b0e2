"""Benchmark: a class graded locally by one worker, then over Celery by three (two "other machines").

The class is grading_bench's (60 % reference, 30 % wrong, 10 % blank). It is graded by
``portbinding grade --workers 1`` and, on a copy, by ``portbinding grade --backend celery`` with a
worker in each of two network namespaces (each with its own dockerd, the course images loaded
from a cached ``docker save``; see tests/hub/cluster.py) and one here. Printed: both wall times,
whether every student got the same score and status, and the time 1,000 submissions would take
on 10 workers -- *extrapolated* from one worker's measured time per submission, assuming linear
scaling (which a 2-core machine cannot show: its three workers share two cores).

Run as root: ``python bench/grading_distributed.py [--class-size 30]``. Writes
test-output/bench/grading_distributed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by path: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker

from bench._common import REPO_ROOT, write_json
from bench.grading_bench import PORTBINDING, make_class, sandboxed
from portbinding.grading.course import Course, nbgrader_env, run_nbgrader
from tests.hub.cluster import broker_url, grade_worker, redis_server, worker_host

ASSIGNMENT = "ex01-unreachable-notebook"


def distributed(course: Course, students: list[str]) -> tuple[float, list[dict[str, Any]]]:
    """Wall time and outcomes of ``--backend celery`` over two namespace workers and one here."""
    client = docker.from_env()
    with contextlib.ExitStack() as stack:
        stack.callback(client.close)
        hosts = [stack.enter_context(worker_host(client)) for _ in range(2)]
        gateways = [f"{h.address.rsplit('.', 1)[0]}.1" for h in hosts]
        port, password = stack.enter_context(redis_server(gateways))
        folder = course.root.parent / "workers"
        for index, (host, gateway) in enumerate(zip(hosts, gateways, strict=True)):
            url = broker_url(gateway, port, password)
            stack.enter_context(
                grade_worker(url, f"ns{index}", folder, netns=host.netns, docker_host=host.unix_url)
            )
        stack.enter_context(grade_worker(broker_url("127.0.0.1", port, password), "here", folder))
        command = [PORTBINDING, "grade", ASSIGNMENT, "--course", str(course.root), "--json"]
        command += ["--backend", "celery", "--broker", broker_url("127.0.0.1", port, password)]
        for student in students:
            command += ["--student", student]
        started = time.monotonic()
        result = subprocess.run(
            command,
            cwd=course.root,
            env=nbgrader_env(),
            capture_output=True,
            text=True,
            timeout=7200,
            check=True,
        )
        return time.monotonic() - started, list(json.loads(result.stdout)["submissions"])


def _record(course: Course, student: str) -> Any:
    """What the grading recorded for one student (each check's verdict and words), if anything."""
    path = course.records(ASSIGNMENT) / f"{student}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--class-size", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("The grading sandbox and the worker namespaces need root.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="grading-distributed-") as scratch:
        local = Course(Path(scratch) / "local")
        local.root.mkdir()
        shutil.copy2(REPO_ROOT / "grader" / "nbgrader_config.py", local.root / "nbgrader_config.py")
        shutil.copytree(REPO_ROOT / "grader" / "source" / ASSIGNMENT, local.source(ASSIGNMENT))
        run_nbgrader(["generate_assignment", ASSIGNMENT, "--force"], cwd=local.root)
        students = make_class(local, ASSIGNMENT, args.class_size)
        spread = Course(Path(scratch) / "spread")
        shutil.copytree(local.root, spread.root)
        one, local_outcomes = sandboxed(local, ASSIGNMENT, students, workers=1)
        three, spread_outcomes = distributed(spread, students)
        mine = {o["student"]: (o["status"], o["score"]) for o in local_outcomes}
        theirs = {o["student"]: (o["status"], o["score"]) for o in spread_outcomes}
        differ = {
            s: {
                "local": mine[s],
                "celery": theirs.get(s),
                "local_record": _record(local, s),
                "celery_record": _record(spread, s),
            }
            for s in mine
            if mine[s] != theirs.get(s)
        }
    n = len(students)
    per_submission = one / n
    figures = {
        "submissions": n,
        "wall_1_local_worker_s": round(one, 1),
        "wall_celery_3_workers_s": round(three, 1),
        "speedup": round(one / three, 2),
        "per_submission_1_worker_s": round(per_submission, 2),
        "extrapolated_1000_on_10_workers_min": round(1000 * per_submission / 10 / 60, 1),
        "differences": differ,
        "celery_notes": {o["student"]: o["notes"][:2] for o in spread_outcomes},
    }
    print(
        f"{ASSIGNMENT}, {n} submissions: 1 local worker {one:.0f} s; celery over 3 workers (2 namespaces + "
        f"here) {three:.0f} s (x{one / three:.2f}); {len(differ)} submission(s) scored differently. "
        f"Extrapolated from {per_submission:.1f} s per submission: 1,000 on 10 workers = "
        f"{1000 * per_submission / 10 / 60:.0f} min (assuming linear scaling)."
    )
    print(f"Figures: {write_json('grading_distributed', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
