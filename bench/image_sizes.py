"""Image sizes and build times of the exercise images, against Jupyter's base-notebook.

What it measures
  * size: each course image's uncompressed size as the engine reports it (``Size`` of the
    image, what ``docker images`` shows: every layer, base included), and its compressed size,
    measured as ``docker save IMAGE | gzip -1`` streamed through zlib, never written to disk.
  * ratio: our uncompressed size / base-notebook's published uncompressed size (see
    BASE_NOTEBOOK_* below for the source). Goal: at most 0.25 for every image.
  * build time per image folder, three ways:
      cold       -- every step run again: the engine's build cache disabled (nocache), same
                    context, base and build arguments as ``portbinding images build``; the
                    result is not tagged and is removed again afterwards.
      up to date -- ``build_images(client, [name])`` when nothing changed (the fingerprint
                    check only: what a learner pays on every start of lesson 00).
      warm force -- ``build_images(client, [name], force=True)``: a real build, every layer
                    from the cache (what a rebuild after a no-op change costs).
    ``scoring-api`` is two image definitions (1.0 and 2.0); its times cover both, exactly as
    ``build_images(client, ["scoring-api"])`` does.
  * the local Debian base (``build_local_base``) only with BENCH_BASE=1: it takes about 50 s,
    needs root, downloads packages from the Debian mirror (network beyond this machine) and
    REWRITES portbinding/python-base:bookworm -- every course image is then stale and the next
    ``portbinding images build`` rebuilds them all. Otherwise it is "not measured".

How to read it
  MB are 10^6 bytes, as ``docker images`` prints them. "goal" is yes when ratio <= 0.25.
  Cold times depend on the machine (2 cores here) and are dominated by pip installing the
  wheelhouse in the notebook images; up-to-date times should be well under a second.

No network: pip is pinned to the cached wheelhouse (PIP_NO_INDEX=1), and the base is the one
already on the engine, so nothing is pulled or downloaded.

Run: .venv/bin/python bench/image_sizes.py   (75-100 s on 2 cores)
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

if __package__ in (None, ""):  # run by path: make the repository importable (for bench._common)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import run_benchmark, table
from portbinding import builder, images

NAME = "image_sizes"
GOAL_RATIO = 0.25

# Jupyter's base-notebook, as published by the Jupyter Docker Stacks project. Their build
# manifest for quay.io/jupyter/base-notebook:99d306450edf (x86_64, built 2023-11-29) states
# "Docker image size: 1.09GB":
#   https://github.com/jupyter/docker-stacks/wiki/x86_64-base-notebook-99d306450edf
# That figure is what `docker images` prints for the pulled image: UNCOMPRESSED, in SI units
# (10^9 bytes) -- the same measure as our images' "Size", so the two compare like with like.
# Older manifests say 0.98-1.07 GB and later builds are larger, so 1.09 GB is not a flattering
# choice for the ratio. Update the constant and the link together.
BASE_NOTEBOOK_UNCOMPRESSED_BYTES = 1_090_000_000
BASE_NOTEBOOK_SOURCE = "https://github.com/jupyter/docker-stacks/wiki/x86_64-base-notebook-99d306450edf"
# No sourced figure for base-notebook's COMPRESSED size on the registry (what quay.io shows)
# was found, so no compressed ratio is computed: our compressed sizes are printed on their own.
# If one is found, set it here (bytes, compressed as stored on the registry) with its source.
BASE_NOTEBOOK_COMPRESSED_BYTES: int | None = None

# Bounds for streaming `docker save` through gzip: our images are ~120-190 MB, so a stream
# past these means something is wrong, not that we should wait longer.
MAX_SAVE_BYTES = 2_000_000_000
MAX_SAVE_SECONDS = 60.0

# " ---> 0123456789ab" is how the classic builder reports the image each step produced.
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12})\s*$", re.MULTILINE)


@dataclass
class ColdBuild:
    """One image definition built with the cache disabled, and what was cleaned up after it."""

    reference: str
    seconds: float
    removed: int
    left: int


@contextlib.contextmanager
def offline_builds(client: docker.DockerClient) -> Iterator[str]:
    """Keep every build on this machine; yields the base image the builds use.

    * PIP_NO_INDEX=1: if the wheelhouse were missing, ``builder.wheelhouse_for`` would run
      ``pip download`` against PyPI; with this it fails instead, and we say so.
    * PORTBINDING_BASE_IMAGE: naming the local base that is already there makes sure no pull
      is attempted, without changing the result (the same base, so the same fingerprints).
    """
    names = ("PIP_NO_INDEX", "PORTBINDING_BASE_IMAGE")
    saved = {name: os.environ.get(name) for name in names}
    try:
        os.environ["PIP_NO_INDEX"] = "1"
        if not saved["PORTBINDING_BASE_IMAGE"] and not builder.has_image(client, images.DEFAULT_BASE):
            if not builder.has_image(client, images.LOCAL_BASE):
                raise RuntimeError(
                    f"neither {images.DEFAULT_BASE} nor {images.LOCAL_BASE} is on the engine; "
                    "build the images first (`portbinding images build`)"
                )
            os.environ["PORTBINDING_BASE_IMAGE"] = images.LOCAL_BASE
        yield builder.resolve_base(client)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------------------ builds


def cold_build(client: docker.DockerClient, image: images.ImageDef, base: str) -> ColdBuild:
    """Build ``image`` with the build cache disabled; time it; remove what it produced.

    The context and build arguments are made as ``images._build_one`` makes them (the
    context by ``builder.build_context`` itself); the label is left out, as is the tag: the
    result must never replace the course image. Timed from the context tar to the last line
    of the build, as a learner's build would be.
    """
    protected = {client.images.get(tag).id for tag in image.tags if builder.has_image(client, tag)}
    protected.add(client.images.get(base).id)
    produced: list[str] = []
    final = ""
    started = time.monotonic()
    try:
        wheels = builder.wheels_for(image, builder.base_python_version(client, base))
        context, _ = builder.build_context(image, wheels=wheels)
        buildargs = {"BASE_IMAGE": base, **dict(image.buildargs)}
        if wheels is not None:
            buildargs["PIP_NO_INDEX"] = "1"
        stream: Iterator[dict[str, Any]] = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            nocache=True,
            buildargs=buildargs,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise RuntimeError(f"cold build of {image.reference} failed: {chunk['error']}")
            produced.extend(_STEP_IMAGE.findall(str(chunk.get("stream", ""))))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                final = str(aux["ID"])
        seconds = time.monotonic() - started
    finally:
        # Cleaned up even when the build fails or is interrupted: a benchmark must not leave
        # hundreds of MB of untagged images behind.
        removed, left = _remove_built(client, final, produced, protected)
    if not final:
        raise RuntimeError(f"cold build of {image.reference} produced no image")
    return ColdBuild(image.reference, seconds, removed, left)


def _remove_built(
    client: docker.DockerClient, final: str, produced: list[str], protected: set[str]
) -> tuple[int, int]:
    """Remove the cold build's images: the result, then any step image still dangling.

    Only images this build reported are touched, never a tagged one, the base or the course
    image: other engineers may be building on the same engine at the same time. Removing the
    result with noprune=False takes its untagged parents with it; what remains is the build
    stage of a multi-stage Dockerfile (not a parent of the result), removed newest first so
    children go before their parents. An image still in use elsewhere is left (counted).
    """
    removed = left = 0
    candidates = [final] if final else []
    candidates += list(reversed(produced))
    for image_id in candidates:
        try:
            found = client.images.get(image_id)
        except docker.errors.ImageNotFound:
            continue  # already gone with a child removed before it
        if found.id in protected or found.tags:
            continue
        try:
            client.images.remove(found.id, noprune=False)
            removed += 1
        except docker.errors.APIError:
            left += 1  # a parent of something else now (e.g. a concurrent cached build)
    return removed, left


def timed_build(client: docker.DockerClient, name: str, *, force: bool) -> tuple[float, bool, list[str]]:
    """``builder.build_images(client, [name], force=force)``: seconds, all-cached, image ids."""
    started = time.monotonic()
    built = builder.build_images(client, [name], force=force)
    seconds = time.monotonic() - started
    return seconds, all(item.cached for item in built), [item.image_id for item in built]


# ------------------------------------------------------------------------------ sizes


def gzip_size(client: docker.DockerClient, reference: str) -> int:
    """Bytes of ``docker save REFERENCE | gzip -1``, streamed: nothing is written to disk."""
    compressor = zlib.compressobj(level=1, wbits=31)  # wbits=31: gzip framing, like gzip -1
    raw = packed = 0
    started = time.monotonic()
    for chunk in client.images.get(reference).save(chunk_size=1 << 20):
        raw += len(chunk)
        packed += len(compressor.compress(chunk))
        if raw > MAX_SAVE_BYTES or time.monotonic() - started > MAX_SAVE_SECONDS:
            raise RuntimeError(f"docker save {reference} passed {raw / 1e6:.0f} MB or {MAX_SAVE_SECONDS:g} s")
    return packed + len(compressor.flush())


def measure_base(client: docker.DockerClient) -> dict[str, object]:
    """Time ``build_local_base`` when BENCH_BASE=1 (see the module docstring for the cost)."""
    if os.environ.get("BENCH_BASE") != "1":
        return {"measured": False, "seconds": None, "note": "not measured (set BENCH_BASE=1)"}
    started = time.monotonic()
    builder.build_local_base(client)
    seconds = time.monotonic() - started
    return {
        "measured": True,
        "seconds": round(seconds, 1),
        "note": f"{seconds:.1f} s; the base was rewritten: `portbinding images build` rebuilds the images",
    }


# ------------------------------------------------------------------------------ main


def run(client: docker.DockerClient) -> dict[str, Any]:
    """Measure everything; returns the figures (also what goes to the JSON file)."""
    with offline_builds(client) as base:
        # Bring every image up to date first, so "up to date" below really is the no-op path.
        initially_built = [b.image.reference for b in builder.build_images(client) if not b.cached]

        builds: list[dict[str, object]] = []
        cold_cleanup = {"removed": 0, "left": 0}
        for name in images.image_names():
            fresh_s, fresh_cached, before_ids = timed_build(client, name, force=False)
            warm_s, _, after_ids = timed_build(client, name, force=True)
            cold = [cold_build(client, image, base) for image in images.select([name])]
            for item in cold:
                cold_cleanup["removed"] += item.removed
                cold_cleanup["left"] += item.left
            builds.append(
                {
                    "name": name,
                    "definitions": len(cold),
                    "cold_s": round(sum(item.seconds for item in cold), 2),
                    "up_to_date_s": round(fresh_s, 3),
                    "up_to_date_was_noop": fresh_cached,
                    "warm_force_s": round(warm_s, 2),
                    # A warm rebuild that hits the cache for every step gives the same image id.
                    "warm_force_same_image": before_ids == after_ids,
                }
            )

        sizes: list[dict[str, object]] = []
        for image in images.IMAGES:
            size = int(client.images.get(image.reference).attrs["Size"])
            packed = gzip_size(client, image.reference)
            ratio = size / BASE_NOTEBOOK_UNCOMPRESSED_BYTES
            packed_ratio = packed / BASE_NOTEBOOK_COMPRESSED_BYTES if BASE_NOTEBOOK_COMPRESSED_BYTES else None
            sizes.append(
                {
                    "reference": image.reference,
                    "size_bytes": size,
                    "gzip_bytes": packed,
                    "ratio_uncompressed": round(ratio, 4),
                    "ratio_compressed": round(packed_ratio, 4) if packed_ratio is not None else None,
                    "goal_met": ratio <= GOAL_RATIO and (packed_ratio is None or packed_ratio <= GOAL_RATIO),
                }
            )
        base_size = int(client.images.get(base).attrs["Size"])
        base_build = measure_base(client)

    largest = max(sizes, key=lambda item: int(str(item["size_bytes"])))
    all_met = all(bool(item["goal_met"]) for item in sizes)
    summary = [
        f"largest image {largest['reference']}: {int(str(largest['size_bytes'])) / 1e6:.1f} MB "
        f"uncompressed, {int(str(largest['gzip_bytes'])) / 1e6:.1f} MB gzip -1",
        f"ratio to base-notebook (1.09 GB uncompressed, published): {largest['ratio_uncompressed']:.3f}; "
        f"goal <= {GOAL_RATIO}: {'met' if all_met else 'MISSED'} for "
        f"{sum(bool(item['goal_met']) for item in sizes)}/{len(sizes)} images",
        "compressed ratio: not computed (no sourced compressed size for base-notebook)"
        if BASE_NOTEBOOK_COMPRESSED_BYTES is None
        else "compressed ratio: see table",
        "build s (cold / up to date / warm force): "
        + ", ".join(f"{b['name']} {b['cold_s']}/{b['up_to_date_s']}/{b['warm_force_s']}" for b in builds),
        f"local base build: {base_build['note']}",
    ]
    return {
        "goal": f"each image <= {GOAL_RATIO} x base-notebook's published size",
        "base_notebook": {
            "uncompressed_bytes": BASE_NOTEBOOK_UNCOMPRESSED_BYTES,
            "compressed_bytes": BASE_NOTEBOOK_COMPRESSED_BYTES,
            "source": BASE_NOTEBOOK_SOURCE,
        },
        "base_image": {"reference": base, "size_bytes": base_size},
        "initially_built": initially_built,
        "sizes": sizes,
        "builds": builds,
        "cold_cleanup": cold_cleanup,
        "local_base_build": base_build,
        "all_goals_met": all_met,
        "summary": summary,
    }


def report(figures: dict[str, Any]) -> str:
    """The figures as plain-text tables."""
    size_rows = [
        [
            item["reference"],
            item["size_bytes"] / 1e6,
            item["gzip_bytes"] / 1e6,
            item["ratio_uncompressed"],
            "n/a" if item["ratio_compressed"] is None else item["ratio_compressed"],
            bool(item["goal_met"]),
        ]
        for item in figures["sizes"]
    ]
    base = figures["base_image"]
    size_rows.append([f"(base) {base['reference']}", base["size_bytes"] / 1e6, None, None, None, None])
    build_rows = [
        [
            b["name"],
            b["definitions"],
            b["cold_s"],
            b["up_to_date_s"] * 1000.0,
            b["warm_force_s"],
            bool(b["warm_force_same_image"]),
        ]
        for b in figures["builds"]
    ]
    ratio_note = (
        f"ratio = size / {BASE_NOTEBOOK_UNCOMPRESSED_BYTES / 1e9:.2f} GB (base-notebook, uncompressed, "
        f"{BASE_NOTEBOOK_SOURCE}); goal <= {GOAL_RATIO}"
    )
    lines = [
        "Image sizes (MB = 10^6 bytes)",
        table(
            ["image", "size MB", "gzip -1 MB", "ratio", "gz ratio", "goal"],
            size_rows,
            decimals=[0, 1, 1, 3, 3, 0],
        ),
        ratio_note,
        "gz ratio n/a: no sourced compressed size of base-notebook was found (see the constant).",
        "",
        "Build times",
        table(
            ["image folder", "defs", "cold s", "up to date ms", "warm force s", "same id"],
            build_rows,
            decimals=[0, 0, 1, 0, 2, 0],
        ),
        f"cold builds cleaned up: {figures['cold_cleanup']['removed']} images removed, "
        f"{figures['cold_cleanup']['left']} left (in use elsewhere)",
        f"local base build: {figures['local_base_build']['note']}",
    ]
    not_noop = [b["name"] for b in figures["builds"] if not b["up_to_date_was_noop"]]
    if not_noop:
        lines.append(f"WARNING: 'up to date' rebuilt something for {', '.join(not_noop)}: not a no-op figure")
    if figures["initially_built"]:
        lines.append(f"(stale before the run, rebuilt first: {', '.join(figures['initially_built'])})")
    return "\n".join(lines)


def main() -> int:
    """Measure, print the tables, write test-output/bench/image_sizes.json; 0 unless it could not measure."""
    return run_benchmark(NAME, lambda engine: run(engine.client), report)


if __name__ == "__main__":
    sys.exit(main())
