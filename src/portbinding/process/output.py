"""A container's output, kept as Docker keeps it: frames of (stream, bytes), followed live.

``docker logs`` and ``docker logs -f`` read it; the API sends it framed as Docker's multiplexed
raw stream (:func:`frame`).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from typing import IO


class Output:
    """A container's stdout and stderr as Docker keeps them: frames of (stream, bytes)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.closed = False
        self.changed = threading.Condition()

    def add(self, stream: int, data: bytes) -> None:
        with self.changed:
            self.frames.append((stream, data))
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def follow(self, start: int) -> Iterator[tuple[int, bytes]]:
        """Frames from index ``start`` on, waiting for new ones until the output closes."""
        index = start
        while True:
            with self.changed:

                def ready(at: int = index) -> bool:
                    return len(self.frames) > at or self.closed

                self.changed.wait_for(ready, timeout=1.0)
                batch = self.frames[index:]
                done = self.closed and len(self.frames) == index + len(batch)
            yield from batch
            index += len(batch)
            if done:
                return


def frame(stream: int, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream: stream, 3 zero bytes, big-endian length."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def read_into(stream: IO[bytes], number: int, output: Output) -> None:
    """Copy ``stream`` into ``output`` as stream ``number`` (1 stdout, 2 stderr) until it ends."""
    # os.read returns what has arrived (like read1): output is seen as it is written.
    for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
        output.add(number, chunk)


def tail_lines(frames: list[tuple[int, bytes]], lines: int) -> list[tuple[int, bytes]]:
    """The last ``lines`` lines of the output, split per line as Docker's log driver keeps it."""
    split = [(n, line) for n, data in frames for line in data.splitlines(keepends=True)]
    return split[-lines:] if lines else []
