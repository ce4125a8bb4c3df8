"""Typed settings handed from the host to a sandbox server (one definition for every launcher).

Standalone on purpose: the host imports it as ``codepref.sandbox.inside.settings`` and the processes
inside the sandbox as the top-level module ``settings``; the settings cross as hex-encoded ``marshal``
on the server's command line.
"""

from __future__ import annotations

import marshal
from typing import NamedTuple


class SandboxSettings(NamedTuple):
    """Limits and isolation of every process a sandbox server starts (per slot). A ``NamedTuple`` rather
    than a dataclass: ``dataclasses`` would cost every process the sandbox forks ~2 MiB of imports."""

    tmp_root: str  # where the per-process working directories live ("/tmp" inside bubblewrap)
    sample_uid: int | None = None  # unprivileged uid of sample processes (None: no setuid layer)
    judge_uid: int | None = None  # another uid for judge processes, so a sample cannot reach them
    untrusted_uid: int | None = None  # a third for judges of model-written tests (they cannot reach the kept one)
    seccomp: bool = True
    unshare_net: bool = False  # unshare the network namespace here (when bubblewrap did not)
    timeout: float = 3.0  # wall seconds per test unit (and for loading the program)
    cpu_seconds: int = 3  # CPU seconds per test unit
    memory_bytes: int = 1 << 30  # RLIMIT_AS per process; 0 = none
    max_output_bytes: int = 4 << 20  # stdout/stderr/file cap, and the cap on one value sent to the judge
    max_open_files: int = 256
    max_processes: int = 64
    tail_bytes: int = 2048  # stderr kept per process
    # run ground-truth units that need the sample's own types (trust level in-process) in the sample's process;
    # off: such a unit is not run and is an error (a verdict reached there is the sample's to forge)
    in_process: bool = False
    preimport: tuple[str, ...] = ()  # standard modules imported once before forking (children get them free)
    extra: dict = {}  # launcher-specific values (e.g. the timing stage's); never mutated

    def encode(self) -> str:
        d = self._asdict()
        d["preimport"] = list(self.preimport)
        d["extra"] = dict(self.extra)
        return marshal.dumps(d).hex()

    @classmethod
    def decode(cls, text: str) -> SandboxSettings:
        d = marshal.loads(bytes.fromhex(text))
        d["preimport"] = tuple(d.get("preimport") or ())
        return cls(**d)
