"""Timing stage: stable runtimes of passing samples, always measured inside the execution sandbox.

``time_samples(ds, TimingConfig(mode=...), work_dir=...)`` adds, per sample (nulls for failed samples):

* ``runtime_ns``   list[float?] — runtime estimate (meaning per mode below); null if failed, unstable or errored;
* ``runtime_cov``  list[float?] — coefficient of variation of that measurement;
* ``timing_stable`` list[bool?] — True measured & stable; False passing but unstable/errored (the
  Code-Optimise "mark failed": runtime null, so ``pairs.effective_passed`` treats it as failed);
  null = not timed (the sample failed execution);
* ``cost``         list[int?] — mode ``count`` only: callgrind instruction count (median of the counted runs);
* ``runtime_ratio`` list[float?] — mode ``interleaved`` only: median per-round CPU-time ratio to the
  round's median (or first) candidate.

Modes
-----
``count`` (default; ours). Deterministic instruction counts with valgrind/callgrind: ONE valgrind run
measures many solutions (start-up ≈1.2 s amortised), one parallel valgrind session per core. Inside it
the trusted harness forks a confined child per solution (own process, unprivileged uid, seccomp,
rlimits); the child runs up to ``warmup``=8 uncounted runs (Python's specialising interpreter changes
the counts during the first runs; they stop early, after at least one, once they have used
``warmup_seconds``=0.05 s of CPU — a heavy program's loops are specialised during its first run), then
turns instrumentation on and makes ``repeats``=1 counted runs, each bracketed by callgrind client requests
(ZERO_STATS, TOGGLE_COLLECT on/off, DUMP_STATS_AT) issued through a tiny C helper compiled once with
gcc and cached in ``~/.cache/codepref`` (valgrind runs with ``--collect-atstart=no``, so only the
measured runs are counted; common standard modules such as ``typing`` are imported once in the
harness before it forks, so warm-ups do not spend their time importing them). Callgrind's counters
are per process, so a sample that forges client requests (ctypes + hand-made machine code) only
changes its own counts; the parent reads each child's dumps after killing its process group (and
sweeping its uid when a descendant survived), then wipes the dump directory before the next child
starts. ``cost`` = median count, ``runtime_cov`` = CoV of the counts (0.0 for
a single counted run; repeated measurements of a count agree to < 0.02%, see benchmarks/timing.py),
``runtime_ns`` = cost × ns-per-instruction of a trusted calibration workload (counted in the same
valgrind run, timed natively in the toolkit process) — an estimate on this CPU that ranks exactly like
``cost``; it is there so downstream stages that read runtime_ns (pairs, evaluation) work unchanged.
Hardware counters (perf_event) are only detected (recorded in provenance); they are unavailable on
the VMs this was built on and the sandbox's seccomp filter forbids perf_event_open in samples.

``code-optimise`` (faithful). Algorithm 1 of the paper as the released code does it: CPU time
(``process_time_ns``) of the whole check program (definition + every timed test), batches of
``batch_size``=50 runs, stop at the first batch with CoV ≤ ``cov_threshold``=0.1, at most
``max_batches``=1000 batches (and ``max_seconds`` wall per process); a process that never gets a
stable batch marks the sample failed. The procedure runs ``processes``=5 times, each in a separate
sandboxed process, one solution at a time; ``runtime_ns`` = mean of the 5 last-stable-batch means,
``runtime_cov`` = CoV across the 5 processes.

``interleaved``. All passing candidates of one problem stay alive at once, each in its own confined
child with its own uid (they cannot signal, ptrace or share files with each other); rounds run each
candidate once in turn (order rotated every round); a turn repeats the program until it lasts
≥ ``turn_ms`` CPU time. ``runtime_ns`` = median CPU time per run, ``runtime_ratio`` = median over
rounds of (candidate's time / the round's geometric mean over candidates, or the first
candidate), ``runtime_cov`` = CoV of those per-round ratios (shared machine noise cancels in the ratio).

Timing children have no RLIMIT_CPU: on these kernels an armed process CPU timer makes
CLOCK_PROCESS_CPUTIME_ID tick-granular (4 ms steps); the parent's wall-clock deadline bounds them.
"""

from .config import MODES, TimingConfig
from .measure import Measurement
from .transform import time_samples

__all__ = ["MODES", "Measurement", "TimingConfig", "time_samples"]
