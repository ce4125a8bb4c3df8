"""One small progress helper for every long stage.

Library code never prints: it opens a :func:`task` and advances it. By default progress
goes to ``logging`` (a line every ~10%); the CLI installs a rich progress bar with
:func:`use_reporter`. Nested tasks are fine (e.g. shards inside a stage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

logger = logging.getLogger("codepref")


class Reporter(Protocol):
    def start(self, desc: str, total: int | None, completed: int) -> object: ...

    def advance(self, handle: object, n: int) -> None: ...

    def finish(self, handle: object) -> None: ...


class LoggingReporter:
    """Logs ``desc: done/total (rate, ETA)`` about every 10% of the work."""

    def start(self, desc: str, total: int | None, completed: int) -> dict:
        return {
            "desc": desc,
            "total": total,
            "done": completed,
            "t0": time.monotonic(),
            "next": 0.1,
            "start_done": completed,
        }

    def advance(self, handle: dict, n: int) -> None:
        handle["done"] += n
        total = handle["total"]
        if total and handle["done"] / total >= handle["next"]:
            handle["next"] = min(1.0, handle["done"] / total + 0.1)
            elapsed = time.monotonic() - handle["t0"]
            rate = (handle["done"] - handle["start_done"]) / elapsed if elapsed > 0 else 0.0
            eta = (total - handle["done"]) / rate if rate > 0 else float("nan")
            logger.info("%s: %d/%d (%.1f/s, ETA %.0fs)", handle["desc"], handle["done"], total, rate, eta)

    def finish(self, handle: dict) -> None:
        pass


_reporter: Reporter = LoggingReporter()


def use_reporter(reporter: Reporter | None) -> Reporter:
    """Install ``reporter`` for every later task (None restores logging); returns the previous one."""
    global _reporter
    previous = _reporter
    _reporter = reporter if reporter is not None else LoggingReporter()
    return previous


@contextmanager
def task(desc: str, total: int | None = None, completed: int = 0) -> Iterator[Callable[[int], None]]:
    """Report progress of one unit of work: ``with task("sample", 100) as advance: advance(1)``.

    ``completed`` is work already done before this call (e.g. shards restored on resume), so
    the bar shows done/remaining correctly.
    """
    reporter = _reporter
    handle = reporter.start(desc, total, completed)
    try:
        yield lambda n=1: reporter.advance(handle, n)
    finally:
        reporter.finish(handle)
