"""Facts about the timing host recorded with every measurement: valgrind, CPU model, hardware counters.

The measurements themselves are taken by the sandbox's servers (``codepref.sandbox``; see
``execution.WorkerPool.timed_job``): a timed run is a fresh sample process, its answers checked by a
judge, its CPU time read by the server from the kernel and its instruction count from valgrind's own
totals for that process.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import re
import shutil
import subprocess
from pathlib import Path

from ..sandbox.host import VALGRIND_ARGS, find_valgrind

__all__ = ["VALGRIND_ARGS", "cpu_model", "find_valgrind", "perf_counters_available", "valgrind_version"]


@functools.lru_cache(maxsize=1)
def valgrind_version() -> str | None:
    path = find_valgrind()
    if not path:
        return None
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def perf_counters_available() -> bool:
    """Whether hardware instruction counters work here (``perf stat -e instructions``)."""
    perf = shutil.which("perf")
    if not perf:
        return False
    try:
        proc = subprocess.run(
            [perf, "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and bool(re.search(r"^\d+,", proc.stderr, re.M))


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
