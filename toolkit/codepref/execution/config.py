"""Public data types of the execution stage: outcome codes, settings, results, isolation record."""

from __future__ import annotations

import enum
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

from ..errors import ConfigError


class Outcome(enum.IntEnum):
    """Outcome code of one (sample, test) check; stored as int8 in ``exec_matrix`` (public contract)."""

    PASS = 0  # the harness reached the end of the test and reported it
    FAIL = 1  # an assertion failed / the output was wrong
    ERROR = 2  # any other exception, or the process ended without a verdict
    TIMEOUT = 3  # wall-clock or CPU-time limit
    SYNTAX = 4  # the program does not compile
    KILLED = 5  # killed by a resource limit: memory, output cap, file size, processes, seccomp violation


@dataclass
class ExecutionConfig:
    """Sandbox limits and pool size. Every limit applies per test unit unless stated otherwise."""

    timeout: float = field(default=3.0, metadata={"help": "Wall-clock seconds per test unit (default 3)."})
    cpu_time: float | None = field(
        default=None, metadata={"help": "CPU seconds per test unit, rounded up; None = same as timeout."}
    )
    memory_mb: int = field(
        default=1024,
        metadata={"help": "Address-space limit (RLIMIT_AS) per sample process in MiB; 0 = none."},
    )
    max_output_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata={"help": "Cap on stdout, stderr and any file a sample writes (RLIMIT_FSIZE), bytes (4 MiB)."},
    )
    max_processes: int = field(
        default=64,
        metadata={"help": "Processes+threads a sample may have at once (RLIMIT_NPROC, needs root)."},
    )
    max_open_files: int = field(default=256, metadata={"help": "Open file descriptors per sample (RLIMIT_NOFILE)."})
    slots: int | None = field(
        default=None, metadata={"help": "Parallel worker slots (fork servers); None = 2 x CPU cores."}
    )
    isolation: str = field(
        default="auto",
        metadata={
            "help": "'auto' (strongest available, warns on fallback), 'full' (error if a layer is missing), "
            "'process' (no bubblewrap: setuid/seccomp/rlimits only), 'none' (rlimits and timeouts only)."
        },
    )
    stderr_tail_bytes: int = field(
        default=2048, metadata={"help": "Bytes of stderr kept per sample for debugging (the last ones)."}
    )
    in_process_tests: bool = field(
        default=False,
        metadata={
            "help": "Run ground-truth tests that need the sample's own types (isinstance/except with a class the "
            "sample defines; trust level in-process) inside the sample's process, where the sample can forge their "
            "verdict. Default off: such a test is not run and counts as an error for every sample."
        },
    )

    def __post_init__(self) -> None:
        if self.isolation not in ("auto", "full", "process", "none"):
            raise ConfigError(f"unknown isolation {self.isolation!r}")
        if self.timeout <= 0:
            raise ConfigError("timeout must be positive")

    @property
    def n_slots(self) -> int:
        return self.slots or 2 * (os.cpu_count() or 1)

    @property
    def cpu_seconds(self) -> int:
        return max(1, int(-(-(self.cpu_time or self.timeout) // 1)))


@dataclass
class ExecuteConfig(ExecutionConfig):
    """Sandbox limits (see ExecutionConfig) plus which tests to run."""

    tests: Literal["ground_truth", "generated", "both"] = field(
        default="both",
        metadata={
            "help": "Which tests to run (the vocabulary of rank and pairs): ground_truth (the tests column, or "
            "io_tests), generated (gen_tests), or both (ground truth, and gen_tests when the dataset has them)"
        },
    )
    float_tolerance: float | None = field(
        default=None,
        metadata={"help": "stdin/stdout problems: accept numbers within this absolute/relative tolerance"},
    )
    shard_size: int = field(default=16, metadata={"help": "Problems per resumable shard"})
    backend: str = field(
        default="local",
        metadata={
            "help": "local = a sandboxed pool on this machine; ray = the same sandboxed pool on every node of "
            "a Ray cluster (optional extra 'ray'; identical results; slots then count per node)"
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "backend=ray: cluster to join (ray.init address, e.g. 'auto' or 'ray://head:10001'); "
            "None = reuse an initialised Ray, else RAY_ADDRESS, else start a local instance"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tests == "all":  # the name before execute shared rank's vocabulary
            warnings.warn('ExecuteConfig(tests="all") is deprecated: use tests="both"', FutureWarning, stacklevel=3)
            self.tests = "both"
        if self.tests not in ("ground_truth", "generated", "both"):
            raise ConfigError(f"tests must be ground_truth, generated or both, got {self.tests!r}")
        if self.shard_size < 1:
            raise ConfigError("shard_size must be >= 1")
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"backend must be local or ray, got {self.backend!r}")


@dataclass(frozen=True)
class SampleResult:
    """Verdicts of one sample: one code per test unit (or per stdin/stdout case), and a stderr tail."""

    codes: list[int]
    stderr_tail: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.codes) and all(c == Outcome.PASS for c in self.codes)


@dataclass(frozen=True)
class TimedResult:
    """The runs of a timed job: one dict per run (``ok``: every answer checked correct; ``cpu_ns``: the sample
    process's CPU time, read by the server; ``ir``: its instruction count when counted; ``error``: why the run
    is not a measurement), and a stderr tail."""

    runs: list
    stderr_tail: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Isolation:
    """Which sandbox layers a pool actually runs with (recorded in dataset cards)."""

    level: str  # "full", "partial" or "none"
    layers: tuple[str, ...]
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)
